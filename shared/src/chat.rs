//! The chat domain: settings, participants, messages, turns.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TurnMode {
    #[default]
    Free,
    RoundRobin,
    UserThenAssistant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChatSettings {
    pub turn_mode: TurnMode,
    pub assistant_enabled: bool,
    pub extensions: Vec<String>,
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self { turn_mode: TurnMode::Free, assistant_enabled: false, extensions: Vec::new() }
    }
}
