//! The reconciler daemon. Several may run at once (for failover and scale); none does work
//! another is doing, and work a dead one held passes to the others:
//!
//! - **durable writer** ([`orders::writer`]): the commit queue is read through one Redis consumer
//!   group (each entry goes to one writer; entries a dead writer held are claimed after an idle
//!   time) and written to Postgres in batches (group commit);
//! - **expiry sweeper** (`lua/sweep.lua`): forgets expired holds, records each expiry in the
//!   audit trail, announces the section so seat-map caches refresh;
//! - **audit copier** ([`audit`]): copies each section's audit stream to Postgres; each stream's
//!   cursor row is taken with `FOR UPDATE SKIP LOCKED`, and moved in the same transaction as the
//!   rows it copied (exactly once);
//! - **reconciliation**: every event on sale has its inventory in Redis; sold seats in Postgres
//!   are sold in Redis; every captured payment ends as an order or a refund
//!   ([`orders::settle::settle_pages`]);
//! - **waiting-list offers** ([`waitlist`]): seats set aside for an event's waiting list are
//!   offered in list order as holds for the next buyer; two reconcilers offering at once make
//!   the same hold (its id is derived from the entry) or find the seats taken, never two offers
//!   of one seat.
//!
//! # Layout
//!
//! - [`daemon`]: [`run`], the loops and their [`Config`]; one cancellation token stops them all.
//! - [`inventory`]: [`reconcile_inventory`] (Redis told what Postgres has), which runs
//!   [`repair_sales`] (`orders::repair`) where Redis lacks sales.
//! - [`cursors`]: [`RepairCursor`], which recent sales a pass tells again, and why ([`Retell`]).
//! - [`audit`]: the expiry sweep and the audit copier.
//! - [`metrics`]: [`Metrics`], every series declared in one place.
//! - [`waitlist`]: the offer loop.
//! - [`http`]: [`routes`], the daemon's health, readiness and metrics listener.

pub mod audit;
pub mod cursors;
pub mod daemon;
pub mod http;
pub mod inventory;
pub mod metrics;
pub mod waitlist;

pub use cursors::{RepairCursor, Retell};
pub use daemon::{reconcile_once, run, Config};
pub use http::routes;
pub use inventory::{reconcile_inventory, PassReport, SOLD_MARK_MARGIN};
pub use metrics::Metrics;
pub use orders::repair::{repair_sales, Repaired};
