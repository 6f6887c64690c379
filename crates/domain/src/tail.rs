//! Resumes of one channel share their log reads. After a reconnect storm thousands of
//! clients ask for the same channel's tail at once; each would read it from the log's one
//! partition. Here the first to ask reads, and those who ask while it reads wait for the
//! next read, which starts after they asked (so it sees everything logged before their
//! subscription was written), and all of them are answered from it: one read per round,
//! not one per client.

use crate::channels::Channel;
use crate::log::{self, Replay};
use crate::ports::table::instance_key;
use crate::ports::{Table, TableError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// One round reads at most this many events (the furthest behind of its waiters first);
/// a waiter beyond it reads for itself.
const MAX_ROUND: u32 = 2_000;

type Key = (usize, String, String);

struct Waiter {
    after: u64,
    tx: oneshot::Sender<Option<Result<Replay, TableError>>>,
}

#[derive(Default)]
struct Group {
    waiting: Vec<Waiter>,
    reading: bool,
}

static GROUPS: Mutex<Option<HashMap<Key, Group>>> = Mutex::new(None);
static REQUESTS: AtomicU64 = AtomicU64::new(0);
static READS: AtomicU64 = AtomicU64::new(0);

/// Replays asked for, and log reads made for them, by this process.
pub fn stats() -> (u64, u64) {
    (REQUESTS.load(Ordering::Relaxed), READS.load(Ordering::Relaxed))
}

fn with_groups<T>(f: impl FnOnce(&mut HashMap<Key, Group>) -> T) -> T {
    let mut g = GROUPS.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(HashMap::new))
}

/// [`log::replay`], shared with the concurrent resumes of the same channel and epoch.
pub async fn replay(table: Arc<dyn Table>, channel: &Channel, epoch: &str, after: u64, max: u32) -> Result<Replay, TableError> {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    let key: Key = (instance_key(table.as_ref()), channel.to_string(), epoch.to_string());
    let (tx, rx) = oneshot::channel();
    let lead = with_groups(|groups| {
        let g = groups.entry(key.clone()).or_default();
        g.waiting.push(Waiter { after, tx });
        !std::mem::replace(&mut g.reading, true)
    });
    if lead {
        tokio::spawn(read_rounds(table.clone(), channel.clone(), key, max));
    }
    match rx.await {
        Ok(Some(r)) => r,
        // Not answerable from the shared read (or the reader is gone): read for itself.
        _ => {
            READS.fetch_add(1, Ordering::Relaxed);
            log::replay(table.as_ref(), channel, epoch, after, max).await
        }
    }
}

/// Reads rounds until nobody waits.
async fn read_rounds(table: Arc<dyn Table>, channel: Channel, key: Key, max: u32) {
    loop {
        let batch = with_groups(|groups| {
            let Some(g) = groups.get_mut(&key) else { return Vec::new() };
            let batch = std::mem::take(&mut g.waiting);
            if batch.is_empty() {
                groups.remove(&key);
            }
            batch
        });
        let Some(from) = batch.iter().map(|w| w.after).min() else { return };
        let to = batch.iter().map(|w| w.after).max().unwrap_or(from);
        let span = (to - from).saturating_add(u64::from(max)).min(u64::from(MAX_ROUND)) as u32;
        READS.fetch_add(1, Ordering::Relaxed);
        let r = log::replay(table.as_ref(), &channel, &key.2, from, span).await;
        for w in batch {
            let _ = w.tx.send(slice(&r, from, w.after, max));
        }
    }
}

/// One waiter's part of a round read from `from`: None when the round cannot answer it.
fn slice(r: &Result<Replay, TableError>, from: u64, after: u64, max: u32) -> Option<Result<Replay, TableError>> {
    match r {
        Err(e) => Some(Err(e.clone())),
        // An epoch change is everyone's; a trimmed log may be only the furthest behind's.
        Ok(Replay::Resync(reason)) if after == from || *reason == "epoch_changed" => Some(Ok(Replay::Resync(reason))),
        Ok(Replay::Resync(_)) => None,
        Ok(Replay::Events { events, head, more }) => {
            if after > head.seq {
                return None;
            }
            let mine: Vec<(u64, serde_json::Value)> = events.iter().filter(|(s, _)| *s > after).take(max as usize).cloned().collect();
            let last = mine.last().map_or(after, |e| e.0);
            // The round stopped short of this waiter's part: it reads for itself.
            if mine.is_empty() && *more {
                return None;
            }
            Some(Ok(Replay::Events {
                more: last < head.seq,
                events: mine,
                head: head.clone(),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_answers_each_waiter_from_its_own_seq() {
        let head = log::Head {
            epoch: "E".into(),
            seq: 10,
        };
        let events: Vec<(u64, serde_json::Value)> = (4..=10).map(|s| (s, serde_json::json!(s))).collect();
        let r = Ok(Replay::Events {
            events,
            head: head.clone(),
            more: false,
        });
        match slice(&r, 3, 7, 500) {
            Some(Ok(Replay::Events { events, more, .. })) => {
                assert_eq!(events.iter().map(|e| e.0).collect::<Vec<_>>(), [8, 9, 10]);
                assert!(!more);
            }
            other => panic!("{other:?}"),
        }
        // At most `max` each, and `more` then.
        match slice(&r, 3, 3, 2) {
            Some(Ok(Replay::Events { events, more, .. })) => assert_eq!((events.len(), more), (2, true)),
            other => panic!("{other:?}"),
        }
        // A trimmed log for the furthest behind is not the others'.
        let trimmed: Result<Replay, TableError> = Ok(Replay::Resync("log_trimmed"));
        assert!(slice(&trimmed, 3, 7, 500).is_none());
        assert!(matches!(slice(&trimmed, 3, 3, 500), Some(Ok(Replay::Resync("log_trimmed")))));
    }
}
