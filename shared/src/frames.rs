//! WebSocket frames (API.md "WebSocket"): what clients send, what the server pushes.

use crate::events::Envelope;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// API Gateway's limits: a frame is at most 32 KB, a message at most 128 KB.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumeFrom {
    pub epoch: String,
    pub after: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unsubscribe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub channel: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Client → server, routed on `action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum ClientFrame {
    Subscribe(Subscribe),
    Unsubscribe(Unsubscribe),
    Ping(Ping),
}

/// Server → client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    Resync {
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
pub fn type_matches(pattern: &str, event_type: &str) -> bool {
    fn go(p: &[&str], t: &[&str]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(&"**"), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(&"*"), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let t: Vec<&str> = event_type.split('.').collect();
    go(&p, &t)
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
