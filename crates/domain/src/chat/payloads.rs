//! The payloads (`data`) of the chat events that `crate::events::Event` names.

use super::model::ChatSettings;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `chat.message.rejected`: moderation refused a message; nothing was stored. Sent to the
/// sender's `user:{id}` channel only (the room never sees refused content).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageRejected {
    pub chat_id: String,
    pub sender_id: String,
    /// Why, for a machine: `blocked_term`.
    pub code: String,
    /// Why, for a person.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
    pub rejected_at: DateTime<Utc>,
}

/// `chat.typing.user` and `chat.typing.assistant` (priority `low`): an indicator went on
/// (until `expiresAt`, unless refreshed) or off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Typing {
    pub chat_id: String,
    pub user_id: String,
    pub display_name: String,
    pub is_typing: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// `chat.completion.updated`: one participant completed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompletionUpdated {
    pub chat_id: String,
    pub user_id: String,
    pub completed: bool,
    pub completed_count: u32,
    pub participant_count: u32,
    pub completed_at: DateTime<Utc>,
}

/// `chat.completion.ready`: every participant has completed (announced once per chat).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompletionReady {
    pub chat_id: String,
    pub participant_count: u32,
    pub participants: Vec<String>,
    pub ready_at: DateTime<Utc>,
}

/// `chat.settings.updated`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsUpdated {
    pub chat_id: String,
    pub settings: ChatSettings,
    /// The settings that changed (`turnMode`, `assistantEnabled`, `extensions`, `blocklist`).
    pub changed: Vec<String>,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

/// `chat.ai.requested`: the assistant should answer (its EventBridge rule invokes it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AiRequested {
    pub chat_id: String,
    pub request_id: String,
    /// The message it answers.
    pub message_id: String,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
}

/// `chat.ai.started`: the assistant is working on a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AiStarted {
    pub chat_id: String,
    pub request_id: String,
    pub provider: String,
    pub model: String,
    pub started_at: DateTime<Utc>,
}

/// `chat.ai.completed`: the reply is stored as message `messageId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AiCompleted {
    pub chat_id: String,
    pub request_id: String,
    pub message_id: String,
    pub provider: String,
    pub model: String,
    /// How long the provider took.
    pub response_time_ms: u64,
    /// From the request to the stored reply.
    pub total_time_ms: u64,
    pub completed_at: DateTime<Utc>,
}

/// `chat.ai.failed`: no reply; the turn moved on to the next user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AiFailed {
    pub chat_id: String,
    pub request_id: String,
    pub provider: String,
    /// `provider_error`, `timeout`, `empty_reply`, `turn_moved_on`.
    pub code: String,
    pub error: String,
    pub response_time_ms: u64,
    pub failed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatCreated {
    pub chat_id: String,
    pub title: String,
    pub created_by: String,
    pub settings: ChatSettings,
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

/// A member of a chat, as `chat.participant.joined` announces them and the chat lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub chat_id: String,
    pub user_id: String,
    pub display_name: String,
    pub role: String,
    pub joined_at: DateTime<Utc>,
}
