//! Process plumbing, written once for every binary of the workspace (`gateway`, `reconciler`,
//! `loadgen`, `ticketctl`, `sandbox-provider`).
//!
//! # Layout
//!
//! - [`shutdown`]: Ctrl-C or SIGTERM, and the one [`CancellationToken`] a process stops by.
//! - [`global_allocator!`]: the allocator every binary declares.
//! - [`logging`]: the tracing subscriber (text, or JSON with `SEATS_LOG_FORMAT=json`).
//! - [`metrics`]: a Prometheus registry rendered in the text exposition format.
//! - [`clock`]: the process's wall clock in unix units (never for expiries: those are judged by
//!   Redis `TIME`).
//! - [`AbortOnDrop`]: a background task that lives as long as its owner.

pub mod clock;
pub mod logging;
pub mod metrics;
pub mod shutdown;

pub use tokio_util::sync::CancellationToken;

#[doc(hidden)]
pub use mimalloc;

/// Declares mimalloc the binary's global allocator (a library cannot choose it for the binaries
/// that link it, so each `main.rs` says `runtime::global_allocator!();`).
///
/// mimalloc rather than glibc's malloc: a request allocates many short-lived boxed futures and
/// buffers, which glibc's slow path (`_int_malloc`, `unlink_chunk`) serves poorly under
/// concurrency. BENCHMARKS.md has the measurements.
#[macro_export]
macro_rules! global_allocator {
    () => {
        #[global_allocator]
        static GLOBAL: $crate::mimalloc::MiMalloc = $crate::mimalloc::MiMalloc;
    };
}

/// A spawned task aborted when this is dropped: a background task (a cache watcher, an evictor,
/// a test's daemon) that must not outlive what owns it.
#[derive(Debug)]
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl AbortOnDrop {
    /// Spawns `task` on the current runtime.
    pub fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) -> Self {
        Self(tokio::spawn(task))
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
