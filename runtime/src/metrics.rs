//! Rendering a process's Prometheus registry (each process declares its series in one place:
//! `gateway::metrics`, `reconciler::metrics`).

use prometheus::{Registry, TextEncoder};

/// The text exposition format of everything `registry` holds; a failure to encode is rendered as
/// a comment, so a scrape still answers.
pub fn render(registry: &Registry) -> String {
    TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap_or_else(|e| format!("# encoding failed: {e}\n"))
}
