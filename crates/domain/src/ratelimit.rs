//! A token bucket per WebSocket connection, kept in the `Table` so that every Lambda
//! instance serving the connection draws from the same bucket. Every message costs
//! one token; an empty bucket refuses the action with `rate_limited`. A replay also costs
//! one token per [`REPLAYED_PER_TOKEN`] events it sent, charged after it (the bucket may go
//! into debt, down to minus the burst), so a client cannot pull a channel's log as fast as
//! it can ask.
//!
//! The hot path is one `get` and one conditional `put` (optimistic locking on `rev`);
//! a refused message costs the `get` only, so a flooding client is cheap to refuse.

use crate::config::CONNECTION_TTL_SECS;
use crate::keys;
use crate::ports::table::TTL;
use crate::ports::{Condition, Item, Table, TableError};
use serde_json::Value;

/// Tokens a connection may spend at once. A client that reconnects resubscribes (and
/// resumes) all its channels in one go: 20 covers that with room to spare.
pub const BURST: i64 = 20;
/// Tokens regained per second. Far above what a person or a well-behaved client does
/// (typing signals, pings, a few subscribes), low enough that one runaway client
/// costs at most ten invocations a second.
pub const PER_SEC: i64 = 10;
/// Attempts of the read-modify-write before a contended bucket counts as empty.
/// Concurrent messages of one connection each win one round, so a legitimate burst
/// of up to this many simultaneous frames still gets through.
pub const MAX_ATTEMPTS: usize = 5;

/// Replayed events per token charged.
pub const REPLAYED_PER_TOKEN: i64 = 50;

/// The bucket's sort key, in its connection's partition: `connections::remove`
/// deletes the whole partition, so the bucket goes with the connection.
pub const SK: &str = "RATE";

/// Tokens are counted in thousandths so that refill stays integer arithmetic
/// (exact in both adapters, and safe to compare in a condition).
pub const MILLI: i64 = 1000;
pub const CAPACITY: i64 = BURST * MILLI;
/// The attribute the conditional write locks on: every write increments it.
const REV: &str = "rev";

/// A bucket's state: `milli` thousandths of a token as of `at_ms` (epoch millis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub milli: i64,
    pub at_ms: i64,
}

impl Bucket {
    pub fn full(now_ms: i64) -> Self {
        Self {
            milli: CAPACITY,
            at_ms: now_ms,
        }
    }

    /// The bucket after refilling up to `now_ms` and spending one token, or None when
    /// it holds less than one. A clock behind `at_ms` (another instance's) refills
    /// nothing and never moves `at_ms` back.
    pub fn take(self, now_ms: i64) -> Option<Bucket> {
        let b = self.refilled(now_ms);
        (b.milli >= MILLI).then(|| Bucket {
            milli: b.milli - MILLI,
            ..b
        })
    }

    /// The bucket after refilling up to `now_ms` and spending `tokens`, into debt if need
    /// be (never below minus the burst).
    pub fn charge(self, now_ms: i64, tokens: i64) -> Bucket {
        let b = self.refilled(now_ms);
        Bucket {
            milli: b.milli.saturating_sub(tokens.saturating_mul(MILLI)).max(-CAPACITY),
            ..b
        }
    }

    fn refilled(self, now_ms: i64) -> Bucket {
        let elapsed = now_ms.saturating_sub(self.at_ms).max(0);
        // PER_SEC tokens a second is PER_SEC thousandths a millisecond.
        Bucket {
            milli: self.milli.saturating_add(elapsed.saturating_mul(PER_SEC)).min(CAPACITY),
            at_ms: self.at_ms.max(now_ms),
        }
    }
}

/// The stored bucket (full when missing or unreadable) and its revision as stored
/// (None when there is no live bucket). The condition compares the raw value, so a
/// damaged item is overwritten, never left to fail every condition until its TTL.
fn read(item: Option<&Item>, now_ms: i64) -> (Bucket, Option<Value>) {
    let bucket = match item.map(|i| (i.i64("milli"), i.i64("atMs"))) {
        Some((Some(milli), Some(at_ms))) => Bucket { milli, at_ms },
        _ => Bucket::full(now_ms),
    };
    (bucket, item.and_then(|i| i.get(REV)).cloned())
}

/// Spends one token of the connection's bucket at `now_ms`: Ok(false) when it is empty
/// (or too contended to update). Table errors are the caller's to weigh.
pub async fn take(table: &dyn Table, connection_id: &str, now_ms: i64) -> Result<bool, TableError> {
    spend(table, connection_id, now_ms, |b| b.take(now_ms)).await
}

/// Charges what a replay of `replayed` events costs (see [`REPLAYED_PER_TOKEN`]).
pub async fn charge_replay(table: &dyn Table, connection_id: &str, now_ms: i64, replayed: u32) {
    let tokens = i64::from(replayed) / REPLAYED_PER_TOKEN;
    if tokens == 0 {
        return;
    }
    if let Err(e) = spend(table, connection_id, now_ms, |b| Some(b.charge(now_ms, tokens))).await {
        tracing::warn!(error = %e, "replay not charged");
    }
}

/// Read-modify-write of the bucket: `next` gives the new state, or None to refuse.
async fn spend(table: &dyn Table, connection_id: &str, now_ms: i64, next: impl Fn(Bucket) -> Option<Bucket>) -> Result<bool, TableError> {
    let pk = keys::conn(connection_id);
    let now_secs = now_ms.div_euclid(1000);
    for _ in 0..MAX_ATTEMPTS {
        let (bucket, rev) = read(table.get(&pk, SK).await?.as_ref(), now_ms);
        let Some(next) = next(bucket) else {
            return Ok(false);
        };
        let next_rev = rev.as_ref().and_then(Value::as_i64).unwrap_or(0) + 1;
        let cond = match rev {
            Some(rev) => Condition::Eq(REV.into(), rev),
            // No live bucket. DynamoDB still evaluates conditions on an expired item it
            // has not deleted yet, so "expired" must count as absent here too.
            None => Condition::Or(vec![
                Condition::AttrNotExists(REV.into()),
                Condition::Le(TTL.into(), now_secs as f64),
            ]),
        };
        let item = Item::new(pk.as_str(), SK)
            .with("milli", next.milli)
            .with("atMs", next.at_ms)
            .with(REV, next_rev)
            .with_ttl(now_secs + CONNECTION_TTL_SECS);
        match table.put(item, Some(cond)).await {
            Ok(()) => return Ok(true),
            // Another message of this connection won the race: read again.
            Err(TableError::ConditionFailed) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Whether a message may run. Fails open on a table error: the limiter guards against
/// floods, and must not turn a table hiccup into refused actions (which would hit the
/// table themselves and report their own error).
pub async fn admit(table: &dyn Table, connection_id: &str, now_ms: i64) -> bool {
    take(table, connection_id, now_ms).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "rate limit not checked");
        true
    })
}
