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

pub use crate::chat::payloads::{ChatCreated, MessageStored, TurnChanged};

/// Defines the catalogue once: the enum of typed payloads, its wire names, the list of
/// event types, and each event's subject (an exhaustive match: a new event must say
/// which chat, trip or user it is about, or the build fails).
macro_rules! catalogue {
    ($($name:literal => $variant:ident($payload:ty) |$e:ident| $subject:expr,)*) => {
        /// The typed payloads of the catalogue; `Envelope::new` turns one into an envelope.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(tag = "type", content = "data")]
        pub enum Event {
            $(#[serde(rename = $name)] $variant($payload),)*
        }

        /// Every event type of the catalogue, from the enum.
        pub const EVENT_TYPES: &[&str] = &[$($name),*];

        impl Event {
            /// The event's type on the wire (`chat.message.stored`).
            pub fn event_type(&self) -> &'static str {
                match self {
                    $(Event::$variant(_) => $name,)*
                }
            }

            /// The chat, trip or user the event is about: the channels it goes to.
            pub fn subject(&self) -> Subject {
                match self {
                    $(Event::$variant($e) => $subject,)*
                }
            }
        }
    };
}

catalogue! {
    // ---- chat (payloads in `crate::chat::payloads`)
    "chat.created" => ChatCreated(crate::chat::payloads::ChatCreated) |e| Subject::chat(&e.chat_id),
    "chat.participant.joined" => ParticipantJoined(crate::chat::payloads::Participant) |e| Subject::chat(&e.chat_id),
    "chat.message.stored" => MessageStored(crate::chat::payloads::MessageStored) |e| Subject::chat(&e.chat_id),
    "chat.turn.changed" => TurnChanged(crate::chat::payloads::TurnChanged) |e| Subject::chat(&e.chat_id),
    "chat.message.rejected" => MessageRejected(crate::chat::payloads::MessageRejected) |e| Subject::chat(&e.chat_id),
    "chat.typing.user" => TypingUser(crate::chat::payloads::Typing) |e| Subject::chat(&e.chat_id),
    "chat.typing.assistant" => TypingAssistant(crate::chat::payloads::Typing) |e| Subject::chat(&e.chat_id),
    "chat.completion.updated" => CompletionUpdated(crate::chat::payloads::CompletionUpdated) |e| Subject::chat(&e.chat_id),
    "chat.completion.ready" => CompletionReady(crate::chat::payloads::CompletionReady) |e| Subject::chat(&e.chat_id),
    "chat.settings.updated" => SettingsUpdated(crate::chat::payloads::SettingsUpdated) |e| Subject::chat(&e.chat_id),
    "chat.ai.requested" => AiRequested(crate::chat::payloads::AiRequested) |e| Subject::chat(&e.chat_id),
    "chat.ai.started" => AiStarted(crate::chat::payloads::AiStarted) |e| Subject::chat(&e.chat_id),
    "chat.ai.completed" => AiCompleted(crate::chat::payloads::AiCompleted) |e| Subject::chat(&e.chat_id),
    "chat.ai.failed" => AiFailed(crate::chat::payloads::AiFailed) |e| Subject::chat(&e.chat_id),
    // ---- ride-sharing (payloads in `crate::trips::payloads`)
    "trip.created" => TripCreated(crate::trips::payloads::TripCreated) |e| Subject::trip(&e.trip_id),
    "trip.status.updated" => TripStatusUpdated(crate::trips::payloads::TripStatusUpdated) |e| Subject::trip(&e.trip_id),
    "trip.offer.created" => TripOfferCreated(crate::trips::payloads::TripOfferCreated) |e| Subject::trip(&e.trip_id),
    "booking.confirmed" => BookingConfirmed(crate::trips::payloads::BookingConfirmed) |e| Subject::trip(&e.trip_id),
    "booking.cancelled" => BookingCancelled(crate::trips::payloads::BookingCancelled) |e| Subject::trip(&e.trip_id),
    // ---- connections
    "connection.opened" => ConnectionOpened(ConnectionChanged) |_e| Subject::default(),
    "connection.closed" => ConnectionClosed(ConnectionChanged) |_e| Subject::default(),
    // ---- presence (payloads in `crate::presence`): about the channel's chat or trip
    "presence.joined" => PresenceJoined(crate::presence::payloads::PresenceChanged) |e| Subject::of_channel(&e.channel),
    "presence.left" => PresenceLeft(crate::presence::payloads::PresenceChanged) |e| Subject::of_channel(&e.channel),
    "channel.occupied" => ChannelOccupied(crate::presence::payloads::ChannelLifecycle) |_e| Subject::default(),
    "channel.vacated" => ChannelVacated(crate::presence::payloads::ChannelLifecycle) |_e| Subject::default(),
}

/// What an event is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub chat_id: Option<String>,
    pub trip_id: Option<String>,
    pub user_id: Option<String>,
}

impl Subject {
    /// A channel's chat or trip (`chat:{id}`, `trip:{id}`), from its name.
    fn of_channel(channel: &str) -> Self {
        match channel.split_once(':') {
            Some(("chat", id)) => Self::chat(id),
            Some(("trip", id)) => Self::trip(id),
            _ => Self::default(),
        }
    }
    fn chat(id: &str) -> Self {
        Self {
            chat_id: Some(id.to_string()),
            ..Self::default()
        }
    }
    fn trip(id: &str) -> Self {
        Self {
            trip_id: Some(id.to_string()),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionChanged {
    pub connection_id: String,
    pub user_id: String,
}

/// The bounded context of an event type, its EventBridge `Source` suffix:
/// `chat.*` → chat, `trip.*` and `booking.*` → trips, `connection.*` → connections,
/// `presence.*` and `channel.*` → presence.
pub fn context_of(event_type: &str) -> &'static str {
    match event_type.split('.').next() {
        Some("chat") => "chat",
        Some("trip") | Some("booking") => "trips",
        Some("connection") => "connections",
        Some("presence") | Some("channel") => "presence",
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
        let event_type = event.event_type().to_string();
        let Subject { chat_id, trip_id, user_id } = event.subject();
        // The payload alone (adjacently tagged: `{"type", "data"}`), never failing: every
        // payload is plain data.
        let data = match serde_json::to_value(&event) {
            Ok(Value::Object(mut m)) => m.remove("data").unwrap_or(Value::Null),
            _ => Value::Null,
        };
        let source = format!("realtime.{}", context_of(&event_type));
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
            user_id,
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
        let unique: std::collections::BTreeSet<_> = EVENT_TYPES.iter().collect();
        assert_eq!(unique.len(), EVENT_TYPES.len());
    }

    #[test]
    fn the_wire_name_and_the_subject_come_from_the_variant() {
        let e = Event::TripCreated(crate::trips::payloads::TripCreated {
            trip_id: "T1".into(),
            trip_type: crate::trips::TripType::Private,
            title: "t".into(),
            organizer_id: "o".into(),
            status: crate::trips::TripStatus::Draft,
            departure_time: Utc::now(),
            total_seats: 3,
        });
        assert_eq!(serde_json::to_value(&e).unwrap()["type"], e.event_type());
        let env = Envelope::new(e, &Cause::default());
        assert_eq!(
            (env.trip_id.as_deref(), env.chat_id.as_deref(), env.source.as_str()),
            (Some("T1"), None, "realtime.trips")
        );
    }
}
