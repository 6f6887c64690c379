//! `Idempotency-Key`: the first answer to a request is stored under
//! `IDEM#{scope}#{key}` (with a TTL) and replayed to every retry with that key. The
//! scope names the operation and the caller, so two users never share a key. A retry
//! with the same key but another body is refused (409 `idempotency_key_reused`).
//!
//! Success answers are stored in the transaction that makes the change, so a change
//! and its answer are never apart; refusals (409) are stored with a conditional put.

use crate::error::InvalidField;
use crate::keys;
use crate::ports::table::{now_epoch, TTL};
use crate::ports::{Condition, Item, Table, TableError, TxOp};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// How long an answer is replayed (a client retries within minutes; a day is generous).
pub const TTL_SECS: i64 = 24 * 3600;

/// A request's key, validated: 1-64 letters, digits, `-` or `_` (a UUID fits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub pk: String,
    /// The SHA-256 of the request body: a reused key must come with the same request.
    pub fingerprint: String,
}

/// A stored answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// Why a key's stored answer cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IdempotencyError {
    /// The key came with a different request body.
    #[error("this Idempotency-Key was used with a different request")]
    Reused,
    #[error(transparent)]
    Table(#[from] TableError),
}

impl Key {
    /// The key of a request, when it has the header.
    pub fn from_header(scope: &str, header: Option<&str>, body: &[u8]) -> Result<Option<Key>, InvalidField> {
        let Some(key) = header else {
            return Ok(None);
        };
        let key = key.trim();
        if !crate::ids::valid_id(key) {
            return Err(InvalidField("Idempotency-Key must be 1-64 letters, digits, - or _".into()));
        }
        let fingerprint = Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect();
        Ok(Some(Key {
            pk: keys::idem(scope, key),
            fingerprint,
        }))
    }

    fn item(&self, answer: &Answer) -> Item {
        Item::new(&self.pk, keys::META)
            .with("fingerprint", self.fingerprint.as_str())
            .with("status", answer.status)
            .with("body", answer.body.clone())
            .with_ttl(now_epoch() + TTL_SECS)
    }

    /// Only where no live answer is stored (an expired one may still be there: DynamoDB
    /// deletes late, so the condition reads the TTL too).
    fn free() -> Condition {
        Condition::Or(vec![Condition::NotExists, Condition::Lt(TTL.into(), now_epoch() as f64)])
    }

    /// The write that stores `answer`, to add to the transaction that makes the change.
    pub fn put_op(&self, answer: &Answer) -> TxOp {
        TxOp::Put {
            item: self.item(answer),
            cond: Some(Self::free()),
        }
    }

    /// The stored answer, if any; a different body under the same key is refused.
    pub async fn lookup(&self, table: &dyn Table) -> Result<Option<Answer>, IdempotencyError> {
        let Some(item) = table.get(&self.pk, keys::META).await? else {
            return Ok(None);
        };
        if item.str("fingerprint") != Some(self.fingerprint.as_str()) {
            return Err(IdempotencyError::Reused);
        }
        Ok(Some(Answer {
            status: item.i64("status").and_then(|s| u16::try_from(s).ok()).unwrap_or(200),
            body: item.get("body").cloned().unwrap_or(Value::Null),
        }))
    }

    /// Stores a refusal as the first answer; when another request stored one first, that one.
    pub async fn remember(&self, table: &dyn Table, answer: Answer) -> Result<Answer, IdempotencyError> {
        match table.put(self.item(&answer), Some(Self::free())).await {
            Ok(()) => Ok(answer),
            Err(TableError::ConditionFailed) => Ok(self.lookup(table).await?.unwrap_or(answer)),
            Err(e) => Err(e.into()),
        }
    }
}
