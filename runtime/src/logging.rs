//! The tracing subscriber every binary installs first: to stderr, filtered by `RUST_LOG`
//! (default `info`), as text or, with `SEATS_LOG_FORMAT=json`, one JSON object a line carrying
//! the event's fields and those of the spans it is in (a request's `request_id`, for one).

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object a line, with the current span and the span list.
    Json,
}

impl Format {
    /// `SEATS_LOG_FORMAT`: `json`, or text for anything else or nothing.
    pub fn from_env() -> Self {
        match std::env::var("SEATS_LOG_FORMAT") {
            Ok(v) if v.eq_ignore_ascii_case("json") => Self::Json,
            _ => Self::Text,
        }
    }
}

/// A subscriber writing `format` to `writer`, filtered by `directives` (`RUST_LOG`'s syntax), or
/// when `None` by `RUST_LOG` (default `info`).
pub fn subscriber<W>(
    format: Format,
    directives: Option<&str>,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = match directives {
        Some(directives) => EnvFilter::new(directives),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_env_filter(filter);
    match format {
        Format::Text => Box::new(builder.finish()),
        Format::Json => Box::new(
            builder
                .json()
                .with_current_span(true)
                .with_span_list(true)
                .finish(),
        ),
    }
}

/// Installs the process's subscriber (stderr, [`Format::from_env`]). Every binary calls it
/// first; a second call is ignored.
pub fn init() {
    let _ = tracing::subscriber::set_global_default(subscriber(
        Format::from_env(),
        None,
        std::io::stderr,
    ));
}
