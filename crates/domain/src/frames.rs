//! WebSocket frames (API.md "WebSocket"): what clients send, what the server pushes.

use crate::events::Envelope;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// API Gateway's limits: a frame is at most 32 KB, a message at most 128 KB.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResumeFrom {
    pub epoch: String,
    pub after: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub channel: String,
    /// Event-type patterns with `*` (one segment) and `**` (any); none means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// An EventBridge content pattern over the event's `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<ResumeFrom>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Unsubscribe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub channel: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Replay a channel's events after `after` (from the channel log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resume {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub channel: String,
    pub epoch: String,
    pub after: u64,
}

/// Who is on a channel: answered with a `presence` frame, authorized like `subscribe`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub channel: String,
}

/// Client → server, routed on `action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum ClientFrame {
    Subscribe(Subscribe),
    Unsubscribe(Unsubscribe),
    Resume(Resume),
    Ping(Ping),
    /// `{"action":"typing","chatId","isTyping"}`: the chat domain's typing indicator.
    Typing(crate::chat::TypingFrame),
    Presence(PresenceQuery),
}

/// Server → client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerFrame {
    Subscribed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        channel: String,
        epoch: String,
        seq: u64,
    },
    Unsubscribed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        channel: String,
    },
    Event {
        channel: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<String>,
        event: Box<Envelope>,
    },
    /// The end of a replay: `seq` is the last event replayed (or the head when
    /// nothing was missed); with `more`, resume again from `seq`.
    Resumed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        channel: String,
        epoch: String,
        seq: u64,
        replayed: u64,
        more: bool,
    },
    Resync {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        channel: String,
        reason: String,
    },
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        code: String,
        message: String,
    },
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// The answer to `presence`: the channel's members (users) and occupancy.
    Presence {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        channel: String,
        members: Vec<crate::presence::payloads::Member>,
        occupancy: u32,
    },
}

impl ServerFrame {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The `id` of a frame, read leniently so that even a frame that fails validation
/// gets an error answer its sender can correlate.
pub fn request_id(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    v.get("id").and_then(Value::as_str).map(|s| s.chars().take(64).collect())
}

/// Matches an event type against a pattern: `*` is one segment, `**` any number.
/// Dynamic programming over (pattern, type) segments: linear in their product,
/// whatever the pattern (a naive backtracking match is exponential in `**`s).
pub fn type_matches(pattern: &str, event_type: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let t: Vec<&str> = event_type.split('.').collect();
    // row[j]: the pattern's first i segments match the type's first j segments.
    let mut row = vec![false; t.len() + 1];
    row[0] = true;
    for seg in &p {
        let mut next = vec![false; t.len() + 1];
        if *seg == "**" {
            // `**` takes zero or more segments: reachable from any earlier match.
            let mut any = false;
            for j in 0..=t.len() {
                any |= row[j];
                next[j] = any;
            }
        } else {
            for j in 1..=t.len() {
                next[j] = row[j - 1] && (*seg == "*" || *seg == t[j - 1]);
            }
        }
        row = next;
    }
    row[t.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse_by_action() {
        let f: ClientFrame = serde_json::from_str(
            r#"{"action":"subscribe","id":"r1","channel":"chat:C1","events":["chat.*"],"resume":{"epoch":"E","after":41}}"#,
        )
        .unwrap();
        let ClientFrame::Subscribe(s) = f else { panic!("not a subscribe") };
        assert_eq!((s.channel.as_str(), s.resume.unwrap().after), ("chat:C1", 41));
        assert!(serde_json::from_str::<ClientFrame>(r#"{"action":"subscribe"}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"action":"nope"}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"action":"ping","id":"r","extra":1}"#).is_err());
    }

    #[test]
    fn server_frames_are_tagged_by_type() {
        let f = ServerFrame::Error {
            id: Some("r1".into()),
            code: "forbidden".into(),
            message: "no".into(),
        };
        assert_eq!(f.to_json(), r#"{"type":"error","id":"r1","code":"forbidden","message":"no"}"#);
        assert_eq!(ServerFrame::Pong { id: None }.to_json(), r#"{"type":"pong"}"#);
    }

    #[test]
    fn wildcards_match_like_eventemitter2() {
        assert!(type_matches("chat.*", "chat.created"));
        assert!(!type_matches("chat.*", "chat.message.stored"));
        assert!(type_matches("chat.**", "chat.message.stored"));
        assert!(type_matches("**", "trip.status.updated"));
        assert!(type_matches("*.message.*", "chat.message.stored"));
        assert!(type_matches("chat.message.stored", "chat.message.stored"));
        assert!(!type_matches("trip.*", "chat.created"));
        assert!(!type_matches("chat.*.x", "chat.created"));
    }

    #[test]
    fn request_ids_are_read_leniently() {
        assert_eq!(request_id(r#"{"action":"x","id":"r9"}"#), Some("r9".into()));
        assert_eq!(request_id("not json"), None);
    }
}
