//! The chat's value types: turn modes, settings, limits and the requests that create,
//! join and write to a chat. A leaf: it knows only the extensions' names and the
//! moderation's term rules.

use super::error::ChatError;
use super::extensions;
use super::moderation;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TurnMode {
    /// Anyone speaks at any time (the assistant, when on, answers every user message).
    #[default]
    Free,
    /// Users speak in join order (then the assistant, when on), round after round.
    RoundRobin,
    /// Each user message is answered by the assistant; users take turns in join order.
    UserThenAssistant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ChatSettings {
    pub turn_mode: TurnMode,
    pub assistant_enabled: bool,
    /// The extensions enabled for this chat: `analytics`, `moderation`.
    pub extensions: Vec<String>,
    /// Terms the moderation extension refuses (case-insensitive, whole words).
    pub blocklist: Vec<String>,
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            turn_mode: TurnMode::Free,
            assistant_enabled: false,
            extensions: Vec::new(),
            blocklist: Vec::new(),
        }
    }
}

impl ChatSettings {
    /// Checks and normalizes settings from a client (known extensions, once each, in a
    /// stable order; bounded blocklist; a turn mode the assistant setting can serve).
    pub fn validated(mut self) -> Result<Self, ChatError> {
        let mut exts = Vec::new();
        for e in &self.extensions {
            let ext = extensions::Extension::parse(e).ok_or_else(|| {
                ChatError::Invalid(format!(
                    "unknown extension {:?}: known are {}",
                    e.chars().take(40).collect::<String>(),
                    extensions::Extension::NAMES.join(", ")
                ))
            })?;
            if !exts.contains(&ext) {
                exts.push(ext);
            }
        }
        exts.sort();
        self.extensions = exts.iter().map(|e| e.name().to_string()).collect();
        self.blocklist = moderation::normalize_terms(self.blocklist.iter().map(String::as_str)).map_err(ChatError::Invalid)?;
        if self.turn_mode == TurnMode::UserThenAssistant && !self.assistant_enabled {
            return Err(ChatError::Invalid(
                "turnMode user_then_assistant needs assistantEnabled: true".into(),
            ));
        }
        Ok(self)
    }

    pub fn has(&self, ext: extensions::Extension) -> bool {
        self.extensions.iter().any(|e| e == ext.name())
    }
}

/// At most this many people in one chat (it keeps the session Query to one page).
pub const MAX_PARTICIPANTS: i64 = 50;
pub const MAX_TITLE: usize = 200;
pub const MAX_NAME: usize = 80;
pub const MAX_CONTENT: usize = 4000;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateChat {
    #[schemars(length(min = 1, max = MAX_TITLE))]
    pub title: String,
    #[serde(default)]
    pub settings: Option<ChatSettings>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinChat {
    #[schemars(length(min = 1, max = MAX_NAME))]
    pub display_name: String,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendMessage {
    /// At most 4,000 characters (trimmed).
    #[schemars(length(min = 1, max = MAX_CONTENT))]
    pub content: String,
    #[serde(default)]
    pub client_message_id: Option<String>,
}

/// Timestamps as stored: RFC 3339, UTC, fixed width (they sort as they compare).
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}
