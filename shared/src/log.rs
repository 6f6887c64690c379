//! Per-channel sequence numbers and the channel log that replay reads.
//!
//! Sequencing is one transaction (head += 1, claim the event id, write the entry),
//! so a seq is never given twice, never skipped, and an event is never sequenced
//! twice on a channel however often EventBridge delivers it.

use crate::channels::Channel;
use crate::events::Envelope;
use crate::keys;
use crate::ports::table::now_epoch;
use crate::ports::{Condition, Item, Query, SkCond, Table, TableError, TxOp, Update};
use serde_json::Value;
use std::time::Duration;

/// A channel's position: the epoch changes only if the log is ever reset; `seq` is
/// the last sequence number given (0 before the first event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub epoch: String,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Newly sequenced.
    New(Head),
    /// Sequenced before (a redelivery); `pushed` once a fan-out finished pushing it.
    Duplicate { head: Head, pushed: bool },
}

fn head_of(item: &Item) -> Head {
    Head {
        epoch: item.str("epoch").unwrap_or_default().to_string(),
        seq: item.i64("seq").unwrap_or(0).max(0) as u64,
    }
}

/// Attempts under contention (concurrent events on one channel) before giving up
/// with a transient error, which the fan-out's retry turns into another try.
const ATTEMPTS: u32 = 16;

/// The channel's head, created (with a fresh epoch) on first use.
pub async fn head(table: &dyn Table, channel: &Channel) -> Result<Head, TableError> {
    let pk = keys::log(&channel.to_string());
    if let Some(item) = table.get(&pk, keys::HEAD).await? {
        return Ok(head_of(&item));
    }
    let updates = vec![
        Update::Add("seq".into(), 0),
        Update::SetIfMissing("epoch".into(), Value::String(ulid::Ulid::new().to_string())),
    ];
    Ok(head_of(&table.update(&pk, keys::HEAD, updates, None).await?))
}

/// Gives the event the channel's next sequence number and writes it to the log.
pub async fn append(table: &dyn Table, channel: &Channel, event: &Envelope, retention_secs: i64) -> Result<Appended, TableError> {
    let pk = keys::log(&channel.to_string());
    let evt_sk = keys::log_evt(&event.id);
    let body = serde_json::to_value(event).map_err(|e| TableError::Invalid(e.to_string()))?;
    let mut claim_failures = 0;
    for attempt in 0..ATTEMPTS {
        if let Some(evt) = table.get(&pk, &evt_sk).await? {
            return Ok(Appended::Duplicate {
                head: head_of(&evt),
                pushed: evt.get("pushed") == Some(&Value::Bool(true)),
            });
        }
        let current = table.get(&pk, keys::HEAD).await?;
        let (prev, epoch) = match &current {
            Some(item) => (head_of(item).seq, head_of(item).epoch),
            None => (0, ulid::Ulid::new().to_string()),
        };
        let next = Head { epoch, seq: prev + 1 };
        let ttl = now_epoch() + retention_secs;
        let head_cond = if current.is_some() {
            Condition::Eq("seq".into(), prev.into())
        } else {
            Condition::NotExists
        };
        let ops = vec![
            TxOp::Put {
                item: Item::new(&pk, keys::HEAD).with("seq", next.seq).with("epoch", next.epoch.as_str()),
                cond: Some(head_cond),
            },
            TxOp::Put {
                item: Item::new(&pk, &evt_sk)
                    .with("seq", next.seq)
                    .with("epoch", next.epoch.as_str())
                    .with_ttl(ttl),
                cond: Some(Condition::NotExists),
            },
            TxOp::Put {
                item: Item::new(&pk, keys::log_seq(next.seq))
                    .with("seq", next.seq)
                    .with("epoch", next.epoch.as_str())
                    .with("event", body.clone())
                    .with_ttl(ttl),
                cond: None,
            },
        ];
        match table.transact(ops).await {
            Ok(()) => return Ok(Appended::New(next)),
            Err(TableError::TransactionCanceled { failed }) if failed.contains(&1) => {
                // Claimed by a concurrent delivery; if the claim stays invisible it is an
                // expired one DynamoDB has not deleted yet: an old redelivery, drop it.
                claim_failures += 1;
                if claim_failures >= 2 {
                    return Ok(Appended::Duplicate { head: next, pushed: true });
                }
            }
            // Another event took the seq: read the head again.
            Err(TableError::TransactionCanceled { .. }) | Err(TableError::Transient(_)) if attempt + 1 < ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 2 + rand::random::<u64>() % 5)).await;
            }
            Err(e) => return Err(e),
        }
    }
    Err(TableError::Transient(format!("channel {channel}: sequencing contention")))
}

/// Records that the event was pushed, so a redelivery pushes nothing again.
pub async fn mark_pushed(table: &dyn Table, channel: &Channel, event_id: &str, retention_secs: i64) -> Result<(), TableError> {
    let pk = keys::log(&channel.to_string());
    // The TTL is set again: DynamoDB keeps an updated item's old TTL otherwise.
    let updates = vec![
        Update::Set("pushed".into(), Value::Bool(true)),
        Update::Set(crate::ports::table::TTL.into(), (now_epoch() + retention_secs).into()),
    ];
    match table.update(&pk, &keys::log_evt(event_id), updates, Some(Condition::Exists)).await {
        Ok(_) | Err(TableError::ConditionFailed) => Ok(()),
        Err(e) => Err(e),
    }
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq)]
pub enum Replay {
    /// The events after the asked seq, in order (at most the asked number), the
    /// channel's head, and whether more follow.
    Events { events: Vec<(u64, Value)>, head: Head, more: bool },
    /// The log cannot answer: the client must refetch state.
    Resync(&'static str),
}

/// The logged events of a channel after `after`, if the log still has all of them.
pub async fn replay(table: &dyn Table, channel: &Channel, epoch: &str, after: u64, max: u32) -> Result<Replay, TableError> {
    let head = head(table, channel).await?;
    if head.epoch != epoch {
        return Ok(Replay::Resync("epoch_changed"));
    }
    if after > head.seq {
        return Ok(Replay::Resync("ahead_of_log"));
    }
    if after == head.seq {
        return Ok(Replay::Events {
            events: Vec::new(),
            head,
            more: false,
        });
    }
    let last = head.seq.min(after + u64::from(max));
    let q = Query::new(keys::log(&channel.to_string())).sk(SkCond::Between(keys::log_seq(after + 1), keys::log_seq(last)));
    let items = crate::ports::table::query_all(table, q).await?;
    let mut events = Vec::with_capacity(items.len());
    for (expected, item) in (after + 1..=last).zip(items.iter()) {
        if item.i64("seq") != Some(expected as i64) {
            break;
        }
        events.push((expected, item.get("event").cloned().unwrap_or(Value::Null)));
    }
    // Entries expire oldest first: a missing one means the log was trimmed.
    if events.len() as u64 != last - after {
        return Ok(Replay::Resync("log_trimmed"));
    }
    Ok(Replay::Events {
        events,
        more: last < head.seq,
        head,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::sqlite::SqliteTable;
    use crate::events::{Cause, ConnectionChanged, Event};

    fn event() -> Envelope {
        Envelope::new(
            Event::ConnectionOpened(ConnectionChanged {
                connection_id: "c".into(),
                user_id: "u".into(),
            }),
            &Cause::default(),
        )
    }

    #[tokio::test]
    async fn events_get_consecutive_seqs_once_and_replay_in_order() {
        let t = SqliteTable::in_memory();
        let ch = Channel::Chat("C1".into());
        let h0 = head(&t, &ch).await.unwrap();
        assert_eq!(h0.seq, 0);
        let evs: Vec<Envelope> = (0..5).map(|_| event()).collect();
        for (i, e) in evs.iter().enumerate() {
            assert_eq!(
                append(&t, &ch, e, 3600).await.unwrap(),
                Appended::New(Head {
                    epoch: h0.epoch.clone(),
                    seq: i as u64 + 1
                })
            );
        }
        assert_eq!(
            append(&t, &ch, &evs[2], 3600).await.unwrap(),
            Appended::Duplicate {
                head: Head {
                    epoch: h0.epoch.clone(),
                    seq: 3
                },
                pushed: false
            }
        );
        mark_pushed(&t, &ch, &evs[2].id, 3600).await.unwrap();
        assert!(matches!(
            append(&t, &ch, &evs[2], 3600).await.unwrap(),
            Appended::Duplicate { pushed: true, .. }
        ));

        let Replay::Events { events, head, more } = replay(&t, &ch, &h0.epoch, 1, 2).await.unwrap() else {
            panic!("no replay")
        };
        assert_eq!(
            (events.iter().map(|e| e.0).collect::<Vec<_>>(), head.seq, more),
            (vec![2, 3], 5, true)
        );
        assert_eq!(events[0].1["id"], evs[1].id.as_str());
        assert_eq!(replay(&t, &ch, "other", 1, 10).await.unwrap(), Replay::Resync("epoch_changed"));
        assert_eq!(replay(&t, &ch, &h0.epoch, 9, 10).await.unwrap(), Replay::Resync("ahead_of_log"));
    }

    #[tokio::test]
    async fn concurrent_events_on_one_channel_never_share_a_seq() {
        let t = std::sync::Arc::new(SqliteTable::in_memory());
        let ch = Channel::Chat("C2".into());
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let (t, ch) = (t.clone(), ch.clone());
                tokio::spawn(async move { append(t.as_ref(), &ch, &event(), 3600).await })
            })
            .collect();
        let mut seqs = Vec::new();
        for task in tasks {
            if let Appended::New(h) = task.await.unwrap().unwrap() {
                seqs.push(h.seq);
            }
        }
        seqs.sort();
        assert_eq!(seqs, (1..=40).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_trimmed_log_answers_resync() {
        let t = SqliteTable::in_memory();
        let ch = Channel::Chat("C3".into());
        let h = head(&t, &ch).await.unwrap();
        for _ in 0..3 {
            append(&t, &ch, &event(), -1).await.unwrap(); // already expired
        }
        assert_eq!(replay(&t, &ch, &h.epoch, 0, 10).await.unwrap(), Replay::Resync("log_trimmed"));
    }
}
