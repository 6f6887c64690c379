//! The outbox is the channel log: a writer commits its state change together with its
//! events' log entries ([`commit`]), sequenced at the source. One durable write is both
//! the outbox entry and the log entry. The table's change feed (DynamoDB Streams in
//! AWS, the embedded table's feed locally) hands each new entry to the relay
//! ([`relay`]), which publishes it to the bus; the feed keeps it until the relay
//! succeeds, so an event of an answered write is never lost, and nothing has to be
//! marked or deleted after publishing.
//!
//! Events with no log entry (`low` ones such as typing, and events only on unlogged
//! channels) are published by their writer right after the commit, best effort.

use crate::deps::Deps;
use crate::events::{Envelope, Position};
use crate::log;
use crate::ports::{PublishError, TableError, TxOp};
use std::time::Duration;

/// How long a write keeps retrying while concurrent writers of its channels take the
/// seqs it read (50 writers on one channel wait their turn well within it).
const CONTENTION_BUDGET: Duration = Duration::from_secs(20);

/// Commits `ops` (the state change) with the events' log entries in one transaction
/// and returns the events, sequenced. A head moved by a concurrent writer is read again
/// and the transaction retried, so contention only ever retries. A cancellation by one
/// of the caller's own conditions comes back with the caller's indexes only.
pub async fn commit(deps: &Deps, ops: Vec<TxOp>, events: &[Envelope]) -> Result<Vec<Envelope>, TableError> {
    let table = deps.table.as_ref();
    // Writers of one channel in this process take turns instead of colliding on its next
    // seq; writers in other processes (other Lambda instances) still meet the condition.
    let mut channels: Vec<String> = events.iter().flat_map(log::logged_channels).map(|c| c.to_string()).collect();
    channels.sort();
    channels.dedup();
    let mut _turns = Vec::with_capacity(channels.len());
    for c in &channels {
        _turns.push(channel_lock(table, c).lock_owned().await);
    }
    let own = ops.len();
    let mut last_err = None;
    let deadline = tokio::time::Instant::now() + CONTENTION_BUDGET;
    let mut attempt: u32 = 0;
    // Seqs found taken: the next attempt continues after them without reading again.
    let mut taken: Vec<Position> = Vec::new();
    while tokio::time::Instant::now() < deadline {
        attempt += 1;
        let staged = log::stage_after(table, events, deps.config.log_retention_secs, &taken).await?;
        let mut all = ops.clone();
        all.extend(staged.ops.iter().cloned());
        match table.transact(all).await {
            Ok(()) => {
                publish_direct(deps, &staged.unlogged()).await;
                return Ok(staged.events);
            }
            Err(TableError::TransactionCanceled { failed }) if failed.iter().any(|i| *i < own) => {
                return Err(TableError::TransactionCanceled {
                    failed: failed.into_iter().filter(|i| *i < own).collect(),
                });
            }
            // Another writer took a seq: the failed entries' seqs exist, go on after them.
            Err(TableError::TransactionCanceled { failed }) => {
                let found: Vec<Position> = failed
                    .iter()
                    .filter_map(|i| staged.positions.get(i - own).cloned().flatten())
                    .collect();
                if found.len() == failed.len() {
                    taken.extend(found);
                    continue;
                }
                taken.clear();
            }
            Err(e @ TableError::Transient(_)) => {
                // A transient error may hide a transaction that landed (a timeout after the
                // commit): the first entry tells, so the events are never written twice.
                if landed(deps, &staged).await? {
                    publish_direct(deps, &staged.unlogged()).await;
                    return Ok(staged.events);
                }
                taken.clear();
                last_err = Some(e);
            }
            Err(e) => return Err(e),
        }
        // Full jitter, capped: the writers of a hot channel spread out instead of colliding again.
        let cap = (4u64 << attempt.min(5)).min(100);
        tokio::time::sleep(Duration::from_millis(1 + rand::random::<u64>() % cap)).await;
    }
    Err(last_err.unwrap_or_else(|| TableError::Transient("the channel's head kept moving; retry".into())))
}

/// The process's lock of a channel's next seq in one table (dropped with its last holder).
fn channel_lock(table: &dyn crate::ports::Table, channel: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, Weak};
    type Locks = HashMap<(usize, String), Weak<tokio::sync::Mutex<()>>>;
    static LOCKS: Mutex<Option<Locks>> = Mutex::new(None);
    // By the table's address too: tests run several stacks (as if processes) in one.
    let key = (crate::ports::table::instance_key(table), channel.to_string());
    let mut guard = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(lock) = map.get(&key).and_then(Weak::upgrade) {
        return lock;
    }
    if map.len() >= 1024 {
        map.retain(|_, w| w.strong_count() > 0);
    }
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    map.insert(key, Arc::downgrade(&lock));
    lock
}

async fn landed(deps: &Deps, staged: &log::Staged) -> Result<bool, TableError> {
    let Some((pk, sk, id)) = staged.entries.first() else {
        return Ok(false);
    };
    let item = deps.table.get(pk, sk).await?;
    Ok(item
        .as_ref()
        .and_then(|i| i.get("event"))
        .and_then(|e| e.get("id"))
        .and_then(|v| v.as_str())
        == Some(id.as_str()))
}

async fn publish_direct(deps: &Deps, events: &[Envelope]) {
    if events.is_empty() {
        return;
    }
    if let Err(e) = deps.publisher.publish(events).await {
        tracing::warn!(error = %e, "unlogged events not published (best effort: typing and the like)");
    }
}

/// The relay: publishes the events of new log entries (what the change feed found).
/// An error leaves them on the feed, which hands them over again.
pub async fn relay(deps: &Deps, events: &[Envelope]) -> Result<(), PublishError> {
    deps.publisher.publish(events).await
}
