//! The chat domain: settings, participants, messages, turns, typing, completion, the
//! assistant and the extensions (analytics, moderation).
//!
//! Everything of one chat lives in the partition `CHAT#{id}` (see `crate::keys`): the
//! session items (`S#…`: meta, members, turn, typing, completion) sort after the messages
//! (`MSG#{time}#{id}`), so one Query reads the whole session ([`session`]).
//!
//! | module | what |
//! |---|---|
//! | [`session`] | the one-Query read of a session, and the state view |
//! | [`turns`] | the turn modes, as pure functions |
//! | [`messages`] | the message pipeline (validate, moderate, store, announce) and history |
//! | [`typing`] | typing indicators with a TTL |
//! | [`completion`] | per-participant completion, `ready` exactly once |
//! | [`settings`] | runtime settings: turn mode, assistant, extensions, blocklist |
//! | [`assistant`] | the assistant's providers and its answer to `chat.ai.requested` |
//! | [`extensions`], [`moderation`], [`analytics`] | the extensions |

pub mod analytics;
pub mod assistant;
pub mod completion;
pub mod extensions;
pub mod messages;
pub mod moderation;
pub mod payloads;
pub mod session;
pub mod settings;
pub mod turns;
pub mod typing;

pub use messages::{history, send, History};
pub use payloads::*;
pub use typing::TypingFrame;

use crate::auth::Claims;
use crate::deps::Deps;
use crate::error::ApiError;
use crate::events::{Cause, ChatCreated, Envelope, Event, ParticipantJoined};
use crate::keys;
use crate::outbox;
use crate::ports::{Condition, Item, TableError, TxOp, Update};
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
    pub fn validated(mut self) -> Result<Self, ApiError> {
        let mut exts = Vec::new();
        for e in &self.extensions {
            let ext = extensions::Extension::parse(e).ok_or_else(|| {
                ApiError::BadRequest(format!(
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
        self.blocklist = moderation::normalize_terms(self.blocklist.iter().map(String::as_str)).map_err(ApiError::BadRequest)?;
        if self.turn_mode == TurnMode::UserThenAssistant && !self.assistant_enabled {
            return Err(ApiError::BadRequest(
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub user_id: String,
    pub display_name: String,
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatView {
    pub chat_id: String,
    pub title: String,
    pub settings: ChatSettings,
    pub participants: Vec<Participant>,
}

pub(crate) use crate::error::text;

/// Timestamps as stored: RFC 3339, UTC, fixed width (they sort as they compare).
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The assistant speaks under this id; no person may use it.
fn refuse_reserved(user: &Claims) -> Result<(), ApiError> {
    if user.sub == turns::ASSISTANT_ID {
        return Err(ApiError::Forbidden(format!("the user id {:?} is reserved", turns::ASSISTANT_ID)));
    }
    Ok(())
}

fn member_item(chat_id: &str, p: &Participant) -> Item {
    Item::new(keys::chat(chat_id), keys::member(&p.user_id))
        .with("userId", p.user_id.as_str())
        .with("displayName", p.display_name.as_str())
        .with("role", p.role.as_str())
        .with("joinedAt", p.joined_at.to_rfc3339_opts(SecondsFormat::Millis, true))
        // The user's chats, by the index.
        .with(crate::ports::table::GSI1PK, keys::user(&p.user_id))
        .with(crate::ports::table::GSI1SK, keys::chat(chat_id))
}

pub async fn create(deps: &Deps, user: &Claims, req: CreateChat, cause: &Cause) -> Result<ChatView, ApiError> {
    refuse_reserved(user)?;
    let title = text("title", &req.title, MAX_TITLE)?;
    let settings = req.settings.unwrap_or_default().validated()?;
    let chat_id = ulid::Ulid::new().to_string();
    let now = Utc::now();
    let organizer = Participant {
        user_id: user.sub.clone(),
        display_name: user.display_name().to_string(),
        role: "organizer".into(),
        joined_at: now,
    };
    let since: serde_json::Map<String, serde_json::Value> = settings.extensions.iter().map(|e| (e.clone(), ts(now).into())).collect();
    let meta = Item::new(keys::chat(&chat_id), keys::CHAT_META)
        .with("chatId", chat_id.as_str())
        .with("title", title.as_str())
        .with("createdBy", user.sub.as_str())
        .with("createdAt", now.to_rfc3339_opts(SecondsFormat::Millis, true))
        .with("settings", serde_json::to_value(&settings).unwrap_or_default())
        .with("settingsVersion", 1)
        .with("extensionsSince", since)
        .with("memberCount", 1);
    let events = vec![
        Envelope::new(
            Event::ChatCreated(ChatCreated {
                chat_id: chat_id.clone(),
                title: title.clone(),
                created_by: user.sub.clone(),
                settings: settings.clone(),
            }),
            cause,
        ),
        joined_event(&chat_id, &organizer, cause),
    ];
    let mut ops = vec![
        TxOp::Put {
            item: meta,
            cond: Some(Condition::NotExists),
        },
        TxOp::Put {
            item: member_item(&chat_id, &organizer),
            cond: None,
        },
    ];
    if settings.turn_mode != TurnMode::Free {
        ops.push(TxOp::Put {
            item: turns::Turn::initial(settings.turn_mode, 1, now).item(&chat_id),
            cond: None,
        });
    }
    outbox::commit(deps, ops, &events).await?;
    Ok(ChatView {
        chat_id,
        title,
        settings,
        participants: vec![organizer],
    })
}

fn joined_event(chat_id: &str, p: &Participant, cause: &Cause) -> Envelope {
    Envelope::new(
        Event::ParticipantJoined(ParticipantJoined {
            chat_id: chat_id.into(),
            user_id: p.user_id.clone(),
            display_name: p.display_name.clone(),
            role: p.role.clone(),
            joined_at: p.joined_at,
        }),
        cause,
    )
}

/// Joins the caller; joining twice is harmless and announces nothing the second time.
/// A chat holds at most [`MAX_PARTICIPANTS`] (409 `chat_full`).
pub async fn join(deps: &Deps, user: &Claims, chat_id: &str, req: JoinChat, cause: &Cause) -> Result<Participant, ApiError> {
    refuse_reserved(user)?;
    let display_name = text("displayName", &req.display_name, MAX_NAME)?;
    let p = Participant {
        user_id: user.sub.clone(),
        display_name,
        role: "participant".into(),
        joined_at: Utc::now(),
    };
    let events = [joined_event(chat_id, &p, cause)];
    let count = "memberCount".to_string();
    let ops = vec![
        // The count on META bounds the chat (and lets completion see a concurrent join).
        TxOp::Update {
            pk: keys::chat(chat_id),
            sk: keys::CHAT_META.into(),
            updates: vec![Update::Add(count.clone(), 1)],
            cond: Some(Condition::And(vec![
                Condition::Exists,
                Condition::Or(vec![
                    Condition::AttrNotExists(count.clone()),
                    Condition::Lt(count, MAX_PARTICIPANTS as f64),
                ]),
            ])),
        },
        TxOp::Put {
            item: member_item(chat_id, &p),
            cond: Some(Condition::NotExists),
        },
    ];
    match outbox::commit(deps, ops, &events).await {
        Ok(_) => Ok(p),
        // Already a member: the first answer again (whatever the count says).
        Err(TableError::TransactionCanceled { failed }) if failed.contains(&1) => participant(deps, chat_id, &user.sub)
            .await?
            .ok_or_else(|| ApiError::Unavailable("membership changed".into())),
        Err(TableError::TransactionCanceled { failed }) if failed.contains(&0) => {
            if deps.table.get(&keys::chat(chat_id), keys::CHAT_META).await?.is_none() {
                Err(ApiError::NotFound(format!("chat {chat_id} not found")))
            } else {
                Err(ApiError::conflict(
                    "chat_full",
                    format!("chat {chat_id} already has {MAX_PARTICIPANTS} participants"),
                ))
            }
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn participant(deps: &Deps, chat_id: &str, user_id: &str) -> Result<Option<Participant>, ApiError> {
    let item = deps.table.get(&keys::chat(chat_id), &keys::member(user_id)).await?;
    Ok(item.as_ref().map(session::participant_of))
}

/// The caller must be a participant (admins may read any chat): 404 for a chat that
/// does not exist, 403 for one the caller is not in.
pub(crate) async fn require_reader(deps: &Deps, user: &Claims, chat_id: &str) -> Result<(), ApiError> {
    if participant(deps, chat_id, &user.sub).await?.is_some() {
        return Ok(());
    }
    if deps.table.get(&keys::chat(chat_id), keys::CHAT_META).await?.is_none() {
        return Err(ApiError::NotFound(format!("chat {chat_id} not found")));
    }
    if user.roles.contains(&crate::auth::Role::Admin) {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!("not a participant of chat {chat_id}")))
}
