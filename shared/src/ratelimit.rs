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
const MILLI: i64 = 1000;
const CAPACITY: i64 = BURST * MILLI;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{embedded, FIXTURE_SECRET};
    use std::sync::Arc;

    const T0: i64 = 1_700_000_000_000;

    /// The fake clock starts at the real now: the table hides items whose TTL has passed.
    fn t0() -> i64 {
        crate::ports::table::now_epoch() * 1000
    }

    async fn takes(table: &dyn Table, conn: &str, now_ms: i64, n: usize) -> usize {
        let mut ok = 0;
        for _ in 0..n {
            ok += usize::from(take(table, conn, now_ms).await.unwrap());
        }
        ok
    }

    #[test]
    fn the_pure_bucket_refills_at_its_rate_up_to_its_capacity() {
        let empty = Bucket { milli: 0, at_ms: T0 };
        assert_eq!(empty.take(T0), None);
        assert_eq!(empty.take(T0 + 99), None, "99 ms refill 0.99 tokens");
        assert_eq!(empty.take(T0 + 100), Some(Bucket { milli: 0, at_ms: T0 + 100 }));
        let long_idle = empty.take(T0 + 3_600_000).unwrap();
        assert_eq!(long_idle.milli, CAPACITY - MILLI, "capped at the burst");
        // A clock behind the stored one refills nothing and keeps `at_ms`.
        let b = Bucket {
            milli: 5 * MILLI,
            at_ms: T0,
        };
        assert_eq!(
            b.take(T0 - 10_000),
            Some(Bucket {
                milli: 4 * MILLI,
                at_ms: T0
            })
        );
        // Extreme clocks saturate instead of overflowing.
        assert!(Bucket { milli: 0, at_ms: i64::MIN }.take(i64::MAX).is_some());
        assert!(Bucket { milli: 0, at_ms: i64::MAX }.take(i64::MIN).is_none());
    }

    #[test]
    fn a_charge_goes_into_debt_down_to_minus_the_burst() {
        let full = Bucket::full(T0);
        let b = full.charge(T0, 30);
        assert_eq!(b.milli, -10 * MILLI);
        assert_eq!(b.take(T0), None);
        // Ten tokens of debt plus one to spend: 1.1 s at 10 a second.
        assert_eq!(b.take(T0 + 1_099), None);
        assert!(b.take(T0 + 1_100).is_some());
        assert_eq!(full.charge(T0, 1_000).milli, -CAPACITY, "the debt is bounded");
    }

    #[tokio::test]
    async fn a_replay_is_charged_by_what_it_sent() {
        let e = embedded(FIXTURE_SECRET);
        let t = e.deps.table.as_ref();
        let t0 = t0();
        charge_replay(t, "c1", t0, 49).await;
        assert_eq!(takes(t, "c1", t0, 1).await, 1, "under 50 events is free");
        charge_replay(t, "c1", t0, 500).await;
        // The burst (20) less one, less ten for the replay: nine left.
        assert_eq!(takes(t, "c1", t0, 20).await, 9);
    }

    #[tokio::test]
    async fn a_burst_passes_then_the_bucket_refills_at_its_rate() {
        let e = embedded(FIXTURE_SECRET);
        let t = e.deps.table.as_ref();
        let t0 = t0();
        assert_eq!(takes(t, "c1", t0, 25).await, BURST as usize);
        assert_eq!(takes(t, "c1", t0 + 99, 1).await, 0);
        assert_eq!(takes(t, "c1", t0 + 100, 2).await, 1);
        assert_eq!(takes(t, "c1", t0 + 1_100, 20).await, PER_SEC as usize);
        // Another connection has its own bucket.
        assert_eq!(takes(t, "c2", t0, 1).await, 1);
        // After a long idle the bucket is full again, not fuller.
        assert_eq!(takes(t, "c1", t0 + 3_600_000, 30).await, BURST as usize);
    }

    #[tokio::test]
    async fn the_bucket_has_the_connection_ttl_and_goes_with_the_connection() {
        let e = embedded(FIXTURE_SECRET);
        let t = e.deps.table.as_ref();
        let t0 = t0();
        assert!(take(t, "c1", t0).await.unwrap());
        let item = t.get(&keys::conn("c1"), SK).await.unwrap().unwrap();
        assert_eq!(item.ttl(), Some(t0 / 1000 + CONNECTION_TTL_SECS));
        assert_eq!((item.i64("milli"), item.i64("rev")), (Some(CAPACITY - MILLI), Some(1)));
        crate::connections::remove(t, "c1").await.unwrap();
        assert_eq!(t.get(&keys::conn("c1"), SK).await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_expired_or_damaged_bucket_starts_full() {
        let e = embedded(FIXTURE_SECRET);
        let t = e.deps.table.as_ref();
        let t0 = t0();
        let stale = Item::new(keys::conn("c1"), SK)
            .with("milli", 0)
            .with("atMs", t0)
            .with("rev", 7)
            .with_ttl(t0 / 1000 - 1);
        t.put(stale, None).await.unwrap();
        assert_eq!(takes(t, "c1", t0, 30).await, BURST as usize);
        // So does a damaged one, which is overwritten.
        t.put(Item::new(keys::conn("c2"), SK).with("rev", "x").with_ttl(t0 / 1000 + 60), None)
            .await
            .unwrap();
        assert_eq!(takes(t, "c2", t0, 30).await, BURST as usize);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_messages_never_spend_more_than_the_bucket_holds() {
        let e = embedded(FIXTURE_SECRET);
        let table: Arc<dyn Table> = e.deps.table.clone();
        let t0 = t0();
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let table = table.clone();
                tokio::spawn(async move { take(table.as_ref(), "c1", t0).await.unwrap() })
            })
            .collect();
        let mut granted = 0;
        for t in tasks {
            granted += i64::from(t.await.unwrap());
        }
        assert!((1..=BURST).contains(&granted), "{granted}");
        // Every grant was written: the stored bucket accounts for each one exactly.
        let item = table.get(&keys::conn("c1"), SK).await.unwrap().unwrap();
        assert_eq!(item.i64("milli"), Some(CAPACITY - granted * MILLI));
        assert_eq!(item.i64("rev"), Some(granted));
    }

    /// A table on which another instance spends a token right after our first read.
    struct Racy {
        inner: Arc<dyn Table>,
        now_ms: i64,
        raced: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl Table for Racy {
        async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, TableError> {
            let read = self.inner.get(pk, sk).await;
            if !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst) {
                assert!(take(self.inner.as_ref(), "c1", self.now_ms).await?);
            }
            read
        }
        async fn put(&self, item: Item, cond: Option<Condition>) -> Result<(), TableError> {
            self.inner.put(item, cond).await
        }
        async fn update(&self, pk: &str, sk: &str, u: Vec<crate::ports::Update>, cond: Option<Condition>) -> Result<Item, TableError> {
            self.inner.update(pk, sk, u, cond).await
        }
        async fn delete(&self, pk: &str, sk: &str, cond: Option<Condition>) -> Result<(), TableError> {
            self.inner.delete(pk, sk, cond).await
        }
        async fn transact(&self, ops: Vec<crate::ports::TxOp>) -> Result<(), TableError> {
            self.inner.transact(ops).await
        }
        async fn query(&self, q: crate::ports::Query) -> Result<crate::ports::Page, TableError> {
            self.inner.query(q).await
        }
    }

    #[tokio::test]
    async fn a_lost_race_is_read_again_and_both_tokens_are_counted() {
        for existing in [false, true] {
            let e = embedded(FIXTURE_SECRET);
            let t0 = t0();
            if existing {
                assert!(take(e.deps.table.as_ref(), "c1", t0).await.unwrap());
            }
            let racy = Racy {
                inner: e.deps.table.clone(),
                now_ms: t0,
                raced: false.into(),
            };
            assert!(take(&racy, "c1", t0).await.unwrap());
            let item = e.deps.table.get(&keys::conn("c1"), SK).await.unwrap().unwrap();
            let spent = 2 + i64::from(existing);
            assert_eq!((item.i64("milli"), item.i64("rev")), (Some(CAPACITY - spent * MILLI), Some(spent)));
        }
    }

    #[tokio::test]
    async fn serve_refuses_messages_beyond_the_burst_with_rate_limited() {
        use crate::adapters::hub::Outbound;
        use crate::ws::{serve, WsRequest, WsResult};
        let e = embedded(FIXTURE_SECRET);
        let mut rx = e.hub.register("c1", None);
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let handler = |_: crate::Deps, _: WsRequest| {
            let ran = ran.clone();
            async move {
                ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                WsResult::Ok(crate::ws::ok())
            }
        };
        let req = |event_type: &str| {
            let mut r = WsRequest::default();
            r.request_context.connection_id = Some("c1".into());
            r.request_context.event_type = Some(event_type.into());
            r.body = Some(r#"{"action":"ping","id":"p9"}"#.into());
            r
        };
        for _ in 0..BURST {
            serve(handler, e.deps.clone(), req("MESSAGE")).await;
        }
        assert_eq!(serve(handler, e.deps.clone(), req("MESSAGE")).await.status_code, 200);
        let Ok(Some(Outbound::Text(f))) = tokio::time::timeout(std::time::Duration::from_secs(2), rx.recv()).await else {
            panic!("no error frame")
        };
        assert_eq!(
            f,
            r#"{"type":"error","id":"p9","code":"rate_limited","message":"too many requests"}"#
        );
        assert_eq!(
            ran.load(std::sync::atomic::Ordering::SeqCst),
            BURST as usize,
            "the refused action did not run"
        );
        // `$connect` and `$disconnect` spend nothing and are never refused.
        serve(handler, e.deps.clone(), req("CONNECT")).await;
        serve(handler, e.deps.clone(), req("DISCONNECT")).await;
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), BURST as usize + 2);
    }

    #[tokio::test]
    async fn table_errors_fail_open() {
        struct Down;
        #[async_trait::async_trait]
        impl Table for Down {
            async fn get(&self, _: &str, _: &str) -> Result<Option<Item>, TableError> {
                Err(TableError::Transient("down".into()))
            }
            async fn put(&self, _: Item, _: Option<Condition>) -> Result<(), TableError> {
                unreachable!()
            }
            async fn update(&self, _: &str, _: &str, _: Vec<crate::ports::Update>, _: Option<Condition>) -> Result<Item, TableError> {
                unreachable!()
            }
            async fn delete(&self, _: &str, _: &str, _: Option<Condition>) -> Result<(), TableError> {
                unreachable!()
            }
            async fn transact(&self, _: Vec<crate::ports::TxOp>) -> Result<(), TableError> {
                unreachable!()
            }
            async fn query(&self, _: crate::ports::Query) -> Result<crate::ports::Page, TableError> {
                unreachable!()
            }
        }
        assert!(take(&Down, "c1", T0).await.is_err());
        assert!(admit(&Down, "c1", T0).await);
    }
}
