//! `GET /api/realtime/trip-status/{tripId}`: the trip's status as server-sent events.
//!
//! The stream sends `connected` (with `currentStatus`), then a `status_update` for each
//! `trip.status.updated` of the trip, and a `heartbeat` every `sse_heartbeat_ms`. Events are
//! read from the trip channel's log (the fan-out sequences and logs every trip event
//! there): the stream polls it every `sse_poll_ms` for entries after the last seq it sent,
//! which works the same in a Lambda (response streaming) as locally, needs no
//! connection registry, and makes `Last-Event-ID` free: the SSE `id` is the channel seq,
//! and a reconnecting client gets exactly the updates after it. The stream ends after
//! `sse_max_secs` (before Lambda's timeout would cut it) or when the client goes away;
//! EventSource reconnects with `Last-Event-ID` by itself.
//!
//! The domain yields typed [`Message`]s in batches (one per poll); the edge writes them as
//! SSE and counts them. Messages are unnamed SSE events (`data:` only, read with `onmessage`) whose JSON
//! carries `type`: `connected`, `status_update`, `heartbeat`, or `resync` (the log no
//! longer has what the client missed: take `currentStatus` of `connected` as the truth).

use super::access::may_follow;
use super::error::TripError;
use super::model::load;
use super::model::TripStatus;
use super::payloads::TripStatusUpdated;
use crate::auth::Claims;
use crate::channels::Channel;
use crate::deps::Deps;
use crate::ids::TripId;
use crate::log::{self, Replay};
use futures::stream::{self, BoxStream};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// Log entries read per poll (a client far behind catches up over a few polls).
const PAGE: u32 = 100;

/// What each message's JSON says, told apart by `type` (`specs/trip-status.schema.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TripStatusMessage {
    /// First on every stream: the status at the stream's position (`seq`); after a
    /// `resync`, the truth to take.
    #[serde(rename_all = "camelCase")]
    Connected {
        trip_id: String,
        current_status: TripStatus,
        seq: u64,
        timestamp: String,
    },
    /// A `trip.status.updated` of the trip; `seq` (also the SSE `id`) is its channel seq.
    #[serde(rename_all = "camelCase")]
    StatusUpdate {
        event_id: String,
        seq: u64,
        #[serde(flatten)]
        update: TripStatusUpdated,
    },
    /// Every `sse_heartbeat_ms`, so proxies and clients know the stream is alive.
    Heartbeat { timestamp: String },
    /// The log no longer has what the client missed: `connected`'s `currentStatus` of the
    /// next stream is the truth.
    Resync { reason: String, timestamp: String },
}

/// One message of the stream: its SSE `id` (the channel seq, when it has one) and its JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: Option<u64>,
    pub data: TripStatusMessage,
    /// A `status_update` (counted as an event sent), not a heartbeat or a notice.
    pub update: bool,
}

impl Message {
    fn update(seq: u64, data: TripStatusMessage) -> Self {
        Self {
            id: Some(seq),
            data,
            update: true,
        }
    }
    fn notice(id: Option<u64>, data: TripStatusMessage) -> Self {
        Self { id, data, update: false }
    }
}

struct State {
    deps: Deps,
    channel: Channel,
    epoch: String,
    /// The last seq sent (or skipped: the channel also carries booking events).
    after: u64,
    queue: VecDeque<Message>,
    next_poll: Instant,
    next_heartbeat: Instant,
    deadline: Instant,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The `status_update` message of a logged event, if it is a status update.
fn status_update(seq: u64, event: &Value) -> Option<TripStatusMessage> {
    if event.get("type").and_then(Value::as_str) != Some("trip.status.updated") {
        return None;
    }
    let update = TripStatusUpdated::deserialize(event.get("data")?).ok()?;
    let event_id = event.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    Some(TripStatusMessage::StatusUpdate { event_id, seq, update })
}

impl State {
    /// Reads the log after `after` and queues the status updates found.
    async fn poll(&mut self) {
        let table = self.deps.table.as_ref();
        match log::replay(table, &self.channel, &self.epoch, self.after, PAGE).await {
            Ok(Replay::Events { events, more, .. }) => {
                for (seq, event) in events {
                    if let Some(msg) = status_update(seq, &event) {
                        self.queue.push_back(Message::update(seq, msg));
                    }
                    self.after = seq;
                }
                if more {
                    self.next_poll = Instant::now();
                }
            }
            Ok(Replay::Resync(reason)) => {
                let reason = reason.to_string();
                self.queue
                    .push_back(Message::notice(None, TripStatusMessage::Resync { reason, timestamp: now() }));
                match log::head(table, &self.channel).await {
                    Ok(head) => {
                        self.epoch = head.epoch;
                        self.after = head.seq;
                    }
                    Err(e) => tracing::warn!(channel = %self.channel, error = %e, "sse: head unreadable"),
                }
            }
            // Transient: the next poll tries again.
            Err(e) => tracing::warn!(channel = %self.channel, error = %e, "sse: log unreadable"),
        }
    }

    /// The next batch: what one wake-up (a poll, a heartbeat) found.
    async fn next(mut self) -> Option<(Vec<Message>, State)> {
        loop {
            if !self.queue.is_empty() {
                return Some((self.queue.drain(..).collect(), self));
            }
            let now_i = Instant::now();
            if now_i >= self.deadline {
                return None;
            }
            let wake = self.next_poll.min(self.next_heartbeat).min(self.deadline);
            tokio::time::sleep_until(wake).await;
            let now_i = Instant::now();
            if now_i >= self.next_poll {
                self.next_poll = now_i + Duration::from_millis(self.deps.config.sse_poll_ms);
                self.poll().await;
            }
            if now_i >= self.next_heartbeat {
                self.next_heartbeat = now_i + Duration::from_millis(self.deps.config.sse_heartbeat_ms);
                self.queue
                    .push_back(Message::notice(None, TripStatusMessage::Heartbeat { timestamp: now() }));
            }
        }
    }
}

/// Opens the stream of a trip for a party of it (organizer, driver, passenger with a
/// booking) or an admin. `last_event_id` is the SSE `Last-Event-ID`: the last seq seen.
pub async fn open(
    deps: &Deps,
    user: &Claims,
    trip_id: &TripId,
    last_event_id: Option<&str>,
) -> Result<BoxStream<'static, Vec<Message>>, TripError> {
    let last: Option<u64> = match last_event_id.map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            s.parse()
                .map_err(|_| TripError::Invalid("Last-Event-ID must be a sequence number".into()))?,
        ),
    };
    let table = deps.table.as_ref();
    load(table, trip_id).await?;
    if !may_follow(table, &user.sub, &user.roles, trip_id).await? {
        return Err(TripError::Forbidden(format!("not a party of trip {trip_id}")));
    }
    let mut current: Option<TripStatus> = None;
    let channel = Channel::Trip(trip_id.to_string());
    // Head, then status, then the log after the client's position: every status change is
    // written with its log entry (sequenced at the source), so the status at that position
    // is the first replayed update's `previousStatus`, or the status read when none is.
    // `connected` is then never newer than the updates it is followed by.
    let head = log::head(table, &channel).await?;
    let trip = load(table, trip_id).await?;
    let mut after = last.unwrap_or(head.seq);
    let mut replayed = Vec::new();
    if let Ok(Replay::Events { events, .. }) = log::replay(table, &channel, &head.epoch, after, PAGE).await {
        for (seq, event) in events {
            if let Some(msg) = status_update(seq, &event) {
                if let (true, TripStatusMessage::StatusUpdate { update, .. }) = (replayed.is_empty(), &msg) {
                    current = Some(update.previous_status);
                }
                replayed.push(Message::update(seq, msg));
            }
            after = seq;
        }
    }
    let seq = last.unwrap_or(head.seq).min(after);
    let connected = TripStatusMessage::Connected {
        trip_id: trip_id.to_string(),
        current_status: current.unwrap_or(trip.status),
        seq,
        timestamp: now(),
    };
    let mut queue = VecDeque::new();
    queue.push_back(Message::notice(Some(seq), connected));
    queue.extend(replayed);
    let start = Instant::now();
    let state = State {
        deps: deps.clone(),
        channel,
        epoch: head.epoch,
        after,
        queue,
        next_poll: start + Duration::from_millis(deps.config.sse_poll_ms),
        next_heartbeat: start + Duration::from_millis(deps.config.sse_heartbeat_ms),
        deadline: start + Duration::from_secs(deps.config.sse_max_secs),
    };
    tracing::info!(%trip_id, user = %user.sub, after, "sse stream opened");
    Ok(Box::pin(stream::unfold(state, State::next)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_status_updates_become_messages() {
        let e = json!({"id": "E1", "type": "trip.status.updated", "data": {"tripId": "T", "tripTitle": "To the lake", "previousStatus": "IN_PROGRESS", "newStatus": "DEPARTED", "originName": "A", "destName": "B", "updatedBy": "d1", "updatedAt": "2026-12-01T10:00:00Z"}});
        let m = serde_json::to_value(status_update(7, &e).unwrap()).unwrap();
        assert_eq!(
            (
                m["type"].as_str(),
                m["seq"].as_u64(),
                m["newStatus"].as_str(),
                m["eventId"].as_str()
            ),
            (Some("status_update"), Some(7), Some("DEPARTED"), Some("E1"))
        );
        assert_eq!(status_update(8, &json!({"type": "booking.confirmed", "data": {}})), None);
    }
}
