//! Embedded dependencies for tests and tools: in-memory table, a bus with no rules,
//! and a hub whose sockets a test reads directly.

use crate::bus::EmbeddedBus;
use crate::hub::Hub;
use crate::sqlite::SqliteTable;
use realtime_domain::config::Config;
use realtime_domain::deps::Deps;
use realtime_domain::ports::{Condition, EventPublisher, Item, Page, Query, Table, TableError, TxOp, Update};
use std::sync::Arc;

/// The JWT secret the event fixtures under `tests/fixtures/` are signed with.
pub const FIXTURE_SECRET: &str = "local-dev-secret-change-me-0123456789";

pub struct Embedded {
    pub deps: Deps,
    pub hub: Arc<Hub>,
    pub bus: Arc<EmbeddedBus>,
}

pub fn embedded(jwt_secret: &str) -> Embedded {
    let hub = Arc::new(Hub::new());
    let bus = Arc::new(EmbeddedBus::new(Vec::new()).unwrap_or_else(|_| unreachable!("no rules, no invalid pattern")));
    let table = RelayAtOnce {
        inner: SqliteTable::in_memory(),
        bus: bus.clone(),
        draining: tokio::sync::Mutex::new(()),
    };
    let deps = Deps::new(Arc::new(table), bus.clone(), hub.clone(), Config::local(jwt_secret));
    Embedded { deps, hub, bus }
}

/// The in-memory table with its change feed relayed at once: a write that adds log
/// entries publishes their events (what the relay does) before it returns, so a test sees
/// a route's events on the bus tap as soon as the route answers.
struct RelayAtOnce {
    inner: SqliteTable,
    bus: Arc<EmbeddedBus>,
    draining: tokio::sync::Mutex<()>,
}

impl RelayAtOnce {
    async fn relay(&self) -> Result<(), TableError> {
        let _one_at_a_time = self.draining.lock().await;
        loop {
            let rows = self.inner.feed(0, 1000).await?;
            if rows.is_empty() {
                return Ok(());
            }
            let events: Vec<_> = rows
                .iter()
                .filter_map(|(_, item)| realtime_domain::log::relayed_event(item))
                .collect();
            self.bus.publish(&events).await.map_err(|e| TableError::Other(e.to_string()))?;
            self.inner.feed_ack(rows.into_iter().map(|r| r.0).collect()).await?;
        }
    }
}

#[async_trait::async_trait]
impl Table for RelayAtOnce {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, TableError> {
        self.inner.get(pk, sk).await
    }
    async fn put(&self, item: Item, cond: Option<Condition>) -> Result<(), TableError> {
        self.inner.put(item, cond).await?;
        self.relay().await
    }
    async fn update(&self, pk: &str, sk: &str, updates: Vec<Update>, cond: Option<Condition>) -> Result<Item, TableError> {
        self.inner.update(pk, sk, updates, cond).await
    }
    async fn delete(&self, pk: &str, sk: &str, cond: Option<Condition>) -> Result<(), TableError> {
        self.inner.delete(pk, sk, cond).await
    }
    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), TableError> {
        self.inner.transact(ops).await?;
        self.relay().await
    }
    async fn query(&self, q: Query) -> Result<Page, TableError> {
        self.inner.query(q).await
    }
}
