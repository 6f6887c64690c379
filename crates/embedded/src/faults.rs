//! Fault injection: wrappers that make a share of the calls to a port fail the way
//! the real services fail transiently (a throttled write, a failed `PutEvents`, a
//! throttled `PostToConnection`). The local stack's `--fault-rate` and the delivery
//! tests use them to show that nothing is lost.

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use realtime_domain::events::Envelope;
use realtime_domain::ports::{Condition, TxOp, Update};
use realtime_domain::ports::{
    ConnectionInfo, ConnectionPusher, EventPublisher, Item, Page, PublishError, PushError, Query, Table, TableError,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A seeded coin that comes up "fail" with probability `rate`, and counts.
pub struct Faults {
    rate: f64,
    rng: Mutex<StdRng>,
    pub injected: AtomicU64,
}

impl Faults {
    pub fn new(rate: f64, seed: u64) -> Arc<Self> {
        Arc::new(Self {
            rate: rate.clamp(0.0, 1.0),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            injected: AtomicU64::new(0),
        })
    }

    fn hit(&self) -> bool {
        let hit = self.rng.lock().unwrap_or_else(|e| e.into_inner()).random_bool(self.rate);
        if hit {
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }
}

/// Writes fail with `Transient` (as a throttled or conflicting DynamoDB write); reads pass.
pub struct FaultyTable {
    pub inner: Arc<dyn Table>,
    pub faults: Arc<Faults>,
}

impl FaultyTable {
    fn check(&self) -> Result<(), TableError> {
        if self.faults.hit() {
            Err(TableError::Transient("injected fault".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Table for FaultyTable {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, TableError> {
        self.inner.get(pk, sk).await
    }
    async fn put(&self, item: Item, cond: Option<Condition>) -> Result<(), TableError> {
        self.check()?;
        self.inner.put(item, cond).await
    }
    async fn update(&self, pk: &str, sk: &str, updates: Vec<Update>, cond: Option<Condition>) -> Result<Item, TableError> {
        self.check()?;
        self.inner.update(pk, sk, updates, cond).await
    }
    async fn delete(&self, pk: &str, sk: &str, cond: Option<Condition>) -> Result<(), TableError> {
        self.check()?;
        self.inner.delete(pk, sk, cond).await
    }
    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), TableError> {
        self.check()?;
        self.inner.transact(ops).await
    }
    async fn query(&self, q: Query) -> Result<Page, TableError> {
        self.inner.query(q).await
    }
}

/// A whole `PutEvents` call fails (every entry unsent).
pub struct FaultyPublisher {
    pub inner: Arc<dyn EventPublisher>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl EventPublisher for FaultyPublisher {
    async fn publish(&self, events: &[Envelope]) -> Result<(), PublishError> {
        if self.faults.hit() {
            return Err(PublishError::Failed {
                ids: events.iter().map(|e| e.id.clone()).collect(),
                reason: "injected fault".into(),
            });
        }
        self.inner.publish(events).await
    }
}

/// A post is throttled (429 after the adapter's retries) and never arrives.
pub struct FaultyPusher {
    pub inner: Arc<dyn ConnectionPusher>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl ConnectionPusher for FaultyPusher {
    async fn post(&self, connection_id: &str, data: &[u8]) -> Result<(), PushError> {
        if self.faults.hit() {
            return Err(PushError::Throttled);
        }
        self.inner.post(connection_id, data).await
    }
    async fn close(&self, connection_id: &str) -> Result<(), PushError> {
        self.inner.close(connection_id).await
    }
    async fn info(&self, connection_id: &str) -> Result<ConnectionInfo, PushError> {
        self.inner.info(connection_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fault_rate_is_what_was_asked() {
        let f = Faults::new(0.3, 7);
        let hits = (0..10_000).filter(|_| f.hit()).count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
        assert_eq!(f.injected.load(Ordering::Relaxed), hits as u64);
        assert_eq!((0..100).filter(|_| Faults::new(0.0, 1).hit()).count(), 0);
    }
}
