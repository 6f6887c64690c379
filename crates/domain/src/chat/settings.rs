//! Runtime settings: `PUT /api/chat/{chatId}/settings` changes the turn mode, the
//! assistant, the extensions and the blocklist of a running chat; every function reads
//! them per request or event, so a change applies at once, without a restart.
//!
//! A change of the turn mode or of the assistant restarts the turn (any user may open),
//! in the same transaction, so a turn never waits for an assistant that was switched off.

use super::error::ChatError;
use super::extensions::Extension;
use super::messages::{turn_event, turn_op};
use super::session::{self, ChatState};
use super::turns::Turn;
use super::{ts, ChatSettings, SettingsUpdated, TurnMode};
use crate::auth::{Claims, Role};
use crate::deps::Deps;
use crate::events::{Cause, Envelope, Event};
use crate::ids::ChatId;
use crate::keys;
use crate::outbox;
use crate::ports::{Condition, TableError, TxOp, Update};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Map, Value};

const ATTEMPTS: usize = 4;

/// The fields to change; the others keep their value.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsPatch {
    pub turn_mode: Option<TurnMode>,
    pub assistant_enabled: Option<bool>,
    pub extensions: Option<Vec<String>>,
    pub blocklist: Option<Vec<String>>,
}

impl SettingsPatch {
    fn apply(&self, s: &ChatSettings) -> ChatSettings {
        ChatSettings {
            turn_mode: self.turn_mode.unwrap_or(s.turn_mode),
            assistant_enabled: self.assistant_enabled.unwrap_or(s.assistant_enabled),
            extensions: self.extensions.clone().unwrap_or_else(|| s.extensions.clone()),
            blocklist: self.blocklist.clone().unwrap_or_else(|| s.blocklist.clone()),
        }
    }
}

fn changed(old: &ChatSettings, new: &ChatSettings) -> Vec<String> {
    let mut c = Vec::new();
    if old.turn_mode != new.turn_mode {
        c.push("turnMode".to_string());
    }
    if old.assistant_enabled != new.assistant_enabled {
        c.push("assistantEnabled".to_string());
    }
    if old.extensions != new.extensions {
        c.push("extensions".to_string());
    }
    if old.blocklist != new.blocklist {
        c.push("blocklist".to_string());
    }
    c
}

/// Changes a chat's settings (its organizer, or an admin) and answers the new state.
pub async fn update(deps: &Deps, user: &Claims, chat_id: &ChatId, patch: SettingsPatch, cause: &Cause) -> Result<ChatState, ChatError> {
    if patch.turn_mode.is_none() && patch.assistant_enabled.is_none() && patch.extensions.is_none() && patch.blocklist.is_none() {
        return Err(ChatError::Invalid(
            "name at least one of turnMode, assistantEnabled, extensions, blocklist".into(),
        ));
    }
    for attempt in 0..ATTEMPTS {
        let s = session::require(deps, chat_id, 0).await?;
        let organizer = s.member(&user.sub).is_some_and(|m| m.role == "organizer");
        if !organizer && !user.roles.contains(&Role::Admin) {
            return Err(ChatError::Forbidden("only the chat's organizer may change its settings".into()));
        }
        let old = s.meta.settings.clone();
        let new = patch.apply(&old).validated()?;
        let what = changed(&old, &new);
        if what.is_empty() {
            return session::state(deps, user, chat_id).await;
        }
        let now = Utc::now();
        // When each enabled extension was (last) switched on; see `session::Meta::extension_on`.
        let mut since = Map::new();
        for e in &new.extensions {
            let at = match s.meta.extensions_since.get(e) {
                Some(t) if old.extensions.contains(e) => *t,
                _ => now,
            };
            since.insert(e.clone(), ts(at).into());
        }
        let version = "settingsVersion".to_string();
        let mut ops = vec![TxOp::Update {
            pk: keys::chat(chat_id),
            sk: keys::CHAT_META.into(),
            updates: vec![
                Update::Set("settings".into(), serde_json::to_value(&new).unwrap_or_default()),
                Update::Set("extensionsSince".into(), Value::Object(since)),
                Update::Set(version.clone(), (s.meta.settings_version + 1).into()),
            ],
            cond: Some(if s.meta.settings_version == 0 {
                Condition::And(vec![Condition::Exists, Condition::AttrNotExists(version)])
            } else {
                Condition::Eq(version, s.meta.settings_version.into())
            }),
        }];
        let mut events = vec![Envelope::new(
            Event::SettingsUpdated(SettingsUpdated {
                chat_id: chat_id.into(),
                settings: new.clone(),
                changed: what,
                updated_by: user.sub.clone(),
                updated_at: now,
            }),
            cause,
        )];
        if old.turn_mode != new.turn_mode || old.assistant_enabled != new.assistant_enabled {
            let turn = Turn::initial(new.turn_mode, s.turn.version + 1, now);
            ops.push(turn_op(chat_id, &s, &turn));
            events.push(turn_event(chat_id, &turn, cause));
        }
        match outbox::commit(deps, ops, &events).await {
            Ok(_) => {
                if old.has(Extension::Analytics) != new.has(Extension::Analytics) {
                    tracing::info!(%chat_id, enabled = new.has(Extension::Analytics), "analytics switched");
                }
                return session::state(deps, user, chat_id).await;
            }
            Err(TableError::TransactionCanceled { .. }) | Err(TableError::Transient(_)) => {
                crate::retry::CONTENDED.sleep(attempt as u32).await
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ChatError::Busy("the settings kept changing; retry".into()))
}
