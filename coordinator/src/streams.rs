//! The coordinator's two kinds of stream:
//!
//! - the **commit queue** (`seat:{commits:<name>}:queue`, [`keys::commit_queue`]): checkout appends a captured sale; the
//!   reconciler's durable writers read it through one consumer group, write batches to Postgres,
//!   acknowledge, and announce each batch's orders on [`keys::ORDER_DONE_CHANNEL`]. An entry read by a
//!   writer that died is claimed by another after an idle time, so no commit is lost and none is
//!   written twice (the writer's insert is idempotent on the order id as well).
//! - the **audit trail** of each section (`seat:{ev:E:sec:S}:audit`), written by the Lua scripts
//!   atomically with every seat change (`lua/sweep.lua` documents the entry), and copied to
//!   Postgres by the reconciler.
//!
//! Reads through the pool never block a connection (no `BLOCK`): its connections are shared by
//! every caller, and a blocked connection would stall them all. A writer waiting for new commits
//! does so on a connection of its own ([`Coordinator::wait_commits`]): an idle writer polling
//! every few milliseconds cost Redis about 260 calls a second for nothing.

use std::collections::HashMap;

use fred::prelude::*;

use crate::ids::{EventId, SectionId};
use crate::protocol::{AckCode, SweepCode};
use crate::{keys, Coordinator, CoordinatorError};

/// The entries of an `XREADGROUP` reply on the commit queue: `[[stream, entries]]`, or nil.
fn commits_read(reply: &Value) -> Result<Vec<Entry>, CoordinatorError> {
    match reply {
        Value::Null => Ok(Vec::new()),
        Value::Array(streams) => {
            let mut out = Vec::new();
            for stream in streams {
                match stream {
                    Value::Array(pair) if pair.len() == 2 => out.extend(entries(&pair[1])?),
                    other => return Err(bad("XREADGROUP", other)),
                }
            }
            Ok(out)
        }
        other => Err(bad("XREADGROUP", other)),
    }
}

/// What an expiry sweep of one section did ([`Coordinator::sweep`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Expired seats forgotten.
    pub swept: u64,
    /// The newest id the section's audit trail ever had (`0-0` when there is none; after the
    /// copied entries are trimmed, the copier's cursor): a copier that has copied up to it has
    /// nothing to do.
    pub last_audit_id: String,
    /// The earliest hold expiry still ahead (unix ms, Redis's clock); `None` when nothing is
    /// held. Until then a section without new entries has nothing to sweep.
    pub next_expiry_ms: Option<i64>,
    /// What the sweep read for the copier, when it was given the copier's cursor.
    pub after_copied: Option<AfterCopied>,
}

/// A section's audit trail after the copier's cursor, read in the sweep's own step (see
/// [`Coordinator::sweep`]): the entries up to the cursor are trimmed, then counted, then those
/// after it read, all at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfterCopied {
    /// The cursor it was read after (exclusive).
    pub cursor: String,
    /// The trail's counts after the trim (`None`: there is no trail).
    pub counts: Option<AuditCounts>,
    /// Up to the asked count of entries after the cursor, oldest first.
    pub entries: Vec<AuditEntry>,
}

/// One stream entry: its id and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The stream id (`<ms>-<seq>`).
    pub id: String,
    /// Field -> value.
    pub fields: HashMap<String, String>,
}

/// A section's audit trail by its counts (see [`Coordinator::audit_counts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCounts {
    /// Entries ever added to the stream (`entries-added`).
    pub added: u64,
    /// Entries in it now.
    pub length: u64,
}

/// One seat change from a section's audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The stream id: unique within the section's stream.
    pub id: String,
    /// `held`, `released`, `expired`, ...
    pub action: String,
    /// The hold (or a block's tag); empty when none.
    pub hold: String,
    /// Who acted.
    pub actor: String,
    /// When, unix ms.
    pub at_ms: i64,
    /// The seats.
    pub seats: Vec<String>,
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.to_string()),
        Value::Bytes(b) => String::from_utf8(b.to_vec()).ok(),
        Value::Integer(i) => Some(i.to_string()),
        Value::Double(d) => Some(d.to_string()),
        _ => None,
    }
}

fn bad(what: &str, value: &Value) -> CoordinatorError {
    CoordinatorError::protocol("streams", format!("unexpected {what} reply: {value:?}"))
}

/// The audit entries of an XRANGE-shaped reply (`lua/sweep.lua` documents the fields).
fn audit_entries(reply: &Value) -> Result<Vec<AuditEntry>, CoordinatorError> {
    Ok(entries(reply)?
        .into_iter()
        .map(|Entry { id, mut fields }| AuditEntry {
            id,
            action: fields.remove("a").unwrap_or_default(),
            hold: fields.remove("h").unwrap_or_default(),
            actor: fields.remove("u").unwrap_or_default(),
            at_ms: fields
                .get("t")
                .and_then(|t| t.parse::<f64>().ok())
                .map(|t| t as i64)
                .unwrap_or_default(),
            seats: fields
                .get("s")
                .map(|s| {
                    s.split(' ')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect())
}

/// `[[id, [k, v, ...]], ...]` (XRANGE, and the entries inside XREADGROUP/XAUTOCLAIM replies).
/// Deleted entries (a nil field list) are skipped.
fn entries(value: &Value) -> Result<Vec<Entry>, CoordinatorError> {
    let Value::Array(items) = value else {
        return match value {
            Value::Null => Ok(Vec::new()),
            other => Err(bad("entries", other)),
        };
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(pair) = item else {
            return Err(bad("entry", item));
        };
        let id = pair
            .first()
            .and_then(text)
            .ok_or_else(|| bad("entry id", item))?;
        let Some(Value::Array(kv)) = pair.get(1) else {
            continue;
        };
        let mut fields = HashMap::with_capacity(kv.len() / 2);
        for chunk in kv.chunks(2) {
            if let [k, v] = chunk {
                if let (Some(k), Some(v)) = (text(k), text(v)) {
                    fields.insert(k, v);
                }
            }
        }
        out.push(Entry { id, fields });
    }
    Ok(out)
}

impl Coordinator {
    /// Appends a commit (`job`, JSON) to the queue; returns its entry id.
    pub async fn enqueue_commit(&self, job: &str) -> Result<String, CoordinatorError> {
        let id: String = self
            .client()
            .xadd(
                self.commit_queue.clone(),
                false,
                None,
                "*",
                vec![("job", job)],
            )
            .await?;
        Ok(id)
    }

    /// Creates the writers' consumer group (and the stream) if missing. Idempotent.
    pub async fn ensure_commit_group(&self) -> Result<(), CoordinatorError> {
        let created: Result<Value, _> = self
            .client()
            .xgroup_create(self.commit_queue.clone(), keys::COMMIT_GROUP, "0", true)
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.details().contains("BUSYGROUP") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Up to `count` commits never delivered to any writer, now delivered to `consumer`.
    pub async fn read_commits(
        &self,
        consumer: &str,
        count: u64,
    ) -> Result<Vec<Entry>, CoordinatorError> {
        let reply: Value = self
            .client()
            .xreadgroup(
                keys::COMMIT_GROUP,
                consumer,
                Some(count),
                None,
                false,
                self.commit_queue.clone(),
                ">",
            )
            .await?;
        commits_read(&reply)
    }

    /// As [`Coordinator::read_commits`], but when the queue has nothing new, waits up to `wait`
    /// for a commit to arrive (`XREADGROUP ... BLOCK`) and returns it at once. The read runs on
    /// the writer's own connection (opened on first use), so the wait stalls nobody else.
    pub async fn wait_commits(
        &self,
        consumer: &str,
        count: u64,
        wait: std::time::Duration,
    ) -> Result<Vec<Entry>, CoordinatorError> {
        let client = self
            .commit_reader
            .get_or_try_init(|| async {
                let client = crate::builder(&self.settings)?.build()?;
                client.init().await?;
                Ok::<_, CoordinatorError>(client)
            })
            .await?;
        // The command's own timeout covers the wait it asks Redis for.
        let options = Options {
            timeout: Some(wait + self.settings.command_timeout()),
            ..Options::default()
        };
        let reply: Value = client
            .with_options(&options)
            .xreadgroup(
                keys::COMMIT_GROUP,
                consumer,
                Some(count),
                Some(wait.as_millis().max(1) as u64),
                false,
                self.commit_queue.clone(),
                ">",
            )
            .await?;
        commits_read(&reply)
    }

    /// Takes over up to `count` commits delivered to a writer that has not acknowledged them for
    /// `min_idle_ms` (it died or hangs): they are `consumer`'s now.
    pub async fn claim_stale_commits(
        &self,
        consumer: &str,
        min_idle_ms: u64,
        count: u64,
    ) -> Result<Vec<Entry>, CoordinatorError> {
        let reply: Value = self
            .client()
            .xautoclaim(
                self.commit_queue.clone(),
                keys::COMMIT_GROUP,
                consumer,
                min_idle_ms,
                "0-0",
                Some(count),
                false,
            )
            .await?;
        // [next_start, entries, deleted_ids]
        match &reply {
            Value::Array(parts) if parts.len() >= 2 => entries(&parts[1]),
            other => Err(bad("XAUTOCLAIM", other)),
        }
    }

    /// Acknowledges written commits and deletes them from the queue, in one call
    /// (`lua/ack_commits.lua`).
    pub async fn ack_commits(&self, ids: &[String]) -> Result<(), CoordinatorError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut args = Vec::with_capacity(ids.len() + 1);
        args.push(keys::COMMIT_GROUP.to_owned());
        args.extend_from_slice(ids);
        let (AckCode::Acked, _) = self
            .scripts
            .ack_commits
            .call::<AckCode>(self.client(), vec![self.commit_queue.clone()], args)
            .await?;
        Ok(())
    }

    /// Commits queued and not yet acknowledged (waiting or being written).
    pub async fn commit_backlog(&self) -> Result<u64, CoordinatorError> {
        Ok(self.client().xlen(self.commit_queue.clone()).await?)
    }

    /// Announces what became of a batch of commits (`payload` is the writer's JSON); gateways waiting for
    /// it answer their client. Best effort: waiters also read Postgres.
    pub async fn announce_orders(&self, payload: &str) {
        if let Err(e) = self
            .client()
            .publish::<(), _, _>(keys::ORDER_DONE_CHANNEL, payload)
            .await
        {
            tracing::warn!(error = %e, "order outcome not announced; waiters fall back on Postgres");
        }
    }

    /// Up to `count` audit entries of a section after `after` (exclusive; `0-0` for the start).
    pub async fn read_audit(
        &self,
        event: &EventId,
        section: &SectionId,
        after: &str,
        count: u64,
    ) -> Result<Vec<AuditEntry>, CoordinatorError> {
        let start = format!("({after}");
        let reply: Value = self
            .client()
            .xrange(keys::section(event, section).audit, start, "+", Some(count))
            .await?;
        audit_entries(&reply)
    }

    /// A section's audit trail by its counts: entries ever added to the stream and entries in
    /// it now (`XINFO STREAM`, one snapshot); `None` when the stream does not exist. Our trims
    /// remove only what was copied, so entries added but neither copied nor still there were
    /// dropped by the stream's length cap.
    pub async fn audit_counts(
        &self,
        event: &EventId,
        section: &SectionId,
    ) -> Result<Option<AuditCounts>, CoordinatorError> {
        let key = keys::section(event, section).audit;
        let exists: i64 = self.client().exists(key.clone()).await?;
        if exists == 0 {
            return Ok(None);
        }
        let info: Value = self
            .client()
            .custom(
                fred::cmd!("XINFO"),
                vec![Value::from("STREAM"), Value::from(key)],
            )
            .await?;
        let pairs: Vec<(String, Value)> = match info {
            Value::Array(items) => items
                .chunks(2)
                .filter_map(|pair| match pair {
                    [k, v] => Some((text(k)?, v.clone())),
                    _ => None,
                })
                .collect(),
            Value::Map(map) => map
                .inner()
                .into_iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v)))
                .collect(),
            other => return Err(bad("XINFO STREAM", &other)),
        };
        let field = |name: &str| -> Result<u64, CoordinatorError> {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| text(v)?.parse().ok())
                .ok_or_else(|| bad("XINFO STREAM", &Value::from(name)))
        };
        Ok(Some(AuditCounts {
            added: field("entries-added")?,
            length: field("length")?,
        }))
    }

    /// Drops audit entries up to `upto` (inclusive) once they are safely in Postgres.
    pub async fn trim_audit(
        &self,
        event: &EventId,
        section: &SectionId,
        upto: &str,
    ) -> Result<(), CoordinatorError> {
        // MINID keeps ids >= the threshold: the next id after `upto`.
        let next = match upto.split_once('-') {
            Some((ms, seq)) => format!("{ms}-{}", seq.parse::<u64>().unwrap_or(0) + 1),
            None => return Ok(()),
        };
        let _: Value = self
            .client()
            .custom(
                fred::cmd!("XTRIM"),
                vec![keys::section(event, section).audit, "MINID".into(), next],
            )
            .await?;
        Ok(())
    }

    /// Forgets up to `limit` expired holds of a section, recording each in the audit trail
    /// (`lua/sweep.lua`), and announces the section when any were swept. Returns how many.
    pub async fn sweep_expired(
        &self,
        event: &EventId,
        section: &SectionId,
        limit: u64,
    ) -> Result<u64, CoordinatorError> {
        Ok(self.sweep(event, section, limit, None, 0).await?.swept)
    }

    /// As [`Coordinator::sweep_expired`], and says where the section's audit trail ends and when
    /// its next hold expires. Given the audit copier's cursor (`copied`), the same step trims
    /// the entries up to it (they are in Postgres), counts the trail and reads up to `count`
    /// entries after it ([`Swept::after_copied`]): a section's whole pass in one call.
    pub async fn sweep(
        &self,
        event: &EventId,
        section: &SectionId,
        limit: u64,
        copied: Option<&str>,
        count: u64,
    ) -> Result<Swept, CoordinatorError> {
        let k = keys::section(event, section);
        let script = &self.scripts.sweep;
        let (SweepCode::Swept, reply) = script
            .call::<SweepCode>(
                self.client(),
                vec![k.held, k.holder, k.ver, k.audit, k.wl, k.reserved],
                vec![
                    limit.to_string(),
                    copied.unwrap_or_default().to_owned(),
                    count.to_string(),
                ],
            )
            .await?;
        let swept = reply.int(1)? as u64;
        let last_audit_id = reply.string(3)?;
        let next_expiry_ms = Some(reply.int(4)?).filter(|&ms| ms > 0);
        let after_copied = match copied {
            None => None,
            Some(cursor) => {
                let (added, length) = (reply.int(5)?, reply.int(6)?);
                Some(AfterCopied {
                    cursor: cursor.to_owned(),
                    counts: (added > 0 || length > 0).then_some(AuditCounts {
                        added: added as u64,
                        length: length as u64,
                    }),
                    entries: audit_entries(reply.value(7).unwrap_or(&Value::Null))?,
                })
            }
        };
        if swept > 0 {
            self.announce_sections(event, [section]).await;
        }
        Ok(Swept {
            swept,
            last_audit_id,
            next_expiry_ms,
            after_copied,
        })
    }

    /// The sections of an open event (`None` when Redis has no layout for it).
    pub async fn event_sections(
        &self,
        event: &EventId,
    ) -> Result<Option<Vec<SectionId>>, CoordinatorError> {
        Ok(self.sections_of(event).await?.map(|l| l.sections.clone()))
    }
}
