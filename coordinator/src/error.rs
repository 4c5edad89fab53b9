//! Infrastructure failures only. Business outcomes (seat taken, hold expired, bad input) are the
//! outcome enums of each operation, never an error: a caller maps `CoordinatorError` to 503 and
//! can never mistake a Redis failure for "seat taken".

/// Redis could not be reached or answered something this code does not understand.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoordinatorError {
    /// Connection, timeout, cluster redirection exhausted, script error...
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    /// A script replied in a shape its host-side parser does not know: a bug or a version skew.
    #[error("unexpected reply from {script}: {detail}")]
    Protocol {
        /// The script's file name.
        script: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl CoordinatorError {
    pub(crate) fn protocol(script: &'static str, detail: impl Into<String>) -> Self {
        Self::Protocol {
            script,
            detail: detail.into(),
        }
    }

    /// The same error again, for each of the callers one failed batched call answers.
    pub(crate) fn copy(&self) -> Self {
        match self {
            Self::Redis(e) => Self::Redis(e.clone()),
            Self::Protocol { script, detail } => Self::protocol(script, detail.clone()),
        }
    }
}
