//! The script registry: every `lua/*.lua` file, compiled in with `include_str!`.
//!
//! Snippets several scripts share (Redis `TIME` in ms, the audit entry with its length cap) live
//! in `lua/include/` and are put in at load time where a script says `--@include name.lua` (as
//! BullMQ does), so each script still runs as one self-contained EVALSHA body. Placeholders in
//! the snippets (`__AUDIT_MAXLEN__`) take their values from [`ScriptConfig`].
//!
//! Scripts run with EVALSHA. A node that answers NOSCRIPT (after `SCRIPT FLUSH`, a restart, or a
//! replica promoted by a failover: the script cache is not replicated) gets every script loaded
//! again on all primaries, and the call is retried once. Every script is idempotent for the same
//! arguments, so a retry after a dropped connection is safe too.

use std::sync::LazyLock;
use std::time::Instant;

use fred::prelude::*;
use fred::types::scripts::Script as FredScript;
use fred::types::MultipleValues;
use prometheus::{HistogramOpts, HistogramVec};

use crate::error::CoordinatorError;
use crate::protocol::Codes;
use crate::reply::Reply;

/// Script latency, one series per script and result: process-wide because every coordinator of
/// a process runs the same scripts; the processes register it in their own registries.
static SCRIPT_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    HistogramVec::new(
        HistogramOpts::new(
            "coordinator_script_duration_seconds",
            "Redis Lua script latency (EVALSHA round trip, NOSCRIPT reload included), by script and result",
        )
        .buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ]),
        &["script", "result"],
    )
    .unwrap_or_else(|e| unreachable!("constant histogram options: {e}"))
});

/// The script latency histogram, for a process's metrics registry.
pub fn script_metrics() -> HistogramVec {
    SCRIPT_SECONDS.clone()
}

/// Values put into the scripts at load time.
#[derive(Debug, Clone, Copy)]
pub struct ScriptConfig {
    /// About how many entries each section's audit stream keeps (`XADD ... MAXLEN ~`).
    pub audit_max_len: u64,
}

impl Default for ScriptConfig {
    fn default() -> Self {
        Self {
            audit_max_len: 1_000_000,
        }
    }
}

/// The shared snippets, by the name a script includes them with.
const INCLUDES: &[(&str, &str)] = &[
    ("time.lua", include_str!("../../lua/include/time.lua")),
    ("audit.lua", include_str!("../../lua/include/audit.lua")),
    (
        "waitlist.lua",
        include_str!("../../lua/include/waitlist.lua"),
    ),
    (
        "hold_seats.lua",
        include_str!("../../lua/include/hold_seats.lua"),
    ),
    (
        "sell_seats.lua",
        include_str!("../../lua/include/sell_seats.lua"),
    ),
];

/// A script's body with its `--@include` lines replaced by the snippets they name.
///
/// # Panics
/// On an include that names no snippet: the scripts are compiled in, so a test catches it.
pub fn expand(source: &str, config: &ScriptConfig) -> String {
    let mut out = String::with_capacity(source.len() + 1024);
    for line in source.lines() {
        match line.trim().strip_prefix("--@include ") {
            Some(name) => {
                let (_, body) = INCLUDES
                    .iter()
                    .find(|(n, _)| *n == name.trim())
                    .unwrap_or_else(|| panic!("unknown Lua include {name:?}"));
                out.push_str(&body.replace("__AUDIT_MAXLEN__", &config.audit_max_len.to_string()));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// A reply of `script` read as its code (`C`) and the rest.
pub(crate) fn typed<C: Codes>(
    script: &'static str,
    value: Value,
) -> Result<(C, Reply), CoordinatorError> {
    let reply = Reply::new(script, value)?;
    let code = C::from_code(reply.code()?).ok_or_else(|| reply.unknown_code())?;
    Ok((code, reply))
}

/// One Lua script: its file name (for errors and metrics) and its body.
pub struct Script {
    /// File name under `lua/`.
    pub name: &'static str,
    inner: FredScript,
}

macro_rules! scripts {
    ($($field:ident => $file:literal),+ $(,)?) => {
        /// Every script of the coordinator.
        pub struct Scripts { $(
            #[doc = concat!("`lua/", $file, "`")]
            pub $field: Script,
        )+ }

        impl Scripts {
            fn new(config: &ScriptConfig) -> Self {
                Self { $(
                    $field: Script {
                        name: $file,
                        inner: FredScript::from_lua(expand(
                            include_str!(concat!("../../lua/", $file)),
                            config,
                        )),
                    },
                )+ }
            }

            /// All scripts, for loading.
            pub fn all(&self) -> Vec<&Script> {
                vec![$(&self.$field),+]
            }
        }
    };
}

scripts! {
    open_layout => "open_layout.lua",
    open_section => "open_section.lua",
    hold => "hold.lua",
    hold_area => "hold_area.lua",
    hold_batch => "hold_batch.lua",
    release => "release.lua",
    extend => "extend.lua",
    sell => "sell.lua",
    sell_batch => "sell_batch.lua",
    block => "block.lua",
    unblock => "unblock.lua",
    snapshot => "snapshot.lua",
    hold_begin => "hold_begin.lua",
    hold_settle => "hold_settle.lua",
    hold_transition => "hold_transition.lua",
    sweep => "sweep.lua",
    unsell => "unsell.lua",
    queue => "queue.lua",
    quota => "quota.lua",
    waitlist => "waitlist.lua",
    ack_commits => "ack_commits.lua",
}

impl Scripts {
    /// Every script, expanded with `config`.
    pub fn load(config: &ScriptConfig) -> Self {
        Self::new(config)
    }
}

impl Script {
    /// The script's SHA-1, as EVALSHA wants it.
    pub fn sha1(&self) -> &str {
        self.inner.sha1()
    }

    /// The script's source.
    pub fn source(&self) -> &str {
        self.inner.lua().map(|s| &**s).unwrap_or_default()
    }

    /// Loads this script on every primary.
    pub(crate) async fn load_everywhere(&self, client: &Client) -> Result<(), CoordinatorError> {
        client
            .script_load_cluster::<(), _>(self.source().to_owned())
            .await?;
        Ok(())
    }

    /// Runs the script and reads its reply: the code as the script's enum (`C`, whose header
    /// lists it) and the rest of the reply. A code the enum does not know is a protocol error.
    pub(crate) async fn call<C: Codes>(
        &self,
        client: &Client,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<(C, Reply), CoordinatorError> {
        debug_assert_eq!(C::SCRIPT, self.name, "codes of another script");
        typed(self.name, self.run(client, keys, args).await?)
    }

    /// Runs the script; reloads it everywhere on NOSCRIPT and retries once.
    pub(crate) async fn run(
        &self,
        client: &Client,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<Value, CoordinatorError> {
        let started = Instant::now();
        let result = self.run_uncounted(client, keys, args).await;
        SCRIPT_SECONDS
            .with_label_values(&[
                self.name.trim_end_matches(".lua"),
                if result.is_ok() { "ok" } else { "error" },
            ])
            .observe(started.elapsed().as_secs_f64());
        result
    }

    async fn run_uncounted(
        &self,
        client: &Client,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<Value, CoordinatorError> {
        let args: MultipleValues = Value::Array(args.into_iter().map(Value::from).collect());
        match client
            .evalsha::<Value, _, _, _>(self.sha1().to_owned(), keys.clone(), args.clone())
            .await
        {
            Err(e) if e.details().contains("NOSCRIPT") => {
                tracing::info!(script = self.name, "script missing on a node; reloading");
                self.load_everywhere(client).await?;
                Ok(client.evalsha(self.sha1().to_owned(), keys, args).await?)
            }
            other => Ok(other?),
        }
    }
}
