//! `realtime_domain::idempotency` on the embedded adapters.

use realtime_domain::idempotency::*;
use realtime_embedded::sqlite::SqliteTable;
use serde_json::json;

#[tokio::test]
async fn the_first_answer_is_replayed_and_a_reused_key_refused() {
    let t = SqliteTable::in_memory();
    assert_eq!(Key::from_header("s", None, b"{}").unwrap(), None);
    assert!(Key::from_header("s", Some("bad key!"), b"{}").is_err());
    let k = Key::from_header("booking:u1", Some("k-1"), b"{\"a\":1}").unwrap().unwrap();
    assert_eq!(k.pk, "IDEM#booking:u1#k-1");
    assert_eq!(k.lookup(&t).await.unwrap(), None);
    let first = Answer {
        status: 409,
        body: json!({"error": {"code": "not_enough_seats"}}),
    };
    assert_eq!(k.remember(&t, first.clone()).await.unwrap(), first);
    let second = Answer {
        status: 201,
        body: json!({}),
    };
    assert_eq!(k.remember(&t, second).await.unwrap(), first, "the first answer stays");
    assert_eq!(k.lookup(&t).await.unwrap(), Some(first));
    let other = Key::from_header("booking:u1", Some("k-1"), b"{\"a\":2}").unwrap().unwrap();
    assert!(matches!(other.lookup(&t).await, Err(IdempotencyError::Reused)));
}
