//! Per-channel sequence numbers and the channel log that replay reads.

use crate::channels::Channel;
use crate::events::Envelope;
use crate::keys;
use crate::ports::table::now_epoch;
use crate::ports::{Condition, Item, Table, TableError, Update};
use serde_json::Value;

/// A channel's position: the epoch changes only if the log is ever reset; `seq` is
/// the last sequence number given (0 before the first event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub epoch: String,
    pub seq: u64,
}

fn head_of(item: &Item) -> Head {
    Head {
        epoch: item.str("epoch").unwrap_or_default().to_string(),
        seq: item.i64("seq").unwrap_or(0).max(0) as u64,
    }
}

fn head_updates(add: i64) -> Vec<Update> {
    vec![
        Update::Add("seq".into(), add),
        Update::SetIfMissing("epoch".into(), Value::String(ulid::Ulid::new().to_string())),
    ]
}

/// The channel's head, created (with a fresh epoch) on first use.
pub async fn head(table: &dyn Table, channel: &Channel) -> Result<Head, TableError> {
    let ch = channel.to_string();
    if let Some(item) = table.get(&keys::log(&ch), keys::HEAD).await? {
        return Ok(head_of(&item));
    }
    Ok(head_of(&table.update(&keys::log(&ch), keys::HEAD, head_updates(0), None).await?))
}

/// Gives the event the channel's next sequence number and writes it to the log.
/// Returns None when this event id was already sequenced on this channel
/// (EventBridge delivers at least once).
pub async fn append(table: &dyn Table, channel: &Channel, event: &Envelope, retention_secs: i64) -> Result<Option<Head>, TableError> {
    let ch = channel.to_string();
    let ttl = now_epoch() + retention_secs;
    let claim = Item::new(keys::log(&ch), keys::log_evt(&event.id)).with_ttl(ttl);
    match table.put(claim, Some(Condition::NotExists)).await {
        Err(TableError::ConditionFailed) => return Ok(None),
        other => other?,
    }
    let head = head_of(&table.update(&keys::log(&ch), keys::HEAD, head_updates(1), None).await?);
    let entry = Item::new(keys::log(&ch), keys::log_seq(head.seq))
        .with("seq", head.seq)
        .with("epoch", head.epoch.as_str())
        .with("event", serde_json::to_value(event).unwrap_or_default())
        .with_ttl(ttl);
    table.put(entry, None).await?;
    Ok(Some(head))
}
