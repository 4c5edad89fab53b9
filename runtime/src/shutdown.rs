//! How a process is told to stop: Ctrl-C or SIGTERM (what Kubernetes, systemd and
//! `scripts/stack` send), turned into one [`CancellationToken`]. Every loop and listener of the
//! process takes the token (or a child of it) and stops when it is cancelled; nothing else
//! listens for signals.

use tokio_util::sync::CancellationToken;

/// Resolves on Ctrl-C or SIGTERM. Where SIGTERM cannot be listened for, Ctrl-C alone.
pub async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = ctrl_c.await;
            return;
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The process's shutdown token, cancelled on the first Ctrl-C or SIGTERM. Call it once, in
/// `main`, inside the runtime.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        signal().await;
        tracing::info!("shutting down");
        cancel.cancel();
    });
    token
}
