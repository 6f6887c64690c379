//! The three ports wrapped to count what they cost on AWS. Every call of a port maps
//! one to one onto an AWS request (`Table` → DynamoDB, `EventPublisher` → EventBridge
//! `PutEvents`, `ConnectionPusher` → the `@connections` management API), so counting
//! at the port, around the embedded adapters, counts the requests the AWS adapters
//! would make for the same work. Capacity units follow DynamoDB's rules, with item sizes
//! estimated from the JSON of their attributes.

use async_trait::async_trait;
use realtime_domain::events::Envelope;
use realtime_domain::ports::{
    Condition, ConnectionInfo, ConnectionPusher, EventPublisher, Index, Item, Page, PublishError, PushError, Query, Table, TableError,
    TxOp, Update,
};
use serde::Serialize;
use std::sync::{Arc, Mutex};

/// Requests and capacity, as AWS bills them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    pub get_item: u64,
    pub put_item: u64,
    pub update_item: u64,
    pub delete_item: u64,
    pub transact_write_items: u64,
    /// Items in those transactions (each billed at twice a plain write).
    pub transact_items: u64,
    /// Query requests (1 MB pages, as DynamoDB returns them).
    pub query: u64,
    pub query_items: u64,
    /// Read and write request units (on-demand).
    pub rru: f64,
    pub wru: f64,
    /// EventBridge `PutEvents` requests (≤ 10 entries each) and entries.
    pub put_events: u64,
    pub put_events_entries: u64,
    /// `@connections` requests.
    pub post_to_connection: u64,
    pub delete_connection: u64,
    pub get_connection: u64,
}

impl Counts {
    pub fn dynamodb_requests(&self) -> u64 {
        self.get_item + self.put_item + self.update_item + self.delete_item + self.transact_write_items + self.query
    }

    pub fn minus(&self, before: &Counts) -> Counts {
        Counts {
            get_item: self.get_item - before.get_item,
            put_item: self.put_item - before.put_item,
            update_item: self.update_item - before.update_item,
            delete_item: self.delete_item - before.delete_item,
            transact_write_items: self.transact_write_items - before.transact_write_items,
            transact_items: self.transact_items - before.transact_items,
            query: self.query - before.query,
            query_items: self.query_items - before.query_items,
            rru: self.rru - before.rru,
            wru: self.wru - before.wru,
            put_events: self.put_events - before.put_events,
            put_events_entries: self.put_events_entries - before.put_events_entries,
            post_to_connection: self.post_to_connection - before.post_to_connection,
            delete_connection: self.delete_connection - before.delete_connection,
            get_connection: self.get_connection - before.get_connection,
        }
    }
}

/// Shared by the three wrappers of one set of dependencies.
#[derive(Default)]
pub struct Counter {
    counts: Mutex<Counts>,
    /// Every event published, in order (so a test can hand them to the fan-out).
    published: Mutex<Vec<Envelope>>,
}

impl Counter {
    pub fn snapshot(&self) -> Counts {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn take_published(&self) -> Vec<Envelope> {
        std::mem::take(&mut *self.published.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn add(&self, f: impl FnOnce(&mut Counts)) {
        f(&mut self.counts.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// DynamoDB's size of an item, estimated: names plus values, values as their JSON.
pub fn item_size(item: &Item) -> usize {
    let value = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.len(),
        other => other.to_string().len(),
    };
    2 + item.pk.len() + 2 + item.sk.len() + item.attrs.iter().map(|(k, v)| k.len() + value(v)).sum::<usize>()
}

fn units(bytes: usize, unit: usize) -> f64 {
    (bytes.div_ceil(unit)).max(1) as f64
}

const KB: usize = 1024;
/// DynamoDB returns at most 1 MB per Query page.
const PAGE: usize = 1024 * KB;

pub struct CountingTable {
    pub inner: Arc<dyn Table>,
    pub counter: Arc<Counter>,
}

#[async_trait]
impl Table for CountingTable {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, TableError> {
        let r = self.inner.get(pk, sk).await;
        // Strongly consistent (the DynamoDB adapter's GetItem): 1 RRU per 4 KB, at least 1.
        let size = r.as_ref().ok().and_then(|i| i.as_ref().map(item_size)).unwrap_or(0);
        self.counter.add(|c| {
            c.get_item += 1;
            c.rru += units(size, 4 * KB);
        });
        r
    }

    async fn put(&self, item: Item, cond: Option<Condition>) -> Result<(), TableError> {
        let size = item_size(&item);
        self.counter.add(|c| {
            c.put_item += 1;
            c.wru += units(size, KB);
        });
        self.inner.put(item, cond).await
    }

    async fn update(&self, pk: &str, sk: &str, updates: Vec<Update>, cond: Option<Condition>) -> Result<Item, TableError> {
        let r = self.inner.update(pk, sk, updates, cond).await;
        let size = r.as_ref().map(item_size).unwrap_or(0);
        self.counter.add(|c| {
            c.update_item += 1;
            c.wru += units(size, KB);
        });
        r
    }

    async fn delete(&self, pk: &str, sk: &str, cond: Option<Condition>) -> Result<(), TableError> {
        self.counter.add(|c| {
            c.delete_item += 1;
            c.wru += 1.0;
        });
        self.inner.delete(pk, sk, cond).await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), TableError> {
        // Transactional writes cost 2 WRU per KB of each item; a delete, an update and a
        // condition check are counted as one small item (conservative for the check).
        let wru: f64 = ops
            .iter()
            .map(|op| match op {
                TxOp::Put { item, .. } => 2.0 * units(item_size(item), KB),
                _ => 2.0,
            })
            .sum();
        let n = ops.len() as u64;
        self.counter.add(|c| {
            c.transact_write_items += 1;
            c.transact_items += n;
            c.wru += wru;
        });
        self.inner.transact(ops).await
    }

    async fn query(&self, q: Query) -> Result<Page, TableError> {
        let consistent = q.index == Index::Primary;
        let r = self.inner.query(q).await;
        if let Ok(page) = &r {
            let bytes: usize = page.items.iter().map(item_size).sum();
            // The embedded adapter answers in one page what DynamoDB pages at 1 MB.
            let pages = bytes.div_ceil(PAGE).max(1);
            let rru = units(bytes, 4 * KB) * if consistent { 1.0 } else { 0.5 };
            let items = page.items.len() as u64;
            self.counter.add(|c| {
                c.query += pages as u64;
                c.query_items += items;
                c.rru += rru;
            });
        }
        r
    }
}

pub struct CountingPublisher {
    pub inner: Arc<dyn EventPublisher>,
    pub counter: Arc<Counter>,
}

#[async_trait]
impl EventPublisher for CountingPublisher {
    async fn publish(&self, events: &[Envelope]) -> Result<(), PublishError> {
        // The EventBridge adapter sends ≤ 10 entries per PutEvents.
        let n = events.len() as u64;
        self.counter.add(|c| {
            c.put_events += n.div_ceil(10);
            c.put_events_entries += n;
        });
        self.counter
            .published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(events);
        self.inner.publish(events).await
    }
}

pub struct CountingPusher {
    pub inner: Arc<dyn ConnectionPusher>,
    pub counter: Arc<Counter>,
}

#[async_trait]
impl ConnectionPusher for CountingPusher {
    async fn post(&self, connection_id: &str, data: &[u8]) -> Result<(), PushError> {
        self.counter.add(|c| c.post_to_connection += 1);
        self.inner.post(connection_id, data).await
    }

    async fn close(&self, connection_id: &str) -> Result<(), PushError> {
        self.counter.add(|c| c.delete_connection += 1);
        self.inner.close(connection_id).await
    }

    async fn info(&self, connection_id: &str) -> Result<ConnectionInfo, PushError> {
        self.counter.add(|c| c.get_connection += 1);
        self.inner.info(connection_id).await
    }
}

/// Wraps every port of `deps` in a counter.
pub fn wrap(deps: &realtime_domain::Deps) -> (realtime_domain::Deps, Arc<Counter>) {
    let counter = Arc::new(Counter::default());
    let mut d = deps.clone();
    d.table = Arc::new(CountingTable {
        inner: deps.table.clone(),
        counter: counter.clone(),
    });
    d.publisher = Arc::new(CountingPublisher {
        inner: deps.publisher.clone(),
        counter: counter.clone(),
    });
    d.pusher = Arc::new(CountingPusher {
        inner: deps.pusher.clone(),
        counter: counter.clone(),
    });
    (d, counter)
}
