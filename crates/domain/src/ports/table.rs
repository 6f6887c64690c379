//! The `Table` port: single-table items with conditional writes, transactions and
//! ordered queries. DynamoDB's semantics are the reference; the embedded adapter
//! matches them for everything declared here (see the contract tests).

use async_trait::async_trait;
use serde_json::{Map, Value};

/// Attribute names with a meaning to the adapters.
pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1PK: &str = "gsi1pk";
pub const GSI1SK: &str = "gsi1sk";
/// Epoch seconds after which the item is gone (DynamoDB TTL; reads filter on it too).
pub const TTL: &str = "ttl";

/// One item: its key and its attributes (JSON values; numbers, strings, bools,
/// lists and maps map one-to-one onto DynamoDB attribute values).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    pub attrs: Map<String, Value>,
}

impl Item {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
            attrs: Map::new(),
        }
    }
    /// Builder-style attribute setter.
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.attrs.insert(name.to_string(), value.into());
        self
    }
    pub fn with_ttl(self, epoch_secs: i64) -> Self {
        self.with(TTL, epoch_secs)
    }
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.attrs.get(name)
    }
    pub fn str(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).and_then(Value::as_str)
    }
    pub fn i64(&self, name: &str) -> Option<i64> {
        self.attrs.get(name).and_then(Value::as_i64)
    }
    pub fn ttl(&self) -> Option<i64> {
        self.i64(TTL)
    }
    /// True when the item's TTL has passed (DynamoDB deletes such items late).
    pub fn is_expired(&self, now_epoch_secs: i64) -> bool {
        self.ttl().is_some_and(|t| t <= now_epoch_secs)
    }
}

/// A typed condition on one item (the item named by the operation's key).
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// No item with this key exists (`attribute_not_exists(pk)`).
    NotExists,
    /// An item with this key exists (`attribute_exists(pk)`).
    Exists,
    AttrExists(String),
    AttrNotExists(String),
    Eq(String, Value),
    Ne(String, Value),
    /// Numeric comparisons: `attr >= n` etc.; false when the attribute is missing.
    Ge(String, f64),
    Gt(String, f64),
    Le(String, f64),
    Lt(String, f64),
    And(Vec<Condition>),
    Or(Vec<Condition>),
}

/// One change of an update.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Set(String, Value),
    /// Set only if the attribute is missing (`if_not_exists`).
    SetIfMissing(String, Value),
    /// Atomic numeric add (a missing attribute counts as 0).
    Add(String, i64),
    Remove(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum TxOp {
    Put {
        item: Item,
        cond: Option<Condition>,
    },
    Update {
        pk: String,
        sk: String,
        updates: Vec<Update>,
        cond: Option<Condition>,
    },
    Delete {
        pk: String,
        sk: String,
        cond: Option<Condition>,
    },
    Check {
        pk: String,
        sk: String,
        cond: Condition,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    /// The table's primary key (pk, sk).
    Primary,
    /// The global secondary index on (gsi1pk, gsi1sk); projects all attributes.
    Gsi1,
}

/// A condition on the sort key of a query (on the index's sort key).
#[derive(Debug, Clone, PartialEq)]
pub enum SkCond {
    All,
    BeginsWith(String),
    /// Inclusive on both ends.
    Between(String, String),
    Lt(String),
    Le(String),
    Gt(String),
    Ge(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub index: Index,
    pub pk: String,
    pub sk: SkCond,
    /// Ascending sort key order when true.
    pub forward: bool,
    pub limit: Option<u32>,
    /// The cursor of the previous page.
    pub cursor: Option<String>,
}

impl Query {
    pub fn new(pk: impl Into<String>) -> Self {
        Self {
            index: Index::Primary,
            pk: pk.into(),
            sk: SkCond::All,
            forward: true,
            limit: None,
            cursor: None,
        }
    }
    pub fn gsi1(pk: impl Into<String>) -> Self {
        Self {
            index: Index::Gsi1,
            ..Self::new(pk)
        }
    }
    pub fn sk(mut self, sk: SkCond) -> Self {
        self.sk = sk;
        self
    }
    pub fn begins_with(self, prefix: impl Into<String>) -> Self {
        self.sk(SkCond::BeginsWith(prefix.into()))
    }
    pub fn backward(mut self) -> Self {
        self.forward = false;
        self
    }
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }
    pub fn cursor(mut self, c: Option<String>) -> Self {
        self.cursor = c;
        self
    }
}

/// One page of a query. A page may hold fewer than `limit` items (expired items are
/// filtered after the limit, as DynamoDB does) while `cursor` says more may follow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum TableError {
    #[error("condition failed")]
    ConditionFailed,
    /// A transaction was cancelled because conditions failed; `failed` holds their
    /// indexes. (A cancellation by a conflict or throttling is `Transient`.)
    #[error("transaction cancelled (failed conditions at {failed:?})")]
    TransactionCanceled { failed: Vec<usize> },
    /// Worth retrying: throttling, a transaction conflict, a network fault.
    #[error("transient table error: {0}")]
    Transient(String),
    #[error("invalid table request: {0}")]
    Invalid(String),
    #[error("table error: {0}")]
    Other(String),
}

impl TableError {
    /// Whether the same call may succeed later: a transient fault, or one this port
    /// cannot classify. A failed condition or an invalid request never will.
    pub fn is_retryable(&self) -> bool {
        matches!(self, TableError::Transient(_) | TableError::Other(_))
    }
}

#[async_trait]
pub trait Table: Send + Sync + 'static {
    /// The item, or None when missing or expired.
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, TableError>;
    async fn put(&self, item: Item, cond: Option<Condition>) -> Result<(), TableError>;
    /// Applies the updates (creating the item if missing, as DynamoDB's UpdateItem
    /// does) and returns the item as it is afterwards.
    async fn update(&self, pk: &str, sk: &str, updates: Vec<Update>, cond: Option<Condition>) -> Result<Item, TableError>;
    async fn delete(&self, pk: &str, sk: &str, cond: Option<Condition>) -> Result<(), TableError>;
    /// All or nothing; at most 100 operations, each on a distinct item.
    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), TableError>;
    async fn query(&self, q: Query) -> Result<Page, TableError>;
}

/// Reads every page of a query (for bounded sets such as one channel's subscribers).
pub async fn query_all(table: &dyn Table, mut q: Query) -> Result<Vec<Item>, TableError> {
    let mut out = Vec::new();
    loop {
        let page = table.query(q.clone()).await?;
        out.extend(page.items);
        match page.cursor {
            Some(c) => q.cursor = Some(c),
            None => return Ok(out),
        }
    }
}

/// Tells table instances apart (by address) for per-table state kept in a process, where
/// tests run several stacks in one.
pub fn instance_key(table: &dyn Table) -> usize {
    table as *const dyn Table as *const () as usize
}

/// Seconds since the epoch, the unit of `ttl`.
pub fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
}

// --- cursors: both adapters use one format (the DynamoDB one for its LastEvaluatedKey) ---

/// A cursor: URL-safe base64 of a JSON object of the last item's key attributes.
pub fn encode_cursor(key: &std::collections::BTreeMap<&str, &str>) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

pub fn decode_cursor(cursor: &str) -> Result<std::collections::BTreeMap<String, String>, TableError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or_else(|| TableError::Invalid("malformed cursor".into()))
}
