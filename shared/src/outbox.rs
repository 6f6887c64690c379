//! The outbox: a route writes its events in the same transaction as its state
//! change, publishes them right after and deletes them; the scheduled sweeper
//! republishes whatever is left (a failed publish never fails a request and never
//! loses an event; the fan-out drops the duplicates a republish may cause).

use crate::deps::Deps;
use crate::events::Envelope;
use crate::keys;
use crate::ports::table::now_epoch;
use crate::ports::{Item, PublishError, Query, SkCond, TableError, TxOp};
use chrono::SecondsFormat;

/// Partitions of the outbox, so no single partition takes every write.
pub const SHARDS: u32 = 4;

/// Entries swept per shard per run (the sweeper runs every minute).
const SWEEP_PAGE: u32 = 100;

fn shard(event_id: &str) -> u32 {
    // FNV-1a: stable across processes, unlike the std hasher.
    let h = event_id
        .bytes()
        .fold(0x811c9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x01000193));
    h % SHARDS
}

fn key(e: &Envelope) -> (String, String) {
    (
        keys::outbox(shard(&e.id)),
        keys::outbox_entry(&e.occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true), &e.id),
    )
}

/// The writes that put events in the outbox, to add to the route's transaction.
pub fn entries(events: &[Envelope]) -> Vec<TxOp> {
    events
        .iter()
        .map(|e| {
            let (pk, sk) = key(e);
            let item = Item::new(pk, sk)
                .with("event", serde_json::to_value(e).unwrap_or_default())
                .with_ttl(now_epoch() + 7 * 24 * 3600);
            TxOp::Put { item, cond: None }
        })
        .collect()
}

/// Publishes events that are in the outbox and deletes the published ones.
/// Never fails: what is not published stays for the sweeper.
pub async fn flush(deps: &Deps, events: &[Envelope]) {
    let unsent = match deps.publisher.publish(events).await {
        Ok(()) => Vec::new(),
        Err(PublishError::Failed { ids, reason }) => {
            tracing::warn!(unsent = ids.len(), %reason, "publish failed; the outbox keeps the events");
            ids
        }
        Err(e) => {
            tracing::error!(error = %e, "events refused by the bus; the outbox keeps them");
            return;
        }
    };
    let sent: Vec<TxOp> = events
        .iter()
        .filter(|e| !unsent.contains(&e.id))
        .map(|e| {
            let (pk, sk) = key(e);
            TxOp::Delete { pk, sk, cond: None }
        })
        .collect();
    for chunk in sent.chunks(100) {
        if let Err(e) = deps.table.transact(chunk.to_vec()).await {
            tracing::warn!(error = %e, "outbox cleanup failed; the sweeper republishes (deduplicated downstream)");
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub found: usize,
    pub republished: usize,
}

/// Republishes the entries older than the configured minimum age.
pub async fn sweep(deps: &Deps) -> Result<SweepReport, TableError> {
    let cutoff =
        (chrono::Utc::now() - chrono::Duration::seconds(deps.config.outbox_min_age_secs)).to_rfc3339_opts(SecondsFormat::Micros, true);
    let mut report = SweepReport::default();
    for s in 0..SHARDS {
        let page = deps
            .table
            .query(Query::new(keys::outbox(s)).sk(SkCond::Lt(cutoff.clone())).limit(SWEEP_PAGE))
            .await?;
        let events: Vec<Envelope> = page
            .items
            .iter()
            .filter_map(|i| i.get("event").cloned().and_then(|e| serde_json::from_value(e).ok()))
            .collect();
        if events.is_empty() {
            continue;
        }
        report.found += events.len();
        let before = events.len();
        flush(deps, &events).await;
        let left = deps
            .table
            .query(Query::new(keys::outbox(s)).sk(SkCond::Lt(cutoff.clone())).limit(SWEEP_PAGE))
            .await?
            .items
            .len();
        report.republished += before.saturating_sub(left);
    }
    Ok(report)
}

/// How many entries wait in the outbox (for tests and monitoring).
pub async fn pending(deps: &Deps) -> Result<usize, TableError> {
    let mut n = 0;
    for s in 0..SHARDS {
        n += crate::ports::table::query_all(deps.table.as_ref(), Query::new(keys::outbox(s)))
            .await?
            .len();
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Cause, ConnectionChanged, Event};
    use crate::ports::{EventPublisher, PublishError};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// A bus that is down until told otherwise, and counts what it got.
    #[derive(Default)]
    struct Flaky {
        up: AtomicBool,
        got: std::sync::Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl EventPublisher for Flaky {
        async fn publish(&self, events: &[Envelope]) -> Result<(), PublishError> {
            if !self.up.load(Ordering::SeqCst) {
                return Err(PublishError::Failed {
                    ids: events.iter().map(|e| e.id.clone()).collect(),
                    reason: "down".into(),
                });
            }
            self.got.lock().unwrap().extend(events.iter().map(|e| e.id.clone()));
            Ok(())
        }
    }

    #[tokio::test]
    async fn an_unpublished_event_stays_until_the_sweeper_publishes_it() {
        let e = crate::testing::embedded("outbox-test-secret-0123");
        let bus = Arc::new(Flaky::default());
        let mut deps = e.deps.clone();
        deps.publisher = bus.clone();
        let mut config = (*deps.config).clone();
        config.outbox_min_age_secs = 0;
        deps.config = Arc::new(config);
        let ev = Envelope::new(
            Event::ConnectionOpened(ConnectionChanged {
                connection_id: "c".into(),
                user_id: "u".into(),
            }),
            &Cause::default(),
        );
        deps.table.transact(entries(std::slice::from_ref(&ev))).await.unwrap();
        flush(&deps, std::slice::from_ref(&ev)).await;
        assert_eq!(pending(&deps).await.unwrap(), 1, "kept while the bus is down");
        assert_eq!(sweep(&deps).await.unwrap(), SweepReport { found: 1, republished: 0 });
        bus.up.store(true, Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert_eq!(sweep(&deps).await.unwrap(), SweepReport { found: 1, republished: 1 });
        assert_eq!(pending(&deps).await.unwrap(), 0);
        assert_eq!(*bus.got.lock().unwrap(), vec![ev.id.clone()]);
    }
}
