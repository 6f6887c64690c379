//! The typed event envelope and the event catalogue (API.md "Event envelope").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What happens to an event: `low` is pushed but neither logged nor replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Critical,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// Every domain event, as published to EventBridge (`Detail`) and pushed to clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub version: u32,
    pub occurred_at: DateTime<Utc>,
    pub correlation_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    #[serde(default)]
    pub priority: Priority,
    /// EventBridge `Source`: `realtime.<context>`.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trip_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    #[serde(default)]
    pub data: Value,
    /// Where the event's source sequenced it: its seq on each logged channel. Set on the
    /// bus only (the relay publishes it; the fan-out pushes with it and never sequences
    /// again); pushed and logged events carry their seq in the frame or entry instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequence: Vec<Position>,
}

/// An event's place in one channel's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Position {
    pub channel: String,
    pub epoch: String,
    pub seq: u64,
}

/// The typed payloads of the catalogue; `Envelope::new` turns one into an envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    // ---- chat (payloads in this file or in `crate::chat`)
    #[serde(rename = "chat.created")]
    ChatCreated(ChatCreated),
    #[serde(rename = "chat.participant.joined")]
    ParticipantJoined(ParticipantJoined),
    #[serde(rename = "chat.message.stored")]
    MessageStored(MessageStored),
    #[serde(rename = "chat.turn.changed")]
    TurnChanged(TurnChanged),
    #[serde(rename = "chat.message.rejected")]
    MessageRejected(crate::chat::MessageRejected),
    #[serde(rename = "chat.typing.user")]
    TypingUser(crate::chat::Typing),
    #[serde(rename = "chat.typing.assistant")]
    TypingAssistant(crate::chat::Typing),
    #[serde(rename = "chat.completion.updated")]
    CompletionUpdated(crate::chat::CompletionUpdated),
    #[serde(rename = "chat.completion.ready")]
    CompletionReady(crate::chat::CompletionReady),
    #[serde(rename = "chat.settings.updated")]
    SettingsUpdated(crate::chat::SettingsUpdated),
    #[serde(rename = "chat.ai.requested")]
    AiRequested(crate::chat::AiRequested),
    #[serde(rename = "chat.ai.started")]
    AiStarted(crate::chat::AiStarted),
    #[serde(rename = "chat.ai.completed")]
    AiCompleted(crate::chat::AiCompleted),
    #[serde(rename = "chat.ai.failed")]
    AiFailed(crate::chat::AiFailed),
    // ---- ride-sharing (payloads in `crate::trips`)
    #[serde(rename = "trip.created")]
    TripCreated(crate::trips::TripCreated),
    #[serde(rename = "trip.status.updated")]
    TripStatusUpdated(crate::trips::TripStatusUpdated),
    #[serde(rename = "trip.offer.created")]
    TripOfferCreated(crate::trips::TripOfferCreated),
    #[serde(rename = "booking.confirmed")]
    BookingConfirmed(crate::trips::BookingConfirmed),
    #[serde(rename = "booking.cancelled")]
    BookingCancelled(crate::trips::BookingCancelled),
    // ---- connections
    #[serde(rename = "connection.opened")]
    ConnectionOpened(ConnectionChanged),
    #[serde(rename = "connection.closed")]
    ConnectionClosed(ConnectionChanged),
}

/// Every event type of API.md's catalogue (some are emitted by later features).
pub const EVENT_TYPES: &[&str] = &[
    "chat.created",
    "chat.participant.joined",
    "chat.participant.left",
    "chat.message.stored",
    "chat.message.rejected",
    "chat.turn.changed",
    "chat.typing.user",
    "chat.typing.assistant",
    "chat.completion.updated",
    "chat.completion.ready",
    "chat.settings.updated",
    "chat.state.updated",
    "chat.ai.requested",
    "chat.ai.started",
    "chat.ai.completed",
    "chat.ai.failed",
    "trip.created",
    "trip.status.updated",
    "trip.offer.created",
    "booking.confirmed",
    "booking.cancelled",
    "connection.opened",
    "connection.closed",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatCreated {
    pub chat_id: String,
    pub title: String,
    pub created_by: String,
    pub settings: crate::chat::ChatSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantJoined {
    pub chat_id: String,
    pub user_id: String,
    pub display_name: String,
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageStored {
    pub id: String,
    pub chat_id: String,
    pub sender_id: String,
    pub sender_role: String,
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnChanged {
    pub chat_id: String,
    pub next_user_id: Option<String>,
    pub next_role: Option<String>,
    pub timestamp: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionChanged {
    pub connection_id: String,
    pub user_id: String,
}

/// The bounded context of an event type, its EventBridge `Source` suffix:
/// `chat.*` → chat, `trip.*` and `booking.*` → trips, `connection.*` → connections.
pub fn context_of(event_type: &str) -> &'static str {
    match event_type.split('.').next() {
        Some("chat") => "chat",
        Some("trip") | Some("booking") => "trips",
        Some("connection") => "connections",
        _ => "other",
    }
}

/// Who caused an event and in answer to what: carried from request to event.
#[derive(Debug, Clone, Default)]
pub struct Cause {
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub actor: Option<Actor>,
}

impl Envelope {
    /// A new envelope (fresh ULID, now) for a typed event.
    pub fn new(event: Event, cause: &Cause) -> Self {
        let (event_type, data) = match serde_json::to_value(&event) {
            Ok(Value::Object(mut m)) => (
                m.remove("type").and_then(|t| t.as_str().map(str::to_string)).unwrap_or_default(),
                m.remove("data").unwrap_or(Value::Null),
            ),
            _ => (String::new(), Value::Null),
        };
        let source = format!("realtime.{}", context_of(&event_type));
        let chat_id = data.get("chatId").and_then(Value::as_str).map(str::to_string);
        let trip_id = data.get("tripId").and_then(Value::as_str).map(str::to_string);
        Envelope {
            id: ulid::Ulid::new().to_string(),
            event_type,
            version: 1,
            occurred_at: Utc::now(),
            correlation_id: if cause.correlation_id.is_empty() {
                ulid::Ulid::new().to_string()
            } else {
                cause.correlation_id.clone()
            },
            causation_id: cause.causation_id.clone(),
            priority: Priority::Normal,
            source,
            chat_id,
            trip_id,
            user_id: None,
            actor: cause.actor.clone(),
            data,
            sequence: Vec::new(),
        }
    }

    pub fn with_priority(mut self, p: Priority) -> Self {
        self.priority = p;
        self
    }

    pub fn for_user(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// The event's position on a channel, when its source sequenced it there.
    pub fn position(&self, channel: &str) -> Option<&Position> {
        self.sequence.iter().find(|p| p.channel == channel)
    }

    /// The typed payload, when the type is one this build knows.
    pub fn typed(&self) -> Option<Event> {
        serde_json::from_value(serde_json::json!({"type": self.event_type, "data": self.data})).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_in_camel_case() {
        let ev = Event::TurnChanged(TurnChanged {
            chat_id: "C1".into(),
            next_user_id: Some("u2".into()),
            next_role: None,
            timestamp: Utc::now(),
        });
        let env = Envelope::new(ev.clone(), &Cause::default());
        assert_eq!(env.event_type, "chat.turn.changed");
        assert_eq!(env.source, "realtime.chat");
        assert_eq!(env.chat_id.as_deref(), Some("C1"));
        let json = serde_json::to_value(&env).unwrap();
        assert!(json.get("occurredAt").is_some() && json.get("correlationId").is_some());
        assert_eq!(json["data"]["nextUserId"], "u2");
        let back: Envelope = serde_json::from_value(json).unwrap();
        assert_eq!(back, env);
        assert_eq!(back.typed(), Some(ev));
    }

    #[test]
    fn every_typed_event_is_in_the_catalogue() {
        let env = Envelope::new(
            Event::ConnectionOpened(ConnectionChanged {
                connection_id: "c".into(),
                user_id: "u".into(),
            }),
            &Cause::default(),
        );
        assert!(EVENT_TYPES.contains(&env.event_type.as_str()));
    }
}
