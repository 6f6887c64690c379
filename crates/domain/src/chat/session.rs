//! The chat session in one DynamoDB Query, and the state view built from it.
//!
//! Key layout of `CHAT#{id}` (sort keys, ascending):
//!
//! ```text
//! CMID#{sender}#{clientMessageId}   idempotency markers           (outside the session range)
//! MSG#{time}#{messageId}            the messages, oldest first
//! S#COMPLETION                      completed count, readyAt
//! S#DONE#{user}                     who completed
//! S#MEMBER#{user}                   the participants
//! S#META                            title, settings, member count
//! S#TURN                            the turn
//! S#TYPING#{user}                   typing indicators (TTL)
//! ```
//!
//! Every session item sorts after every message ("S" > "M"), so a Query from the end of the
//! partition backwards (`ScanIndexForward=false`, `sk >= "MSG#"`) returns first the whole
//! session, then the newest messages, newest first. The session is bounded (at most
//! [`MAX_PARTICIPANTS`] people, each with one member, typing and done item), so a limit of
//! [`SESSION_ITEMS_MAX`] + the messages wanted reads it all in one page without ever paging
//! through the history. We chose this over a second "recent messages" item set because that
//! set would be one more item every send must rewrite (a hot item, a second copy of each
//! message) while the sort order gives the same answer for free. Typing items carry a TTL:
//! the adapters drop expired items from every read (DynamoDB deletes them late), so an
//! indicator nobody refreshed is not reported.

use super::error::ChatError;
use super::turns::{Turn, ASSISTANT_ID, ROLE_ASSISTANT};
use super::{ChatSettings, Participant, MAX_PARTICIPANTS};
use crate::auth::Claims;
use crate::deps::Deps;
use crate::events::MessageStored;
use crate::ids::ChatId;
use crate::keys;
use crate::ports::{Item, Query, SkCond};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The most session items a chat can have: meta, turn, completion, and per participant a
/// member, a typing and a done item (plus the assistant's typing item).
pub const SESSION_ITEMS_MAX: u32 = 3 + 3 * MAX_PARTICIPANTS as u32 + 1;
/// The recent messages the state endpoint returns.
pub const RECENT_MESSAGES: u32 = 50;

/// The chat's `S#META` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    pub title: String,
    pub created_by: String,
    pub created_at: Option<DateTime<Utc>>,
    pub settings: ChatSettings,
    pub settings_version: i64,
    pub member_count: i64,
    /// When each enabled extension was last switched on.
    pub extensions_since: BTreeMap<String, DateTime<Utc>>,
}

impl Meta {
    /// Whether `ext` was on for this chat when an event occurred at `at`.
    pub fn extension_on(&self, ext: super::extensions::Extension, at: DateTime<Utc>) -> bool {
        self.settings.has(ext) && self.extensions_since.get(ext.name()).is_none_or(|since| *since <= at)
    }

    pub fn from_item(item: &Item) -> Self {
        Self {
            title: item.str("title").unwrap_or_default().to_string(),
            created_by: item.str("createdBy").unwrap_or_default().to_string(),
            created_at: item.str("createdAt").and_then(|t| t.parse().ok()),
            settings: item
                .get("settings")
                .cloned()
                .and_then(|s| serde_json::from_value(s).ok())
                .unwrap_or_default(),
            settings_version: item.i64("settingsVersion").unwrap_or(0),
            member_count: item.i64("memberCount").unwrap_or(0),
            extensions_since: item
                .get("extensionsSince")
                .and_then(Value::as_object)
                .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.parse().ok()?))).collect())
                .unwrap_or_default(),
        }
    }
}

/// A typing indicator that has not expired.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TypingEntry {
    pub user_id: String,
    pub display_name: String,
    pub role: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Done {
    pub user_id: String,
    pub completed_at: DateTime<Utc>,
}

/// Everything of one chat but its older messages.
#[derive(Debug, Clone)]
pub struct Session {
    pub chat_id: String,
    pub meta: Meta,
    /// The people, in join order.
    pub members: Vec<Participant>,
    pub turn: Turn,
    /// Whether `S#TURN` exists (a write of the turn is conditioned on it).
    pub turn_stored: bool,
    pub typing: Vec<TypingEntry>,
    pub done: Vec<Done>,
    /// The count on `S#COMPLETION` and when the chat became ready.
    pub completed_count: i64,
    pub ready_at: Option<DateTime<Utc>>,
    /// The newest messages, oldest first (only when asked for).
    pub recent: Vec<MessageStored>,
    /// Older messages exist beyond `recent`.
    pub more_messages: bool,
}

impl Session {
    pub fn member(&self, user_id: &str) -> Option<&Participant> {
        self.members.iter().find(|m| m.user_id == user_id)
    }
    pub fn typing_of(&self, user_id: &str) -> Option<&TypingEntry> {
        self.typing.iter().find(|t| t.user_id == user_id)
    }
    pub fn has_completed(&self, user_id: &str) -> bool {
        self.done.iter().any(|d| d.user_id == user_id)
    }
}

pub(crate) fn participant_of(i: &Item) -> Participant {
    Participant {
        chat_id: i.pk.strip_prefix("CHAT#").unwrap_or_default().to_string(),
        user_id: i.str("userId").unwrap_or_default().to_string(),
        display_name: i.str("displayName").unwrap_or_default().to_string(),
        role: i.str("role").unwrap_or_default().to_string(),
        joined_at: i.str("joinedAt").and_then(|t| t.parse().ok()).unwrap_or_default(),
    }
}

pub(crate) fn message_of(item: &Item) -> Option<MessageStored> {
    serde_json::from_value(Value::Object(item.attrs.clone())).ok()
}

/// Reads a session in one Query: the session items and, when `recent > 0`, the newest
/// `recent` messages. None when the chat does not exist.
pub async fn load(deps: &Deps, chat_id: &str, recent: u32) -> Result<Option<Session>, ChatError> {
    let pk = keys::chat(chat_id);
    let mut query = if recent == 0 {
        Query::new(pk).begins_with(keys::SESSION_PREFIX)
    } else {
        Query::new(pk).sk(SkCond::Ge(keys::MSG_PREFIX.into())).backward()
    };
    // One more message than asked says whether older ones exist.
    query = query.limit(SESSION_ITEMS_MAX + recent + 1);
    let mut items = Vec::new();
    let mut more = false;
    loop {
        let page = deps.table.query(query.clone()).await?;
        let reached_messages = page.items.iter().any(|i| i.sk.starts_with(keys::MSG_PREFIX));
        items.extend(page.items);
        match page.cursor {
            // Never taken while the participant cap holds: the session fits in one page.
            Some(c) if !reached_messages && recent > 0 => query.cursor = Some(c),
            Some(c) if recent == 0 => query.cursor = Some(c),
            Some(_) => {
                more = true;
                break;
            }
            None => break,
        }
    }
    let mut meta = None;
    let (mut members, mut typing, mut done, mut messages) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut turn, mut completed_count, mut ready_at) = (None, 0, None);
    for item in &items {
        let sk = item.sk.as_str();
        if sk == keys::CHAT_META {
            meta = Some(Meta::from_item(item));
        } else if sk == keys::TURN {
            turn = Turn::from_item(item);
        } else if sk == keys::COMPLETION {
            completed_count = item.i64("count").unwrap_or(0);
            ready_at = item.str("readyAt").and_then(|t| t.parse().ok());
        } else if sk.starts_with(&keys::member("")) {
            members.push(participant_of(item));
        } else if sk.starts_with(&keys::typing("")) {
            if let Some(expires_at) = item.str("expiresAt").and_then(|t| t.parse().ok()) {
                typing.push(TypingEntry {
                    user_id: item.str("userId").unwrap_or_default().to_string(),
                    display_name: item.str("displayName").unwrap_or_default().to_string(),
                    role: item.str("role").unwrap_or_default().to_string(),
                    expires_at,
                });
            }
        } else if sk.starts_with(&keys::done("")) {
            done.push(Done {
                user_id: item.str("userId").unwrap_or_default().to_string(),
                completed_at: item.str("completedAt").and_then(|t| t.parse().ok()).unwrap_or_default(),
            });
        } else if sk.starts_with(keys::MSG_PREFIX) {
            messages.extend(message_of(item));
        }
    }
    let Some(meta) = meta else { return Ok(None) };
    if messages.len() > recent as usize {
        messages.truncate(recent as usize);
        more = true;
    }
    messages.reverse();
    members.sort_by(|a, b| a.joined_at.cmp(&b.joined_at).then_with(|| a.user_id.cmp(&b.user_id)));
    let turn_stored = turn.is_some();
    let turn = turn.unwrap_or_else(|| Turn::initial(meta.settings.turn_mode, 0, meta.created_at.unwrap_or_default()));
    Ok(Some(Session {
        chat_id: chat_id.to_string(),
        meta,
        members,
        turn,
        turn_stored,
        typing,
        done,
        completed_count,
        ready_at,
        recent: messages,
        more_messages: more,
    }))
}

/// A session that exists, else 404.
pub async fn require(deps: &Deps, chat_id: &str, recent: u32) -> Result<Session, ChatError> {
    load(deps, chat_id, recent)
        .await?
        .ok_or_else(|| ChatError::NotFound(format!("chat {chat_id} not found")))
}

// ---------------------------------------------------------------- the state view

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateParticipant {
    #[serde(flatten)]
    pub participant: Participant,
    pub completed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnView {
    pub mode: super::TurnMode,
    pub next_user_id: Option<String>,
    pub next_role: Option<String>,
    pub since: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompletionView {
    pub completed: Vec<String>,
    pub completed_count: u32,
    pub participant_count: u32,
    pub ready: bool,
    pub ready_at: Option<DateTime<Utc>>,
}

/// `GET /api/chat/{chatId}/state`: the whole session in one answer.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatState {
    pub chat_id: String,
    pub title: String,
    pub created_by: String,
    pub settings: ChatSettings,
    /// The people in join order, then the assistant when it is on.
    pub participants: Vec<StateParticipant>,
    pub turn: TurnView,
    /// The newest messages, oldest first.
    pub recent_messages: Vec<MessageStored>,
    /// Older messages exist: page them with `GET .../messages?before=`.
    pub more_messages: bool,
    /// Who is typing now (expired indicators are never reported).
    pub typing: Vec<TypingEntry>,
    pub completion: CompletionView,
    /// Who is online: the chat channel's presence (users with a connection subscribed to
    /// it, or back within the grace period), by user id.
    pub online: Vec<String>,
    pub generated_at: DateTime<Utc>,
}

impl ChatState {
    pub fn of(s: Session, assistant_name: &str) -> Self {
        let mut participants: Vec<StateParticipant> = s
            .members
            .iter()
            .map(|p| StateParticipant {
                participant: p.clone(),
                completed: s.has_completed(&p.user_id),
            })
            .collect();
        if s.meta.settings.assistant_enabled {
            participants.push(StateParticipant {
                participant: Participant {
                    chat_id: s.chat_id.clone(),
                    user_id: ASSISTANT_ID.into(),
                    display_name: assistant_name.into(),
                    role: ROLE_ASSISTANT.into(),
                    joined_at: s.meta.created_at.unwrap_or_default(),
                },
                completed: false,
            });
        }
        let completed: Vec<String> = s
            .members
            .iter()
            .filter(|p| s.has_completed(&p.user_id))
            .map(|p| p.user_id.clone())
            .collect();
        ChatState {
            chat_id: s.chat_id,
            title: s.meta.title,
            created_by: s.meta.created_by,
            turn: TurnView {
                mode: s.turn.mode,
                next_user_id: s.turn.next_user_id,
                next_role: s.turn.next_role,
                since: s.turn.since,
            },
            settings: s.meta.settings,
            participants,
            recent_messages: s.recent,
            more_messages: s.more_messages,
            typing: s.typing,
            completion: CompletionView {
                completed_count: completed.len() as u32,
                completed,
                participant_count: s.members.len() as u32,
                ready: s.ready_at.is_some(),
                ready_at: s.ready_at,
            },
            online: Vec::new(),
            generated_at: Utc::now(),
        }
    }
}

/// The state of a chat for a participant (or an admin).
pub async fn state(deps: &Deps, user: &Claims, chat_id: &ChatId) -> Result<ChatState, ChatError> {
    let s = require(deps, chat_id, RECENT_MESSAGES).await?;
    if s.member(&user.sub).is_none() && !user.roles.contains(&crate::auth::Role::Admin) {
        return Err(ChatError::Forbidden(format!("not a participant of chat {chat_id}")));
    }
    let mut state = ChatState::of(s, &deps.config.chat.assistant.name);
    // One more read: the channel's announced presence.
    let channel = crate::channels::Channel::Chat(chat_id.to_string());
    state.online = crate::presence::read(deps.table.as_ref(), &channel)
        .await?
        .members
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    Ok(state)
}
