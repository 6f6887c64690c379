//! The contract of the `Table` port, written once and run against every adapter:
//! `SqliteTable` in memory, `SqliteTable` on a file, and `DynamoTable` on DynamoDB Local
//! (installed by `bash infra/setup.sh`). Every case gets a fresh table; each test runs
//! all cases concurrently and names every case that failed.
//!
//! Known differences, which the domain must not rely on (so no shared case covers them):
//! * Conditions and updates on an item whose TTL has passed but that is still stored:
//!   DynamoDB evaluates them on the stored item (`NotExists` fails, `Add` continues the
//!   old value, the old `ttl` stays), SQLite treats the item as missing. An update of a
//!   TTL'd item should therefore always set `ttl` again. See `dynamodb_local` below and
//!   the unit tests in `crates/embedded/src/sqlite.rs`.
//! * Consistency: the SQLite adapter always reads its writes; DynamoDB does for `get` and
//!   table queries (strongly consistent reads) but not for `Gsi1` queries.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;

use futures::future::{join_all, BoxFuture};
use futures::FutureExt;
use realtime_aws::dynamo::{create_table, DynamoTable};
use realtime_domain::ports::table::{now_epoch, query_all, GSI1PK, GSI1SK};
use realtime_domain::ports::{Condition, Item, Query, SkCond, Table, TableError, TxOp, Update};
use realtime_embedded::sqlite::SqliteTable;
use realtime_tests::dynamodb_local::DynamoDbLocal;
use serde_json::json;

type Case = fn(Arc<dyn Table>) -> BoxFuture<'static, ()>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        const CASES: &[(&str, Case)] = &[$((stringify!($name), |t| Box::pin($name(t)))),*];
    };
}

cases!(
    put_get_overwrite,
    key_attributes_are_not_attributes,
    conditional_put,
    conditional_update_keeps_seats_non_negative,
    concurrent_seat_bookings,
    add_set_if_missing_remove,
    update_creates_missing_item_unless_condition_fails,
    conditional_delete,
    conditions_compose,
    transaction_success,
    transaction_failed_condition_writes_nothing,
    invalid_transactions,
    query_sort_key_conditions_and_order,
    query_pages_with_cursor,
    gsi1_queries,
    ttl_hides_expired_items,
    values_round_trip,
    invalid_requests,
);

/// Runs every case on a fresh table from `make` and fails naming each failed case.
async fn run_all<F, Fut>(adapter: &str, make: F)
where
    F: Fn(&'static str) -> Fut,
    Fut: Future<Output = Arc<dyn Table>>,
{
    let runs = CASES.iter().map(|&(name, case)| {
        let table = make(name);
        async move {
            (
                name,
                AssertUnwindSafe(async move { case(table.await).await })
                    .catch_unwind()
                    .await
                    .is_ok(),
            )
        }
    });
    let failed: Vec<&str> = join_all(runs).await.into_iter().filter(|(_, ok)| !ok).map(|(n, _)| n).collect();
    assert!(
        failed.is_empty(),
        "{adapter}: {} of {} cases failed: {failed:?}",
        failed.len(),
        CASES.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_in_memory() {
    run_all("SQLite in memory", |_| async {
        Arc::new(SqliteTable::in_memory()) as Arc<dyn Table>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file() {
    let dir = TempDir::new("sqlite-file");
    run_all("SQLite file", |name| {
        let path = dir.0.join(format!("{name}.db"));
        async move { Arc::new(SqliteTable::open(&path).expect("open SQLite file")) as Arc<dyn Table> }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_survives_reopen() {
    let dir = TempDir::new("sqlite-reopen");
    let path = dir.0.join("nested/folder/table.db"); // parents are created
    let item = Item::new("TRIP#1", "META")
        .with("seats", 3)
        .with(GSI1PK, "ORG#1")
        .with(GSI1SK, "TRIP#1");
    {
        let t = SqliteTable::open(&path).unwrap();
        t.put(item.clone(), None).await.unwrap();
    }
    let t = SqliteTable::open(&path).unwrap();
    assert_eq!(t.get("TRIP#1", "META").await.unwrap(), Some(item.clone()));
    assert_eq!(t.query(Query::gsi1("ORG#1")).await.unwrap().items, vec![item]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_local() {
    let ddb = DynamoDbLocal::start().await.expect("DynamoDB Local");
    let client = ddb.client();
    let run = ulid::Ulid::new().to_string().to_lowercase();
    let make = |name: &'static str| {
        let client = client.clone();
        let table = format!("contract-{run}-{name}");
        async move {
            create_table(&client, &table).await.expect("create table");
            Arc::new(DynamoTable::new(client, table)) as Arc<dyn Table>
        }
    };
    run_all("DynamoDB Local", make).await;

    // The known difference: DynamoDB evaluates conditions on an expired item that is still
    // stored (SQLite treats it as missing; see sqlite.rs). Domain code must not rely on either.
    let t = make("expired_conditions").await;
    t.put(Item::new("IDEM#a", "META").with_ttl(now_epoch() - 60), None).await.unwrap();
    assert_eq!(t.get("IDEM#a", "META").await.unwrap(), None);
    let again = t.put(Item::new("IDEM#a", "META"), Some(Condition::NotExists)).await;
    assert!(matches!(again, Err(TableError::ConditionFailed)), "{again:?}");
}

/// A folder under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("table-contract-{label}-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// --- helpers ---

fn cond_failed<T: std::fmt::Debug>(r: Result<T, TableError>) {
    assert!(matches!(r, Err(TableError::ConditionFailed)), "expected ConditionFailed, got {r:?}");
}

fn invalid<T: std::fmt::Debug>(what: &str, r: Result<T, TableError>) {
    assert!(matches!(r, Err(TableError::Invalid(_))), "{what}: expected Invalid, got {r:?}");
}

fn sks(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.sk.as_str()).collect()
}

fn add(name: &str, n: i64) -> Update {
    Update::Add(name.into(), n)
}

// --- the cases ---

async fn put_get_overwrite(t: Arc<dyn Table>) {
    assert_eq!(t.get("CHAT#1", "META").await.unwrap(), None);
    let first = Item::new("CHAT#1", "META").with("title", "hello").with("members", 2);
    t.put(first.clone(), None).await.unwrap();
    assert_eq!(t.get("CHAT#1", "META").await.unwrap(), Some(first));
    // A put replaces the whole item: `members` is gone.
    let second = Item::new("CHAT#1", "META").with("title", "renamed");
    t.put(second.clone(), None).await.unwrap();
    assert_eq!(t.get("CHAT#1", "META").await.unwrap(), Some(second));
    assert_eq!(t.get("CHAT#1", "OTHER").await.unwrap(), None);
}

async fn key_attributes_are_not_attributes(t: Arc<dyn Table>) {
    t.put(Item::new("A", "1").with("x", 1), None).await.unwrap();
    let got = t.get("A", "1").await.unwrap().unwrap();
    assert!(got.get("pk").is_none() && got.get("sk").is_none(), "{got:?}");
    let updated = t.update("A", "1", vec![add("x", 1)], None).await.unwrap();
    assert_eq!(updated, Item::new("A", "1").with("x", 2));
    // Conditions can name the key attributes.
    t.put(Item::new("A", "1"), Some(Condition::Eq("pk".into(), json!("A"))))
        .await
        .unwrap();
}

async fn conditional_put(t: Arc<dyn Table>) {
    let item = Item::new("IDEM#k", "META").with("answer", "first");
    t.put(item.clone(), Some(Condition::NotExists)).await.unwrap();
    cond_failed(
        t.put(Item::new("IDEM#k", "META").with("answer", "second"), Some(Condition::NotExists))
            .await,
    );
    assert_eq!(t.get("IDEM#k", "META").await.unwrap(), Some(item));
    cond_failed(t.put(Item::new("IDEM#other", "META"), Some(Condition::Exists)).await);
    assert_eq!(t.get("IDEM#other", "META").await.unwrap(), None);
    t.put(Item::new("IDEM#k", "META").with("answer", "third"), Some(Condition::Exists))
        .await
        .unwrap();
}

async fn conditional_update_keeps_seats_non_negative(t: Arc<dyn Table>) {
    t.put(Item::new("TRIP#1", "META").with("seats", 3).with("name", "tour"), None)
        .await
        .unwrap();
    let book = || t.update("TRIP#1", "META", vec![add("seats", -1)], Some(Condition::Ge("seats".into(), 1.0)));
    for left in [2, 1, 0] {
        let item = book().await.unwrap();
        assert_eq!(item, Item::new("TRIP#1", "META").with("seats", left).with("name", "tour"));
    }
    cond_failed(book().await);
    assert_eq!(t.get("TRIP#1", "META").await.unwrap().unwrap().i64("seats"), Some(0));
}

async fn concurrent_seat_bookings(t: Arc<dyn Table>) {
    t.put(Item::new("TRIP#2", "META").with("seats", 3), None).await.unwrap();
    let attempts = (0..50).map(|_| t.update("TRIP#2", "META", vec![add("seats", -1)], Some(Condition::Ge("seats".into(), 1.0))));
    let results = join_all(attempts).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let refused = results.iter().filter(|r| matches!(r, Err(TableError::ConditionFailed))).count();
    assert_eq!((ok, refused), (3, 47), "{results:?}");
    assert_eq!(t.get("TRIP#2", "META").await.unwrap().unwrap().i64("seats"), Some(0));
}

async fn add_set_if_missing_remove(t: Arc<dyn Table>) {
    t.put(Item::new("LOG#c", "HEAD").with("epoch", "e1").with("stale", true), None)
        .await
        .unwrap();
    let item = t
        .update(
            "LOG#c",
            "HEAD",
            vec![
                add("next", 1),
                Update::SetIfMissing("epoch".into(), json!("e2")),
                Update::SetIfMissing("created".into(), json!(7)),
                Update::Remove("stale".into()),
            ],
            None,
        )
        .await
        .unwrap();
    let expected = Item::new("LOG#c", "HEAD").with("epoch", "e1").with("next", 1).with("created", 7);
    assert_eq!(item, expected);
    assert_eq!(t.get("LOG#c", "HEAD").await.unwrap(), Some(expected));
    let item = t
        .update(
            "LOG#c",
            "HEAD",
            vec![add("next", 41), Update::Set("epoch".into(), json!("e3"))],
            None,
        )
        .await
        .unwrap();
    assert_eq!((item.i64("next"), item.str("epoch")), (Some(42), Some("e3")));
    // Removing a missing attribute is fine.
    t.update("LOG#c", "HEAD", vec![Update::Remove("never".into())], None).await.unwrap();
}

async fn update_creates_missing_item_unless_condition_fails(t: Arc<dyn Table>) {
    let item = t.update("CNT#1", "META", vec![add("n", 5)], None).await.unwrap();
    assert_eq!(item, Item::new("CNT#1", "META").with("n", 5));
    assert_eq!(t.get("CNT#1", "META").await.unwrap(), Some(item));
    // Even with nothing to change, or only a removal, an update creates the item (as UpdateItem does).
    assert_eq!(t.update("CNT#3", "META", vec![], None).await.unwrap(), Item::new("CNT#3", "META"));
    let removed = t.update("CNT#4", "META", vec![Update::Remove("x".into())], None).await.unwrap();
    assert_eq!(removed, Item::new("CNT#4", "META"));
    assert_eq!(t.get("CNT#4", "META").await.unwrap(), Some(removed));
    cond_failed(t.update("CNT#2", "META", vec![add("n", 1)], Some(Condition::Exists)).await);
    assert_eq!(t.get("CNT#2", "META").await.unwrap(), None);
}

async fn conditional_delete(t: Arc<dyn Table>) {
    t.put(Item::new("CONN#1", "META").with("user", "u1"), None).await.unwrap();
    cond_failed(t.delete("CONN#1", "META", Some(Condition::Eq("user".into(), json!("u2")))).await);
    assert!(t.get("CONN#1", "META").await.unwrap().is_some());
    t.delete("CONN#1", "META", Some(Condition::Eq("user".into(), json!("u1"))))
        .await
        .unwrap();
    assert_eq!(t.get("CONN#1", "META").await.unwrap(), None);
    cond_failed(t.delete("CONN#1", "META", Some(Condition::Exists)).await);
    t.delete("CONN#1", "META", None).await.unwrap(); // deleting a missing item is fine
}

async fn conditions_compose(t: Arc<dyn Table>) {
    let item = Item::new("C", "1").with("n", 2).with("s", "x").with("m", json!({"a": [1, true]}));
    t.put(item.clone(), None).await.unwrap();
    let holds = |c: Condition| {
        let t = t.clone();
        let item = item.clone();
        async move {
            match t.put(item, Some(c.clone())).await {
                Ok(()) => true,
                Err(TableError::ConditionFailed) => false,
                Err(e) => panic!("{c:?}: {e}"),
            }
        }
    };
    let c = |s: &str| s.to_string();
    assert!(holds(Condition::Eq(c("n"), json!(2.0))).await, "numbers compare by value");
    assert!(holds(Condition::Eq(c("m"), json!({"a": [1, true]}))).await, "maps compare deeply");
    assert!(!holds(Condition::Eq(c("s"), json!("y"))).await);
    assert!(!holds(Condition::Eq(c("n"), json!("2"))).await, "a string is not a number");
    assert!(holds(Condition::Ne(c("s"), json!("y"))).await);
    assert!(
        holds(Condition::Ne(c("missing"), json!("y"))).await,
        "<> holds on a missing attribute"
    );
    assert!(holds(Condition::AttrExists(c("s"))).await && !holds(Condition::AttrExists(c("missing"))).await);
    assert!(holds(Condition::AttrNotExists(c("missing"))).await && !holds(Condition::AttrNotExists(c("n"))).await);
    assert!(holds(Condition::Gt(c("n"), 1.5)).await && !holds(Condition::Gt(c("n"), 2.0)).await);
    assert!(holds(Condition::Le(c("n"), 2.0)).await && !holds(Condition::Lt(c("n"), 2.0)).await);
    assert!(
        !holds(Condition::Lt(c("missing"), 10.0)).await,
        "comparisons fail on a missing attribute"
    );
    assert!(!holds(Condition::Ge(c("s"), 0.0)).await, "comparisons fail on a non-number");
    let yes = || Condition::Eq(c("s"), json!("x"));
    let no = || Condition::Eq(c("s"), json!("nope"));
    assert!(holds(Condition::And(vec![yes(), Condition::Or(vec![no(), yes()])])).await);
    assert!(!holds(Condition::And(vec![yes(), no()])).await && !holds(Condition::Or(vec![no(), no()])).await);
    assert!(holds(Condition::And(vec![])).await && !holds(Condition::Or(vec![])).await);
    assert_eq!(t.get("C", "1").await.unwrap(), Some(item));
}

async fn transaction_success(t: Arc<dyn Table>) {
    t.put(Item::new("TRIP#t", "META").with("seats", 2), None).await.unwrap();
    t.put(Item::new("OUTBOX#0", "old"), None).await.unwrap();
    t.transact(vec![
        TxOp::Update {
            pk: "TRIP#t".into(),
            sk: "META".into(),
            updates: vec![add("seats", -1)],
            cond: Some(Condition::Ge("seats".into(), 1.0)),
        },
        TxOp::Put {
            item: Item::new("TRIP#t", "BOOKING#b1").with("user", "u1"),
            cond: Some(Condition::NotExists),
        },
        TxOp::Put {
            item: Item::new("OUTBOX#0", "new").with("sent", false),
            cond: None,
        },
        TxOp::Delete {
            pk: "OUTBOX#0".into(),
            sk: "old".into(),
            cond: Some(Condition::Exists),
        },
        TxOp::Check {
            pk: "USER#u1".into(),
            sk: "META".into(),
            cond: Condition::NotExists,
        },
    ])
    .await
    .unwrap();
    assert_eq!(t.get("TRIP#t", "META").await.unwrap().unwrap().i64("seats"), Some(1));
    assert_eq!(
        t.get("TRIP#t", "BOOKING#b1").await.unwrap(),
        Some(Item::new("TRIP#t", "BOOKING#b1").with("user", "u1"))
    );
    assert_eq!(
        t.get("OUTBOX#0", "new").await.unwrap(),
        Some(Item::new("OUTBOX#0", "new").with("sent", false))
    );
    assert_eq!(t.get("OUTBOX#0", "old").await.unwrap(), None);
    assert_eq!(t.get("USER#u1", "META").await.unwrap(), None, "a check writes nothing");
}

async fn transaction_failed_condition_writes_nothing(t: Arc<dyn Table>) {
    t.put(Item::new("TRIP#f", "META").with("seats", 0), None).await.unwrap();
    t.put(Item::new("TRIP#f", "BOOKING#old"), None).await.unwrap();
    let r = t
        .transact(vec![
            TxOp::Put {
                item: Item::new("OUTBOX#0", "e1"),
                cond: None,
            },
            TxOp::Update {
                pk: "TRIP#f".into(),
                sk: "META".into(),
                updates: vec![add("seats", -1)],
                cond: Some(Condition::Ge("seats".into(), 1.0)),
            },
            TxOp::Delete {
                pk: "TRIP#f".into(),
                sk: "BOOKING#old".into(),
                cond: None,
            },
            TxOp::Check {
                pk: "TRIP#f".into(),
                sk: "BOOKING#other".into(),
                cond: Condition::Exists,
            },
        ])
        .await;
    assert!(
        matches!(&r, Err(TableError::TransactionCanceled { failed }) if failed == &[1, 3]),
        "{r:?}"
    );
    assert_eq!(t.get("OUTBOX#0", "e1").await.unwrap(), None);
    assert_eq!(t.get("TRIP#f", "META").await.unwrap().unwrap().i64("seats"), Some(0));
    assert!(t.get("TRIP#f", "BOOKING#old").await.unwrap().is_some());

    let r = t
        .transact(vec![
            TxOp::Put {
                item: Item::new("OUTBOX#0", "e2"),
                cond: None,
            },
            TxOp::Put {
                item: Item::new("TRIP#f", "BOOKING#old"),
                cond: Some(Condition::NotExists),
            },
        ])
        .await;
    assert!(
        matches!(&r, Err(TableError::TransactionCanceled { failed }) if failed == &[1]),
        "{r:?}"
    );
    assert_eq!(t.get("OUTBOX#0", "e2").await.unwrap(), None);
}

async fn invalid_transactions(t: Arc<dyn Table>) {
    let put = |sk: &str| TxOp::Put {
        item: Item::new("TX", sk),
        cond: None,
    };
    invalid(
        "two ops on one item",
        t.transact(vec![
            put("1"),
            TxOp::Delete {
                pk: "TX".into(),
                sk: "1".into(),
                cond: None,
            },
        ])
        .await,
    );
    invalid("101 ops", t.transact((0..101).map(|i| put(&format!("{i:03}"))).collect()).await);
    let no_change = TxOp::Update {
        pk: "TX".into(),
        sk: "2".into(),
        updates: vec![],
        cond: None,
    };
    invalid("an update without changes", t.transact(vec![no_change]).await);
    invalid("no ops", t.transact(vec![]).await);
    assert_eq!(t.get("TX", "1").await.unwrap(), None);
    t.transact((0..100).map(|i| put(&format!("{i:03}"))).collect()).await.unwrap();
    assert_eq!(query_all(t.as_ref(), Query::new("TX")).await.unwrap().len(), 100);
}

async fn query_sort_key_conditions_and_order(t: Arc<dyn Table>) {
    for sk in [
        "META",
        "MSG#2024-01-02",
        "MSG#2024-01-01",
        "MSG#2024-01-03",
        "MEMBER#bob",
        "MEMBER#al",
        "TYPING#al",
    ] {
        t.put(Item::new("CHAT#q", sk), None).await.unwrap();
    }
    t.put(Item::new("CHAT#other", "MSG#2024-01-01"), None).await.unwrap();
    let q = |q: Query| {
        let t = t.clone();
        async move {
            sks(&t.query(q).await.unwrap().items)
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        q(Query::new("CHAT#q").begins_with("MSG#")).await,
        ["MSG#2024-01-01", "MSG#2024-01-02", "MSG#2024-01-03"]
    );
    assert_eq!(
        q(Query::new("CHAT#q").begins_with("MSG#").backward()).await,
        ["MSG#2024-01-03", "MSG#2024-01-02", "MSG#2024-01-01"]
    );
    assert_eq!(q(Query::new("CHAT#q").begins_with("MEMBER#")).await, ["MEMBER#al", "MEMBER#bob"]);
    assert_eq!(
        q(Query::new("CHAT#q")).await,
        [
            "MEMBER#al",
            "MEMBER#bob",
            "META",
            "MSG#2024-01-01",
            "MSG#2024-01-02",
            "MSG#2024-01-03",
            "TYPING#al"
        ],
        "byte order of the sort key"
    );
    let between = SkCond::Between("MSG#2024-01-02".into(), "MSG#2024-01-03".into());
    assert_eq!(
        q(Query::new("CHAT#q").sk(between)).await,
        ["MSG#2024-01-02", "MSG#2024-01-03"],
        "inclusive"
    );
    assert_eq!(q(Query::new("CHAT#q").sk(SkCond::Lt("MEMBER#bob".into()))).await, ["MEMBER#al"]);
    assert_eq!(
        q(Query::new("CHAT#q").sk(SkCond::Le("MEMBER#bob".into()))).await,
        ["MEMBER#al", "MEMBER#bob"]
    );
    assert_eq!(q(Query::new("CHAT#q").sk(SkCond::Gt("MSG#2024-01-03".into()))).await, ["TYPING#al"]);
    assert_eq!(
        q(Query::new("CHAT#q").sk(SkCond::Ge("MSG#2024-01-03".into()))).await,
        ["MSG#2024-01-03", "TYPING#al"]
    );
    assert_eq!(q(Query::new("CHAT#q").begins_with("NOPE")).await, Vec::<String>::new());
    assert_eq!(q(Query::new("CHAT#none")).await, Vec::<String>::new());
    // Byte order, not locale order: "Z" < "a" < "é".
    for sk in ["é", "a", "Z"] {
        t.put(Item::new("ORDER", sk), None).await.unwrap();
    }
    assert_eq!(q(Query::new("ORDER")).await, ["Z", "a", "é"]);
}

async fn query_pages_with_cursor(t: Arc<dyn Table>) {
    let all: Vec<String> = (0..25).map(|i| format!("SEQ#{i:05}")).collect();
    for sk in &all {
        t.put(Item::new("LOG#p", sk.as_str()).with("data", "x"), None).await.unwrap();
    }
    t.put(Item::new("LOG#p", "HEAD"), None).await.unwrap();
    for forward in [true, false] {
        let mut q = Query::new("LOG#p").begins_with("SEQ#").limit(7);
        q.forward = forward;
        let (mut seen, mut pages) = (Vec::new(), 0);
        loop {
            let page = t.query(q.clone()).await.unwrap();
            assert!(page.items.len() <= 7);
            pages += 1;
            seen.extend(page.items.iter().map(|i| i.sk.clone()));
            match page.cursor {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        let mut expected = all.clone();
        if !forward {
            expected.reverse();
        }
        assert_eq!(seen, expected, "forward={forward}");
        assert_eq!(pages, 4);
    }
    // A page that ends exactly at the last item still has a cursor; the next page is empty.
    let page = t.query(Query::new("LOG#p").begins_with("SEQ#").limit(25)).await.unwrap();
    assert_eq!(page.items.len(), 25);
    let next = t
        .query(Query::new("LOG#p").begins_with("SEQ#").limit(25).cursor(page.cursor))
        .await
        .unwrap();
    assert_eq!((next.items.len(), next.cursor), (0, None));
    assert_eq!(
        query_all(t.as_ref(), Query::new("LOG#p").begins_with("SEQ#").limit(4))
            .await
            .unwrap()
            .len(),
        25
    );
}

async fn gsi1_queries(t: Arc<dyn Table>) {
    // Bookings of one user across trips; several share a gsi1sk (index keys need not be unique).
    let bookings = [
        ("TRIP#a", "BOOKING#1", "2024-05-01"),
        ("TRIP#b", "BOOKING#2", "2024-03-01"),
        ("TRIP#c", "BOOKING#3", "2024-04-01"),
        ("TRIP#d", "BOOKING#4", "2024-04-01"),
        ("TRIP#e", "BOOKING#5", "2024-04-01"),
    ];
    for (pk, sk, at) in bookings {
        t.put(Item::new(pk, sk).with(GSI1PK, "USER#u").with(GSI1SK, at).with("n", 1), None)
            .await
            .unwrap();
    }
    t.put(
        Item::new("TRIP#x", "BOOKING#9")
            .with(GSI1PK, "USER#other")
            .with(GSI1SK, "2024-01-01"),
        None,
    )
    .await
    .unwrap();
    t.put(Item::new("TRIP#y", "BOOKING#8").with(GSI1PK, "USER#u"), None).await.unwrap(); // no gsi1sk: not indexed
    t.put(Item::new("USER#u", "META"), None).await.unwrap(); // the table key is not the index key

    let page = t.query(Query::gsi1("USER#u")).await.unwrap();
    let ats: Vec<_> = page.items.iter().map(|i| i.str(GSI1SK).unwrap()).collect();
    assert_eq!(ats, ["2024-03-01", "2024-04-01", "2024-04-01", "2024-04-01", "2024-05-01"]);
    assert_eq!(
        page.items[0],
        Item::new("TRIP#b", "BOOKING#2")
            .with(GSI1PK, "USER#u")
            .with(GSI1SK, "2024-03-01")
            .with("n", 1),
        "projects all"
    );
    let april = t
        .query(Query::gsi1("USER#u").begins_with("2024-04").backward())
        .await
        .unwrap()
        .items;
    assert_eq!(april.len(), 3);
    let between = SkCond::Between("2024-03-15".into(), "2024-05-01".into());
    assert_eq!(t.query(Query::gsi1("USER#u").sk(between)).await.unwrap().items.len(), 4);
    // Paging across equal index keys returns each item exactly once, in both directions.
    for q in [Query::gsi1("USER#u").limit(2), Query::gsi1("USER#u").limit(2).backward()] {
        let mut got: Vec<String> = query_all(t.as_ref(), q).await.unwrap().into_iter().map(|i| i.pk).collect();
        assert_eq!(got.len(), 5);
        got.sort();
        assert_eq!(got, ["TRIP#a", "TRIP#b", "TRIP#c", "TRIP#d", "TRIP#e"]);
    }
}

async fn ttl_hides_expired_items(t: Arc<dyn Table>) {
    let now = now_epoch();
    t.put(Item::new("TYPING", "1").with_ttl(now + 3600), None).await.unwrap();
    t.put(Item::new("TYPING", "2").with_ttl(now - 60), None).await.unwrap();
    t.put(Item::new("TYPING", "3"), None).await.unwrap();
    t.put(Item::new("TYPING", "4").with_ttl(now - 1), None).await.unwrap();
    assert!(t.get("TYPING", "1").await.unwrap().is_some());
    assert_eq!(t.get("TYPING", "2").await.unwrap(), None);
    assert!(t.get("TYPING", "3").await.unwrap().is_some());
    assert_eq!(sks(&t.query(Query::new("TYPING")).await.unwrap().items), ["1", "3"]);
    // The limit counts expired items too (they are filtered after it): the first page is short.
    let first = t.query(Query::new("TYPING").limit(2)).await.unwrap();
    assert_eq!(sks(&first.items), ["1"]);
    let second = t.query(Query::new("TYPING").limit(2).cursor(first.cursor)).await.unwrap();
    assert_eq!(sks(&second.items), ["3"]);
    t.put(Item::new("TYPING", "5").with_ttl(now - 1).with(GSI1PK, "G").with(GSI1SK, "5"), None)
        .await
        .unwrap();
    assert!(t.query(Query::gsi1("G")).await.unwrap().items.is_empty());
    // Writing it again with a later ttl brings it back.
    t.put(Item::new("TYPING", "2").with_ttl(now + 60), None).await.unwrap();
    assert!(t.get("TYPING", "2").await.unwrap().is_some());
}

async fn values_round_trip(t: Arc<dyn Table>) {
    let item = Item::new("V", "1")
        .with(
            "nested",
            json!({"a": {"b": [1, -2, 3.5, {"c": null}], "d": true}, "e": [], "f": {}}),
        )
        .with("floats", json!([0.1, -2.5, 1e-7, 1.2345678901234567]))
        .with("ints", json!([0, -1, i64::MAX, i64::MIN]))
        .with("bools", json!([true, false]))
        .with("null", json!(null))
        .with("empty", "")
        .with("unicode", "héllo ✓ 🚗");
    t.put(item.clone(), None).await.unwrap();
    assert_eq!(t.get("V", "1").await.unwrap(), Some(item.clone()));
    let updated = t
        .update("V", "1", vec![Update::Set("more".into(), json!({"x": [1.25, "y"]}))], None)
        .await
        .unwrap();
    assert_eq!(updated, item.clone().with("more", json!({"x": [1.25, "y"]})));
    assert_eq!(t.query(Query::new("V")).await.unwrap().items, vec![updated]);
    // Numbers are numbers: an integral float reads back as an integer (DynamoDB's N).
    t.put(Item::new("V", "2").with("n", 2.0).with("l", json!([5.0])), None)
        .await
        .unwrap();
    assert_eq!(
        t.get("V", "2").await.unwrap(),
        Some(Item::new("V", "2").with("n", 2).with("l", json!([5])))
    );
}

async fn invalid_requests(t: Arc<dyn Table>) {
    invalid("empty sort key", t.put(Item::new("A", ""), None).await);
    invalid("empty partition key", t.get("", "1").await);
    invalid("empty query key", t.query(Query::new("")).await);
    invalid(
        "non-string index key",
        t.put(Item::new("A", "1").with(GSI1PK, 5).with(GSI1SK, "x"), None).await,
    );
    invalid(
        "empty index key",
        t.put(Item::new("A", "1").with(GSI1PK, "").with(GSI1SK, "x"), None).await,
    );
    invalid(
        "update of the key",
        t.update("A", "1", vec![Update::Set("pk".into(), json!("B"))], None).await,
    );
    invalid(
        "one attribute twice",
        t.update("A", "1", vec![add("n", 1), Update::Remove("n".into())], None).await,
    );
    t.put(Item::new("A", "1").with("s", "text"), None).await.unwrap();
    invalid("ADD on a string", t.update("A", "1", vec![add("s", 1)], None).await);
    assert_eq!(t.get("A", "1").await.unwrap(), Some(Item::new("A", "1").with("s", "text")));
    invalid(
        "reversed BETWEEN",
        t.query(Query::new("A").sk(SkCond::Between("b".into(), "a".into()))).await,
    );
    invalid("limit 0", t.query(Query::new("A").limit(0)).await);
    invalid(
        "garbage cursor",
        t.query(Query::new("A").cursor(Some("not a cursor!".into()))).await,
    );
}
