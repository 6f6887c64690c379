//! Per-channel sequence numbers and the channel log that replay reads.
//!
//! Events are sequenced where they happen: [`stage`] gives each logged event of a
//! write its channels' next `seq`s, as more items of the transaction that writes the
//! state change: the log entries themselves (`SEQ#{seq}`, written only if that seq is
//! free). The newest entry is the channel's head, read with one backward Query, so a
//! seq costs no item besides its entry; two writers that read the same head both try
//! the same seq and one of them reads again. The log's order is then the order in which
//! the state changed, and the log entry is also the outbox: the first entry of each
//! event carries `relay`, and the table's change feed (DynamoDB Streams; the embedded
//! table's feed) hands it to the relay, which publishes it to the bus.
//!
//! The `HEAD` item holds the channel's epoch only: written when a channel is first
//! subscribed to or written, and again (a new epoch) when the whole log has expired, so
//! that no seq is ever given twice in one epoch.
//!
//! Events that come from outside (a producer's `PutEvents`) carry no seq: the fan-out
//! sequences those on arrival with [`append`], one transaction (claim the event id,
//! write the entry), so a redelivery is never sequenced twice.

use crate::channels::{channels_for, Channel};
use crate::events::{Envelope, Position, Priority};
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

/// The item attribute that puts a log entry on the table's change feed for the relay
/// (the filter of the relay's DynamoDB stream mapping in `template.yaml`).
pub const RELAY: &str = "relay";

/// The writes that sequence a batch of events at their source, and the events with
/// their positions.
#[derive(Debug, Clone, Default)]
pub struct Staged {
    /// Heads (conditioned on the seq they were read at) and log entries.
    pub ops: Vec<TxOp>,
    /// Every event, logged ones with their `sequence` filled in.
    pub events: Vec<Envelope>,
    /// The first log entry of each logged event: (pk, sk, event id), to check after an
    /// ambiguous failure whether the transaction landed.
    pub entries: Vec<(String, String, String)>,
    /// For each op of `ops`, the entry's position when it is a log entry.
    pub positions: Vec<Option<Position>>,
}

impl Staged {
    /// Events that have no log entry: `low` ones and those only on unlogged channels.
    /// They are not on the change feed, so their writer publishes them itself.
    pub fn unlogged(&self) -> Vec<Envelope> {
        self.events.iter().filter(|e| e.sequence.is_empty()).cloned().collect()
    }
}

/// The channels of an event that keep a log for it.
pub fn logged_channels(e: &Envelope) -> Vec<Channel> {
    if e.priority == Priority::Low {
        return Vec::new();
    }
    channels_for(e).into_iter().filter(Channel::is_logged).collect()
}

/// Reads the heads of the channels the events go to and plans their sequencing: one
/// head write per channel and one log entry per (event, channel), seqs in the order
/// of `events` (causes first). A concurrent writer of a channel makes the head's
/// condition fail; the caller reads again ([`crate::outbox::commit`] does).
pub async fn stage(table: &dyn Table, events: &[Envelope], retention_secs: i64) -> Result<Staged, TableError> {
    stage_after(table, events, retention_secs, &[]).await
}

/// [`stage`], where `taken` holds positions known to be taken (an entry's condition failed
/// there): those channels continue after them without reading their head again.
pub async fn stage_after(table: &dyn Table, events: &[Envelope], retention_secs: i64, taken: &[Position]) -> Result<Staged, TableError> {
    // Per channel: the last position, advanced as seqs are given.
    let mut heads: Vec<(Channel, Head)> = Vec::new();
    let mut entry_positions = Vec::new();
    let mut staged = Staged::default();
    let ttl = now_epoch() + retention_secs;
    let mut entry_ops = Vec::new();
    for e in events {
        let mut event = e.clone();
        event.sequence.clear();
        let channels = logged_channels(&event);
        let mut positions = Vec::with_capacity(channels.len());
        for channel in &channels {
            let i = match heads.iter().position(|(c, _)| c == channel) {
                Some(i) => i,
                None => {
                    let name = channel.to_string();
                    let known = taken.iter().filter(|p| p.channel == name).max_by_key(|p| p.seq);
                    let last = match known {
                        Some(p) => Head {
                            epoch: p.epoch.clone(),
                            seq: p.seq,
                        },
                        None => {
                            let (last, epoch_op) = next_slot(table, &keys::log(&name)).await?;
                            staged.ops.extend(epoch_op);
                            last
                        }
                    };
                    heads.push((channel.clone(), last));
                    heads.len() - 1
                }
            };
            let head = &mut heads[i].1;
            head.seq += 1;
            positions.push(Position {
                channel: channel.to_string(),
                epoch: head.epoch.clone(),
                seq: head.seq,
            });
        }
        let body = serde_json::to_value(&event).map_err(|err| TableError::Invalid(err.to_string()))?;
        for (n, p) in positions.iter().enumerate() {
            let mut item = entry(&p.channel, p.seq, &p.epoch, body.clone(), ttl);
            if n == 0 {
                // The one entry the relay publishes the event from, with all its positions.
                item = item
                    .with(RELAY, true)
                    .with("sequence", serde_json::to_value(&positions).unwrap_or_default());
                staged.entries.push((item.pk.clone(), item.sk.clone(), event.id.clone()));
            }
            entry_ops.push(TxOp::Put {
                item,
                cond: Some(free_slot()),
            });
            entry_positions.push(Some(p.clone()));
        }
        event.sequence = positions;
        staged.events.push(event);
    }
    staged.positions = vec![None; staged.ops.len()];
    staged.positions.extend(entry_positions);
    staged.ops.extend(entry_ops);
    Ok(staged)
}

fn entry(channel: &str, seq: u64, epoch: &str, event: Value, ttl: i64) -> Item {
    Item::new(keys::log(channel), keys::log_seq(seq))
        .with("seq", seq)
        .with("epoch", epoch)
        .with("event", event)
        .with_ttl(ttl)
}

/// An entry's seq is free when no entry holds it, or only one that has expired but is
/// not deleted yet (DynamoDB deletes expired items late; a new epoch reuses seqs).
fn free_slot() -> Condition {
    Condition::Or(vec![
        Condition::NotExists,
        Condition::Lt(crate::ports::table::TTL.into(), now_epoch() as f64),
    ])
}

/// The newest unexpired entry of a log: the channel's position.
async fn tail(table: &dyn Table, pk: &str) -> Result<Option<Head>, TableError> {
    let page = table
        .query(Query::new(pk).begins_with(keys::SEQ_PREFIX).backward().limit(1))
        .await?;
    Ok(page.items.first().map(head_of))
}

/// The position the next event of a log follows, and the write of the epoch when the
/// log has no entry: the first event of a channel uses the epoch its `HEAD` has (or a
/// new one); after the whole log expired, a new epoch, so no seq is given twice in one.
async fn next_slot(table: &dyn Table, pk: &str) -> Result<(Head, Option<TxOp>), TableError> {
    if let Some(last) = tail(table, pk).await? {
        return Ok((last, None));
    }
    let current = table.get(pk, keys::HEAD).await?;
    let (epoch, cond) = match &current {
        None => (ulid::Ulid::new().to_string(), Condition::NotExists),
        Some(h) if h.get(USED) != Some(&Value::Bool(true)) => {
            let e = h.str("epoch").unwrap_or_default().to_string();
            (e.clone(), Condition::Eq("epoch".into(), e.into()))
        }
        Some(h) => (
            ulid::Ulid::new().to_string(),
            Condition::Eq("epoch".into(), h.str("epoch").unwrap_or_default().into()),
        ),
    };
    let op = TxOp::Put {
        item: Item::new(pk, keys::HEAD).with("epoch", epoch.as_str()).with(USED, true),
        cond: Some(cond),
    };
    Ok((Head { epoch, seq: 0 }, Some(op)))
}

/// Set on `HEAD` once its epoch has given a seq.
const USED: &str = "used";

/// The event a relayed log entry holds, with its positions on every channel.
pub fn relayed_event(item: &Item) -> Option<Envelope> {
    let mut event: Envelope = serde_json::from_value(item.get("event")?.clone()).ok()?;
    event.sequence = serde_json::from_value(item.get("sequence")?.clone()).ok()?;
    Some(event)
}

/// Attempts under contention (concurrent events on one channel) before giving up
/// with a transient error, which the fan-out's retry turns into another try.
const ATTEMPTS: u32 = 16;

/// The channel's position: its newest entry, or its epoch (created on first use) and 0.
pub async fn head(table: &dyn Table, channel: &Channel) -> Result<Head, TableError> {
    let pk = keys::log(&channel.to_string());
    if let Some(last) = tail(table, &pk).await? {
        return Ok(last);
    }
    let item = match table.get(&pk, keys::HEAD).await? {
        Some(item) => item,
        None => {
            let updates = vec![Update::SetIfMissing("epoch".into(), Value::String(ulid::Ulid::new().to_string()))];
            table.update(&pk, keys::HEAD, updates, None).await?
        }
    };
    Ok(Head {
        epoch: item.str("epoch").unwrap_or_default().to_string(),
        seq: 0,
    })
}

/// Gives an event from outside its channel's next sequence number and writes it to the log.
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
        let (last, epoch_op) = next_slot(table, &pk).await?;
        let next = Head {
            epoch: last.epoch,
            seq: last.seq + 1,
        };
        let ttl = now_epoch() + retention_secs;
        let mut ops = vec![
            TxOp::Put {
                item: Item::new(&pk, &evt_sk)
                    .with("seq", next.seq)
                    .with("epoch", next.epoch.as_str())
                    .with_ttl(ttl),
                cond: Some(Condition::NotExists),
            },
            TxOp::Put {
                item: entry(&channel.to_string(), next.seq, &next.epoch, body.clone(), ttl),
                cond: Some(free_slot()),
            },
        ];
        ops.extend(epoch_op);
        match table.transact(ops).await {
            Ok(()) => return Ok(Appended::New(next)),
            Err(TableError::TransactionCanceled { failed }) if failed.contains(&0) => {
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
        // No entry left of an epoch that gave seqs: they all expired.
        if head.seq == 0 {
            let used = table.get(&keys::log(&channel.to_string()), keys::HEAD).await?;
            if used.is_some_and(|h| h.get(USED) == Some(&Value::Bool(true))) {
                return Ok(Replay::Resync("log_trimmed"));
            }
        }
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
        if item.i64("seq") != Some(expected as i64) || item.str("epoch") != Some(epoch) {
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
