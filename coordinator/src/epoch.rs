//! Whether Redis may have lost writes since it was last looked at, from its own account.
//!
//! A primary's acknowledged writes are lost only when it stops being that dataset's primary
//! before its replica received them (a failover), or when it restarts without them. Either way
//! the node serving those slots answers with another replication id (`master_replid`: a
//! promoted replica draws a new one, a restarted node too). So the set of the primaries'
//! replication ids names the data Redis holds: while it stays the same, nothing Redis
//! acknowledged was lost, and the reconciler need not tell it again about every recent sale.

use fred::prelude::*;
use fred::types::InfoKind;

use crate::{Coordinator, CoordinatorError};

/// The primaries' replication ids, as `host:port=replid`, sorted: equal epochs mean no write
/// Redis acknowledged in between was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataEpoch(Vec<String>);

impl From<Vec<String>> for DataEpoch {
    /// An epoch from `host:port=replid` entries, in any order.
    fn from(mut ids: Vec<String>) -> Self {
        ids.sort_unstable();
        Self(ids)
    }
}

impl Coordinator {
    /// The cluster's [`DataEpoch`]: one `INFO replication` per primary. An error (a primary
    /// unreachable, a topology the client has not caught up with) is an unknown epoch: the
    /// caller must assume writes were lost.
    pub async fn data_epoch(&self) -> Result<DataEpoch, CoordinatorError> {
        let client = self.client();
        let primaries = client
            .cached_cluster_state()
            .map(|state| state.unique_primary_nodes())
            .unwrap_or_default();
        if primaries.is_empty() {
            return Err(CoordinatorError::protocol(
                "data_epoch",
                "no primary in the cluster state",
            ));
        }
        let mut ids = Vec::with_capacity(primaries.len());
        for server in primaries {
            let info: String = client
                .with_cluster_node(&server)
                .info(Some(InfoKind::Replication))
                .await?;
            // A node that is no longer a primary (the client's map is behind a failover) shows
            // its new primary's id: the set still changes, which is what matters.
            let replid = info
                .lines()
                .find_map(|l| l.trim().strip_prefix("master_replid:"))
                .ok_or_else(|| {
                    CoordinatorError::protocol(
                        "data_epoch",
                        "INFO replication without master_replid",
                    )
                })?;
            ids.push(format!("{server}={replid}"));
        }
        Ok(DataEpoch::from(ids))
    }
}
