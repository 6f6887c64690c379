//! `realtime_domain::ratelimit` on the embedded adapters.

use realtime_domain::config::CONNECTION_TTL_SECS;
use realtime_domain::keys;
use realtime_domain::ports::{Condition, Item, Table, TableError};

use realtime_domain::ratelimit::*;
use realtime_embedded::testing::{embedded, FIXTURE_SECRET};
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000;

/// The fake clock starts at the real now: the table hides items whose TTL has passed.
fn t0() -> i64 {
    realtime_domain::ports::table::now_epoch() * 1000
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
    realtime_domain::connections::remove(t, "c1").await.unwrap();
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
    async fn update(
        &self,
        pk: &str,
        sk: &str,
        u: Vec<realtime_domain::ports::Update>,
        cond: Option<Condition>,
    ) -> Result<Item, TableError> {
        self.inner.update(pk, sk, u, cond).await
    }
    async fn delete(&self, pk: &str, sk: &str, cond: Option<Condition>) -> Result<(), TableError> {
        self.inner.delete(pk, sk, cond).await
    }
    async fn transact(&self, ops: Vec<realtime_domain::ports::TxOp>) -> Result<(), TableError> {
        self.inner.transact(ops).await
    }
    async fn query(&self, q: realtime_domain::ports::Query) -> Result<realtime_domain::ports::Page, TableError> {
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
        async fn update(&self, _: &str, _: &str, _: Vec<realtime_domain::ports::Update>, _: Option<Condition>) -> Result<Item, TableError> {
            unreachable!()
        }
        async fn delete(&self, _: &str, _: &str, _: Option<Condition>) -> Result<(), TableError> {
            unreachable!()
        }
        async fn transact(&self, _: Vec<realtime_domain::ports::TxOp>) -> Result<(), TableError> {
            unreachable!()
        }
        async fn query(&self, _: realtime_domain::ports::Query) -> Result<realtime_domain::ports::Page, TableError> {
            unreachable!()
        }
    }
    assert!(take(&Down, "c1", T0).await.is_err());
    assert!(admit(&Down, "c1", T0).await);
}
