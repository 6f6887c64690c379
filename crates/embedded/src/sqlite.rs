//! The embedded `Table`: one SQLite database (a file, or memory for tests).
//!
//! Rows hold the key columns SQLite must index or order by and the whole attribute
//! map as JSON. Conditions and updates are evaluated in Rust inside one write
//! transaction, so conditional writes and transactions are atomic (even between
//! processes sharing the file). DynamoDB is the
//! reference; where this adapter differs, the contract tests say so.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, params_from_iter, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use serde_json::{Map, Number, Value};

use realtime_domain::ports::table::{
    decode_cursor, encode_cursor, now_epoch, Condition, Index, Item, Page, Query, SkCond, Table, TableError, TxOp, Update, GSI1PK, GSI1SK,
    PK, SK,
};

/// DynamoDB's limit on the operations of one transaction.
const MAX_TX_OPS: usize = 100;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL, sk TEXT NOT NULL, gsi1pk TEXT, gsi1sk TEXT, ttl INTEGER, attrs TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_gsi1 ON items (gsi1pk, gsi1sk);
CREATE TABLE IF NOT EXISTS feed (id INTEGER PRIMARY KEY AUTOINCREMENT, pk TEXT NOT NULL, sk TEXT NOT NULL, attrs TEXT NOT NULL);
";

/// Items written with this attribute set to true go on the change feed (the embedded
/// counterpart of the DynamoDB stream that `template.yaml` filters on the same attribute).
pub const FEED_ATTR: &str = "relay";

/// How often the background checkpointer moves committed pages from the WAL into the
/// database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// The WAL's bound. SQLite reuses the WAL from its start after a complete checkpoint but
/// never shrinks the file, and steady writes can keep it from ever being reused:
/// `journal_size_limit` truncates it back to this on reuse, and when the checkpointer finds
/// the file above this it runs a TRUNCATE checkpoint on the table's own connection (so
/// between two of its calls, with no write of this process open). The file thus stays under
/// this plus what is written in one checkpointer period.
pub const WAL_LIMIT_BYTES: u64 = 16 * 1024 * 1024;

/// The embedded adapter of [`Table`]. Cheap to clone (the connection is shared).
#[derive(Clone)]
pub struct SqliteTable {
    conn: Arc<Mutex<Connection>>,
    /// Checkpoints done by the background checkpointer (file databases).
    checkpoints: Arc<std::sync::atomic::AtomicU64>,
    /// Woken after every write, for the feed's reader.
    changed: Arc<tokio::sync::Notify>,
}

impl SqliteTable {
    /// Opens (creating it and its folder if needed) the database file at `path`, in WAL mode.
    pub fn open(path: &Path) -> Result<Self, TableError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| TableError::Other(format!("creating {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(sql_err)?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
            .map_err(sql_err)?;
        // WAL + NORMAL survives a crash of the process; only a power loss may drop the last commits.
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql_err)?;
        // Another process (e.g. a second local stack) may hold the write lock for a moment.
        conn.busy_timeout(Duration::from_secs(5)).map_err(sql_err)?;
        // SQLite checkpoints inside the commit that crosses 1,000 WAL pages, so some request
        // would wait for it: a thread of its own does it instead, on its own connection
        // (a PASSIVE checkpoint never blocks the writer).
        conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(sql_err)?;
        conn.pragma_update_and_check(None, "journal_size_limit", WAL_LIMIT_BYTES as i64, |r| r.get::<_, i64>(0))
            .map_err(sql_err)?;
        let table = Self::with_schema(conn)?;
        table.start_checkpointer(path)?;
        Ok(table)
    }

    /// Checkpoints the WAL every [`CHECKPOINT_EVERY`] until the last clone of the table is
    /// dropped (then SQLite's own close checkpoints what is left).
    fn start_checkpointer(&self, path: &Path) -> Result<(), TableError> {
        let checkpointer = Connection::open(path).map_err(sql_err)?;
        checkpointer.busy_timeout(Duration::from_millis(100)).map_err(sql_err)?;
        checkpointer
            .pragma_update_and_check(None, "journal_size_limit", WAL_LIMIT_BYTES as i64, |r| r.get::<_, i64>(0))
            .map_err(sql_err)?;
        let wal = Self::wal_path(path);
        let alive = Arc::downgrade(&self.conn);
        let count = self.checkpoints.clone();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while alive.strong_count() > 0 {
                    std::thread::sleep(CHECKPOINT_EVERY);
                    let big = std::fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_LIMIT_BYTES);
                    let done = match alive.upgrade().filter(|_| big) {
                        // Steady writes keep a PASSIVE checkpoint from ever resetting the WAL:
                        // truncate it on the table's own connection, between two of its calls.
                        Some(main) => {
                            let main = main.lock().unwrap_or_else(PoisonError::into_inner);
                            main.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0))
                        }
                        None => checkpointer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0)),
                    };
                    match done {
                        Ok(_) => {
                            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(e) => tracing::debug!(error = %e, "WAL checkpoint skipped"),
                    }
                }
            })
            .map_err(|e| TableError::Other(format!("starting the checkpointer: {e}")))?;
        Ok(())
    }

    /// The WAL file of the database at `path`.
    pub fn wal_path(path: &Path) -> std::path::PathBuf {
        let mut p = path.as_os_str().to_owned();
        p.push("-wal");
        p.into()
    }

    /// A private database in memory (tests).
    pub fn in_memory() -> Self {
        Connection::open_in_memory()
            .map_err(sql_err)
            .and_then(Self::with_schema)
            .expect("SQLite can always open an in-memory database")
    }

    fn with_schema(conn: Connection) -> Result<Self, TableError> {
        conn.execute_batch(SCHEMA).map_err(sql_err)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            checkpoints: Arc::default(),
            changed: Arc::default(),
        })
    }

    /// Deletes the expired items (what DynamoDB's TTL does, late). Reads never
    /// depend on it: they filter expired items themselves.
    pub async fn purge_expired(&self) -> Result<usize, TableError> {
        self.run(|c| c.execute("DELETE FROM items WHERE ttl <= ?1", [now_epoch()]).map_err(sql_err))
            .await
    }

    /// The change feed: items written with [`FEED_ATTR`] set, oldest first, after the
    /// feed position `after`, kept (like a DynamoDB stream, durably, in the same commit
    /// as the write) until [`Self::feed_ack`] removes them.
    pub async fn feed(&self, after: i64, limit: u32) -> Result<Vec<(i64, Item)>, TableError> {
        self.run(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT id, pk, sk, attrs FROM feed WHERE id > ?1 ORDER BY id LIMIT ?2")
                .map_err(sql_err)?;
            let rows = stmt
                .query_map(params![after, limit], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .map_err(sql_err)?;
            let mut out = Vec::new();
            for row in rows {
                let (id, pk, sk, attrs) = row.map_err(sql_err)?;
                out.push((id, row_item(&pk, &sk, &attrs)?));
            }
            Ok(out)
        })
        .await
    }

    /// Removes feed records that the reader has handled.
    pub async fn feed_ack(&self, ids: Vec<i64>) -> Result<(), TableError> {
        self.write(move |c| {
            let mut stmt = c.prepare_cached("DELETE FROM feed WHERE id = ?1").map_err(sql_err)?;
            for id in ids {
                stmt.execute([id]).map_err(sql_err)?;
            }
            Ok(())
        })
        .await
    }

    /// Resolves after the next write (or at once if one happened since the last call).
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    /// Runs `f` in one write transaction: all of it or (on an error) nothing. IMMEDIATE takes
    /// the write lock before the first read, so a condition still holds when the write lands,
    /// even if another process shares the file.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, TableError> + Send + 'static,
    ) -> Result<T, TableError> {
        self.run(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
            let out = f(&tx)?; // an error drops `tx`, which rolls back
            tx.commit().map_err(sql_err)?;
            Ok(out)
        })
        .await
        .inspect(|_| self.changed.notify_one())
    }

    /// Runs `f` on the connection on the blocking pool, never on the async runtime.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, TableError> + Send + 'static,
    ) -> Result<T, TableError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while locked leaves no half-written state (an open SQLite transaction
            // rolls back on drop), so a poisoned lock is safe to reuse.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
        .await
        .map_err(|e| TableError::Other(format!("SQLite task failed: {e}")))?
    }
}

/// SQLite's errors as the port's: a busy or locked database is worth a retry.
fn sql_err(e: rusqlite::Error) -> TableError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => TableError::Transient(e.to_string()),
        _ => TableError::Other(format!("SQLite: {e}")),
    }
}

#[async_trait]
impl Table for SqliteTable {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, TableError> {
        validate_key(pk, sk)?;
        let (pk, sk) = (pk.to_string(), sk.to_string());
        self.run(move |c| load(c, &pk, &sk, now_epoch())).await
    }

    async fn put(&self, item: Item, cond: Option<Condition>) -> Result<(), TableError> {
        let item = clean(item)?;
        self.write(move |c| {
            let current = load(c, &item.pk, &item.sk, now_epoch())?;
            check(cond.as_ref(), current.as_ref())?;
            store(c, &item)
        })
        .await
    }

    async fn update(&self, pk: &str, sk: &str, updates: Vec<Update>, cond: Option<Condition>) -> Result<Item, TableError> {
        validate_key(pk, sk)?;
        validate_updates(&updates)?;
        let (pk, sk) = (pk.to_string(), sk.to_string());
        self.write(move |c| {
            let current = load(c, &pk, &sk, now_epoch())?;
            check(cond.as_ref(), current.as_ref())?;
            let item = apply(current.unwrap_or_else(|| Item::new(pk, sk)), &updates)?;
            store(c, &item)?;
            Ok(item)
        })
        .await
    }

    async fn delete(&self, pk: &str, sk: &str, cond: Option<Condition>) -> Result<(), TableError> {
        validate_key(pk, sk)?;
        let (pk, sk) = (pk.to_string(), sk.to_string());
        self.write(move |c| {
            if cond.is_some() {
                check(cond.as_ref(), load(c, &pk, &sk, now_epoch())?.as_ref())?;
            }
            remove(c, &pk, &sk)
        })
        .await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), TableError> {
        let ops = validate_tx(ops)?;
        self.write(move |c| transact(c, ops, now_epoch())).await
    }

    async fn query(&self, q: Query) -> Result<Page, TableError> {
        self.run(move |c| query(c, &q, now_epoch())).await
    }
}

// --- reading and writing rows ---

fn load(c: &Connection, pk: &str, sk: &str, now: i64) -> Result<Option<Item>, TableError> {
    let attrs: Option<String> = c
        .prepare_cached("SELECT attrs FROM items WHERE pk = ?1 AND sk = ?2")
        .map_err(sql_err)?
        .query_row(params![pk, sk], |r| r.get(0))
        .optional()
        .map_err(sql_err)?;
    Ok(attrs.map(|a| row_item(pk, sk, &a)).transpose()?.filter(|i| !i.is_expired(now)))
}

fn row_item(pk: &str, sk: &str, attrs: &str) -> Result<Item, TableError> {
    let attrs = serde_json::from_str(attrs).map_err(|e| TableError::Other(format!("corrupt item {pk}/{sk}: {e}")))?;
    Ok(Item {
        pk: pk.to_string(),
        sk: sk.to_string(),
        attrs,
    })
}

fn store(c: &Connection, item: &Item) -> Result<(), TableError> {
    let attrs = serde_json::to_string(&item.attrs).map_err(|e| TableError::Other(e.to_string()))?;
    c.prepare_cached("INSERT OR REPLACE INTO items (pk, sk, gsi1pk, gsi1sk, ttl, attrs) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .map_err(sql_err)?
        .execute(params![item.pk, item.sk, item.str(GSI1PK), item.str(GSI1SK), item.ttl(), attrs])
        .map_err(sql_err)?;
    if item.get(FEED_ATTR) == Some(&Value::Bool(true)) {
        c.prepare_cached("INSERT INTO feed (pk, sk, attrs) VALUES (?1, ?2, ?3)")
            .map_err(sql_err)?
            .execute(params![item.pk, item.sk, attrs])
            .map_err(sql_err)?;
    }
    Ok(())
}

fn remove(c: &Connection, pk: &str, sk: &str) -> Result<(), TableError> {
    c.prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")
        .map_err(sql_err)?
        .execute(params![pk, sk])
        .map_err(sql_err)?;
    Ok(())
}

fn transact(tx: &Connection, ops: Vec<TxOp>, now: i64) -> Result<(), TableError> {
    // Every condition sees the state before the transaction (the items are distinct).
    let mut failed = Vec::new();
    enum Write {
        Store(Item),
        Delete(String, String),
    }
    let mut writes = Vec::new();
    for (i, op) in ops.into_iter().enumerate() {
        let (pk, sk) = tx_key(&op);
        let current = load(tx, pk, sk, now)?;
        let cond = match &op {
            TxOp::Put { cond, .. } | TxOp::Update { cond, .. } | TxOp::Delete { cond, .. } => cond.as_ref(),
            TxOp::Check { cond, .. } => Some(cond),
        };
        if cond.is_some_and(|c| !holds(c, current.as_ref())) {
            failed.push(i);
            continue;
        }
        match op {
            TxOp::Put { item, .. } => writes.push(Write::Store(item)),
            TxOp::Update { pk, sk, updates, .. } => {
                let item = apply(current.unwrap_or_else(|| Item::new(pk, sk)), &updates)?;
                writes.push(Write::Store(item));
            }
            TxOp::Delete { pk, sk, .. } => writes.push(Write::Delete(pk, sk)),
            TxOp::Check { .. } => {}
        }
    }
    if !failed.is_empty() {
        return Err(TableError::TransactionCanceled { failed });
    }
    for w in &writes {
        match w {
            Write::Store(item) => store(tx, item)?,
            Write::Delete(pk, sk) => remove(tx, pk, sk)?,
        }
    }
    Ok(())
}

fn query(c: &Connection, q: &Query, now: i64) -> Result<Page, TableError> {
    if q.pk.is_empty() {
        return Err(invalid("key attributes cannot be empty strings"));
    }
    let (pkc, skc) = match q.index {
        Index::Primary => (PK, SK),
        Index::Gsi1 => (GSI1PK, GSI1SK),
    };
    let mut args = vec![q.pk.clone()];
    // Items without the index's sort key are not in the index (a sparse GSI).
    let mut sql = format!("SELECT pk, sk, gsi1pk, gsi1sk, attrs FROM items WHERE {pkc} = ?1 AND {skc} IS NOT NULL");
    let mut cmp = |op: &str, v: &str, args: &mut Vec<String>| {
        args.push(v.to_string());
        sql.push_str(&format!(" AND {skc} {op} ?{}", args.len()));
    };
    match &q.sk {
        SkCond::All => {}
        SkCond::BeginsWith(p) => {
            cmp(">=", p, &mut args); // lets SQLite seek in the index; substr() below does the match
            let n = args.len();
            sql.push_str(&format!(" AND substr({skc}, 1, length(?{n})) = ?{n}"));
        }
        SkCond::Between(a, b) if a > b => return Err(invalid("BETWEEN needs lower bound <= upper bound")),
        SkCond::Between(a, b) => {
            cmp(">=", a, &mut args);
            cmp("<=", b, &mut args);
        }
        SkCond::Lt(v) => cmp("<", v, &mut args),
        SkCond::Le(v) => cmp("<=", v, &mut args),
        SkCond::Gt(v) => cmp(">", v, &mut args),
        SkCond::Ge(v) => cmp(">=", v, &mut args),
    }
    // Rows are ordered by the index's sort key, then (GSI keys need not be unique) the
    // table key, so that a cursor names one exact position.
    let (op, dir) = if q.forward { (">", "ASC") } else { ("<", "DESC") };
    if let Some(cursor) = &q.cursor {
        let key = decode_cursor(cursor)?;
        let part = |n: &str| key.get(n).cloned().ok_or_else(|| invalid("cursor does not fit this query"));
        let n = args.len();
        match q.index {
            Index::Primary => {
                args.push(part(SK)?);
                sql.push_str(&format!(" AND sk {op} ?{}", n + 1));
            }
            Index::Gsi1 => {
                args.extend([part(GSI1SK)?, part(PK)?, part(SK)?]);
                sql.push_str(&format!(" AND (gsi1sk, pk, sk) {op} (?{}, ?{}, ?{})", n + 1, n + 2, n + 3));
            }
        }
    }
    sql.push_str(&match q.index {
        Index::Primary => format!(" ORDER BY sk {dir}"),
        Index::Gsi1 => format!(" ORDER BY gsi1sk {dir}, pk {dir}, sk {dir}"),
    });
    match q.limit {
        Some(0) => return Err(invalid("limit must be at least 1")),
        Some(n) => sql.push_str(&format!(" LIMIT {n}")),
        None => {}
    }

    type Row = (String, String, Option<String>, Option<String>, String);
    let rows = c
        .prepare_cached(&sql)
        .map_err(sql_err)?
        .query_map(params_from_iter(&args), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .map_err(sql_err)?
        .collect::<Result<Vec<Row>, _>>()
        .map_err(sql_err)?;
    // As DynamoDB: a full page says more may follow (the next page may be empty), and
    // expired items are dropped after the limit, so pages may be short.
    let cursor = match (q.limit, rows.last()) {
        (Some(n), Some((pk, sk, gpk, gsk, _))) if rows.len() == n as usize => {
            let mut key = BTreeMap::from([(PK, pk.as_str()), (SK, sk.as_str())]);
            if q.index == Index::Gsi1 {
                key.extend([
                    (GSI1PK, gpk.as_deref().unwrap_or_default()),
                    (GSI1SK, gsk.as_deref().unwrap_or_default()),
                ]);
            }
            Some(encode_cursor(&key))
        }
        _ => None,
    };
    let mut items = Vec::with_capacity(rows.len());
    for (pk, sk, _, _, attrs) in &rows {
        let item = row_item(pk, sk, attrs)?;
        if !item.is_expired(now) {
            items.push(item);
        }
    }
    Ok(Page { items, cursor })
}

// --- conditions and updates, evaluated as DynamoDB does ---

fn check(cond: Option<&Condition>, item: Option<&Item>) -> Result<(), TableError> {
    match cond {
        Some(c) if !holds(c, item) => Err(TableError::ConditionFailed),
        _ => Ok(()),
    }
}

/// Whether `cond` holds on `item` (None = missing or expired).
fn holds(cond: &Condition, item: Option<&Item>) -> bool {
    let attr = |name: &str| -> Option<Value> {
        let item = item?;
        match name {
            PK => Some(item.pk.clone().into()),
            SK => Some(item.sk.clone().into()),
            _ => item.attrs.get(name).cloned(),
        }
    };
    // Numeric comparisons are false on a missing or non-numeric attribute.
    let num = |name: &str| attr(name).and_then(|v| v.as_f64());
    match cond {
        Condition::NotExists => item.is_none(),
        Condition::Exists => item.is_some(),
        Condition::AttrExists(n) => attr(n).is_some(),
        Condition::AttrNotExists(n) => attr(n).is_none(),
        Condition::Eq(n, v) => attr(n).is_some_and(|a| same(&a, v)),
        // DynamoDB: `a <> v` is true when `a` is missing.
        Condition::Ne(n, v) => !attr(n).is_some_and(|a| same(&a, v)),
        Condition::Ge(n, x) => num(n).is_some_and(|a| a >= *x),
        Condition::Gt(n, x) => num(n).is_some_and(|a| a > *x),
        Condition::Le(n, x) => num(n).is_some_and(|a| a <= *x),
        Condition::Lt(n, x) => num(n).is_some_and(|a| a < *x),
        Condition::And(cs) => cs.iter().all(|c| holds(c, item)),
        Condition::Or(cs) => cs.iter().any(|c| holds(c, item)),
    }
}

/// DynamoDB equality: deep, with numbers compared by value (1 == 1.0).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w))),
        _ => a == b,
    }
}

fn apply(mut item: Item, updates: &[Update]) -> Result<Item, TableError> {
    for u in updates {
        match u {
            Update::Set(n, v) => {
                item.attrs.insert(n.clone(), canonical(v.clone()));
            }
            Update::SetIfMissing(n, v) => {
                item.attrs.entry(n.clone()).or_insert_with(|| canonical(v.clone()));
            }
            Update::Add(n, d) => {
                let sum = match item.attrs.get(n) {
                    None => Value::from(*d),
                    Some(Value::Number(x)) => match x.as_i64().and_then(|x| x.checked_add(*d)) {
                        Some(s) => s.into(),
                        None => canonical(float(x.as_f64().unwrap_or_default() + *d as f64)),
                    },
                    Some(_) => {
                        return Err(TableError::Invalid(format!("ADD on the non-numeric attribute {n:?}")));
                    }
                };
                item.attrs.insert(n.clone(), sum);
            }
            Update::Remove(n) => {
                item.attrs.remove(n);
            }
        }
    }
    validate_item(&item)?;
    Ok(item)
}

/// Numbers as DynamoDB returns them: an integral value is an integer (2.0 reads back as 2).
fn canonical(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Value::from(f as i64),
            _ => Value::Number(n),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(canonical).collect()),
        Value::Object(m) => Value::Object(canonical_map(m)),
        v => v,
    }
}

fn canonical_map(m: Map<String, Value>) -> Map<String, Value> {
    m.into_iter().map(|(k, v)| (k, canonical(v))).collect()
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

// --- validation: reject what DynamoDB rejects, so the embedded stack hides no bug ---

fn invalid(msg: impl Into<String>) -> TableError {
    TableError::Invalid(msg.into())
}

fn validate_key(pk: &str, sk: &str) -> Result<(), TableError> {
    if pk.is_empty() || sk.is_empty() {
        return Err(invalid("key attributes cannot be empty strings"));
    }
    Ok(())
}

/// Index key attributes, when present, must be non-empty strings.
fn validate_item(item: &Item) -> Result<(), TableError> {
    validate_key(&item.pk, &item.sk)?;
    for name in [GSI1PK, GSI1SK] {
        match item.get(name) {
            None => {}
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(_) => return Err(invalid(format!("index key {name} must be a non-empty string"))),
        }
    }
    Ok(())
}

/// The item as stored: no key attributes in `attrs` (they live in `pk`/`sk`), canonical numbers.
fn clean(mut item: Item) -> Result<Item, TableError> {
    item.attrs.remove(PK);
    item.attrs.remove(SK);
    item.attrs = canonical_map(std::mem::take(&mut item.attrs));
    validate_item(&item)?;
    Ok(item)
}

fn validate_updates(updates: &[Update]) -> Result<(), TableError> {
    let mut seen = HashSet::new();
    for u in updates {
        let (Update::Set(n, _) | Update::SetIfMissing(n, _) | Update::Add(n, _) | Update::Remove(n)) = u;
        if n == PK || n == SK {
            return Err(invalid(format!("cannot update the key attribute {n}")));
        }
        if n.is_empty() || !seen.insert(n) {
            return Err(invalid(format!("empty or repeated attribute name {n:?} in one update")));
        }
    }
    Ok(())
}

fn tx_key(op: &TxOp) -> (&str, &str) {
    match op {
        TxOp::Put { item, .. } => (&item.pk, &item.sk),
        TxOp::Update { pk, sk, .. } | TxOp::Delete { pk, sk, .. } | TxOp::Check { pk, sk, .. } => (pk, sk),
    }
}

fn validate_tx(ops: Vec<TxOp>) -> Result<Vec<TxOp>, TableError> {
    if ops.is_empty() || ops.len() > MAX_TX_OPS {
        return Err(invalid(format!(
            "a transaction holds 1 to {MAX_TX_OPS} operations, not {}",
            ops.len()
        )));
    }
    let ops = ops
        .into_iter()
        .map(|op| {
            if let TxOp::Put { item, cond } = op {
                return Ok(TxOp::Put { item: clean(item)?, cond });
            }
            let (pk, sk) = tx_key(&op);
            validate_key(pk, sk)?;
            if let TxOp::Update { updates, .. } = &op {
                // DynamoDB needs an update expression in a transaction (not in UpdateItem).
                if updates.is_empty() {
                    return Err(invalid("an update in a transaction needs at least one change"));
                }
                validate_updates(updates)?;
            }
            Ok(op)
        })
        .collect::<Result<Vec<_>, TableError>>()?;
    let mut keys = HashSet::new();
    if !ops.iter().all(|op| keys.insert(tx_key(op))) {
        return Err(invalid("a transaction cannot include two operations on one item"));
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let key = BTreeMap::from([(PK, "CHAT#1"), (SK, "MSG#2024-01-01T00:00:00Z#ü/+=")]);
        let c = encode_cursor(&key);
        assert!(
            c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'),
            "URL-safe: {c}"
        );
        let back = decode_cursor(&c).unwrap();
        assert_eq!(back.get(SK).map(String::as_str), Some("MSG#2024-01-01T00:00:00Z#ü/+="));
        for bad in [
            "",
            "!!!",
            "bm90IGpzb24",
            &base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b"[1,2]"),
        ] {
            assert!(matches!(decode_cursor(bad), Err(TableError::Invalid(_))), "{bad:?}");
        }
    }

    #[test]
    fn numbers_are_canonical_and_compare_by_value() {
        assert_eq!(canonical(json!({"a": [2.0, 2.5, -0.0], "b": 7})), json!({"a": [2, 2.5, 0], "b": 7}));
        assert!(same(&json!({"x": [1]}), &json!({"x": [1.0]})));
        assert!(!same(&json!("1"), &json!(1)));
    }

    #[test]
    fn conditions_follow_dynamodb_on_missing_attributes() {
        let item = Item::new("p", "s").with("n", 3).with("s", "x");
        let on = |c: Condition| holds(&c, Some(&item));
        assert!(on(Condition::Ne("missing".into(), json!(1))));
        assert!(!on(Condition::Eq("missing".into(), Value::Null)));
        assert!(!on(Condition::Ge("missing".into(), 0.0)));
        assert!(!on(Condition::Ge("s".into(), 0.0)), "a string is not >= a number");
        assert!(on(Condition::Eq(PK.into(), json!("p"))));
        assert!(on(Condition::And(vec![])) && !on(Condition::Or(vec![])));
    }

    #[test]
    fn add_overflowing_i64_becomes_a_float() {
        let item = apply(Item::new("p", "s").with("n", i64::MAX), &[Update::Add("n".into(), 1)]).unwrap();
        assert_eq!(item.get("n").and_then(Value::as_f64), Some(i64::MAX as f64 + 1.0));
    }

    #[tokio::test]
    async fn expired_items_count_as_missing_for_conditions() {
        // Differs from DynamoDB, which evaluates conditions on the stored (not yet deleted) item.
        let t = SqliteTable::in_memory();
        let now = now_epoch();
        t.put(Item::new("IDEM#a", "META").with_ttl(now - 1).with("n", 5), None)
            .await
            .unwrap();
        t.put(Item::new("IDEM#a", "META").with_ttl(now + 60), Some(Condition::NotExists))
            .await
            .unwrap();
        t.put(Item::new("IDEM#b", "META").with_ttl(now - 1).with("n", 5), None)
            .await
            .unwrap();
        let b = t.update("IDEM#b", "META", vec![Update::Add("n".into(), 1)], None).await.unwrap();
        assert_eq!(b.i64("n"), Some(1), "an update of an expired item starts from nothing");
        assert_eq!(t.purge_expired().await.unwrap(), 0, "the update dropped the old ttl");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_background_thread_checkpoints_the_wal_and_stops_with_the_table() {
        let path = std::env::temp_dir().join(format!("sqlite-table-{}/t.db", ulid::Ulid::new()));
        let t = SqliteTable::open(&path).unwrap();
        let auto: i64 = t
            .run(|c| c.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0)).map_err(sql_err))
            .await
            .unwrap();
        assert_eq!(auto, 0, "commits never checkpoint");
        let before = std::fs::metadata(&path).unwrap().len();
        let body = "x".repeat(1000);
        for i in 0..2000 {
            t.put(Item::new(format!("P#{i}"), "S").with("body", body.as_str()), None)
                .await
                .unwrap();
        }
        // Only a checkpoint moves pages from the WAL into the database file.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::fs::metadata(&path).unwrap().len() < before + 1_000_000 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            std::fs::metadata(&path).unwrap().len() >= before + 1_000_000,
            "the WAL was never checkpointed"
        );
        assert_eq!(t.get("P#1999", "S").await.unwrap().unwrap().get("body"), Some(&json!(body)));
        let count = t.checkpoints.clone();
        drop(t);
        tokio::time::sleep(CHECKPOINT_EVERY * 2).await;
        let after_drop = count.load(std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(CHECKPOINT_EVERY * 3).await;
        assert_eq!(
            count.load(std::sync::atomic::Ordering::Relaxed),
            after_drop,
            "the checkpointer stopped"
        );
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_stays_bounded_under_steady_writes() {
        let path = std::env::temp_dir().join(format!("sqlite-table-{}/t.db", ulid::Ulid::new()));
        let t = SqliteTable::open(&path).unwrap();
        let wal = SqliteTable::wal_path(&path);
        // 10,000 writes shaped like a chat message's: the message, the log entry, the
        // chat's head, in one transaction (about 4 KB of pages each).
        let body = "x".repeat(1500);
        let mut peak = 0;
        for i in 0..10_000 {
            let ops = vec![
                TxOp::Put {
                    item: Item::new("CHAT#c", format!("MSG#{i:06}")).with("content", body.as_str()),
                    cond: None,
                },
                TxOp::Put {
                    item: Item::new("LOG#chat:c", format!("SEQ#{i:06}")).with("event", body.as_str()),
                    cond: None,
                },
                TxOp::Put {
                    item: Item::new("CHAT#c", "META").with("last", i),
                    cond: None,
                },
            ];
            t.transact(ops).await.unwrap();
            if i % 500 == 0 {
                peak = peak.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
            }
        }
        tokio::time::sleep(CHECKPOINT_EVERY * 3).await;
        let end = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        let db = std::fs::metadata(&path).unwrap().len();
        println!("10,000 transactions: WAL peak {peak} B (sampled), at the end {end} B; database {db} B");
        assert!(end <= WAL_LIMIT_BYTES, "WAL at {end} B after the writes");
        // Unbounded, this workload leaves a WAL of about 500 MB.
        assert!(peak <= WAL_LIMIT_BYTES * 8, "WAL peaked at {peak} B");
        drop(t);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conditional_writes_are_atomic_across_connections_to_one_file() {
        let path = std::env::temp_dir().join(format!("sqlite-table-{}/t.db", ulid::Ulid::new()));
        let (a, b) = (SqliteTable::open(&path).unwrap(), SqliteTable::open(&path).unwrap());
        a.put(Item::new("TRIP#1", "META").with("seats", 3), None).await.unwrap();
        let book = |t: &SqliteTable| {
            let t = t.clone();
            async move {
                t.update(
                    "TRIP#1",
                    "META",
                    vec![Update::Add("seats".into(), -1)],
                    Some(Condition::Ge("seats".into(), 1.0)),
                )
                .await
            }
        };
        let results = futures::future::join_all((0..20).map(|i| book(if i % 2 == 0 { &a } else { &b }))).await;
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3, "{results:?}");
        assert_eq!(b.get("TRIP#1", "META").await.unwrap().unwrap().i64("seats"), Some(0));
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[tokio::test]
    async fn purge_removes_expired_rows() {
        let t = SqliteTable::in_memory();
        t.put(Item::new("a", "1").with_ttl(now_epoch() - 1), None).await.unwrap();
        t.put(Item::new("a", "2").with_ttl(now_epoch() + 60), None).await.unwrap();
        assert_eq!(t.purge_expired().await.unwrap(), 1);
        assert!(t.get("a", "2").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn key_attributes_in_attrs_are_ignored() {
        let t = SqliteTable::in_memory();
        t.put(Item::new("a", "1").with(PK, "other").with("x", 1), None).await.unwrap();
        assert_eq!(t.get("a", "1").await.unwrap(), Some(Item::new("a", "1").with("x", 1)));
    }
}
