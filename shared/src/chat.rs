//! The chat domain: settings, participants, messages, turns.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
        Self {
            turn_mode: TurnMode::Free,
            assistant_enabled: false,
            extensions: Vec::new(),
        }
    }
}

use crate::auth::Claims;
use crate::deps::Deps;
use crate::error::ApiError;
use crate::events::{Cause, ChatCreated, Envelope, Event, MessageStored, ParticipantJoined};
use crate::keys;
use crate::outbox;
use crate::ports::{Condition, Item, TableError, TxOp};
use chrono::{DateTime, SecondsFormat, Utc};

pub const MAX_TITLE: usize = 200;
pub const MAX_NAME: usize = 80;
pub const MAX_CONTENT: usize = 4000;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateChat {
    pub title: String,
    #[serde(default)]
    pub settings: Option<ChatSettings>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinChat {
    pub display_name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendMessage {
    pub content: String,
    #[serde(default)]
    pub client_message_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub user_id: String,
    pub display_name: String,
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatView {
    pub chat_id: String,
    pub title: String,
    pub settings: ChatSettings,
    pub participants: Vec<Participant>,
}

/// A text field: trimmed, non-empty, at most `max` characters.
fn text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiError::BadRequest(format!("{field} must not be empty")));
    }
    if v.chars().count() > max {
        return Err(ApiError::BadRequest(format!("{field} must be at most {max} characters")));
    }
    Ok(v.to_string())
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
    let title = text("title", &req.title, MAX_TITLE)?;
    let settings = req.settings.unwrap_or_default();
    let chat_id = ulid::Ulid::new().to_string();
    let now = Utc::now();
    let organizer = Participant {
        user_id: user.sub.clone(),
        display_name: user.display_name().to_string(),
        role: "organizer".into(),
        joined_at: now,
    };
    let meta = Item::new(keys::chat(&chat_id), keys::META)
        .with("chatId", chat_id.as_str())
        .with("title", title.as_str())
        .with("createdBy", user.sub.as_str())
        .with("createdAt", now.to_rfc3339_opts(SecondsFormat::Millis, true))
        .with("settings", serde_json::to_value(&settings).unwrap_or_default());
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
    ops.extend(outbox::entries(&events));
    deps.table.transact(ops).await?;
    outbox::flush(deps, &events).await;
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
pub async fn join(deps: &Deps, user: &Claims, chat_id: &str, req: JoinChat, cause: &Cause) -> Result<Participant, ApiError> {
    let display_name = text("displayName", &req.display_name, MAX_NAME)?;
    let p = Participant {
        user_id: user.sub.clone(),
        display_name,
        role: "participant".into(),
        joined_at: Utc::now(),
    };
    let events = [joined_event(chat_id, &p, cause)];
    let mut ops = vec![
        TxOp::Check {
            pk: keys::chat(chat_id),
            sk: keys::META.into(),
            cond: Condition::Exists,
        },
        TxOp::Put {
            item: member_item(chat_id, &p),
            cond: Some(Condition::NotExists),
        },
    ];
    ops.extend(outbox::entries(&events));
    match deps.table.transact(ops).await {
        Ok(()) => {
            outbox::flush(deps, &events).await;
            Ok(p)
        }
        Err(TableError::TransactionCanceled { failed }) if failed.contains(&0) => {
            Err(ApiError::NotFound(format!("chat {chat_id} not found")))
        }
        Err(TableError::TransactionCanceled { failed }) if failed == [1] => participant(deps, chat_id, &user.sub)
            .await?
            .ok_or_else(|| ApiError::Unavailable("membership changed".into())),
        Err(e) => Err(e.into()),
    }
}

pub async fn participant(deps: &Deps, chat_id: &str, user_id: &str) -> Result<Option<Participant>, ApiError> {
    let item = deps.table.get(&keys::chat(chat_id), &keys::member(user_id)).await?;
    Ok(item.map(|i| Participant {
        user_id: user_id.to_string(),
        display_name: i.str("displayName").unwrap_or_default().to_string(),
        role: i.str("role").unwrap_or_default().to_string(),
        joined_at: i.str("joinedAt").and_then(|t| t.parse().ok()).unwrap_or_default(),
    }))
}

fn message_of(item: &Item) -> Option<MessageStored> {
    serde_json::from_value(Value::Object(item.attrs.clone())).ok()
}

/// Stores a member's message and announces it. A retried send with the same
/// `clientMessageId` returns the stored message and announces nothing again.
pub async fn send(deps: &Deps, user: &Claims, chat_id: &str, req: SendMessage, cause: &Cause) -> Result<(MessageStored, bool), ApiError> {
    let content = text("content", &req.content, MAX_CONTENT)?;
    if let Some(c) = &req.client_message_id {
        if !crate::channels::valid_id(c) {
            return Err(ApiError::BadRequest("clientMessageId must be 1-64 letters, digits, - or _".into()));
        }
    }
    let Some(sender) = participant(deps, chat_id, &user.sub).await? else {
        return Err(ApiError::Forbidden(format!("not a participant of chat {chat_id}")));
    };
    let now = Utc::now();
    let msg = MessageStored {
        id: ulid::Ulid::new().to_string(),
        chat_id: chat_id.to_string(),
        sender_id: user.sub.clone(),
        sender_role: if sender.role == "assistant" {
            "assistant".into()
        } else {
            "user".into()
        },
        content,
        client_message_id: req.client_message_id.clone(),
        created_at: now,
    };
    let created = now.to_rfc3339_opts(SecondsFormat::Micros, true);
    let mut item = Item::new(keys::chat(chat_id), keys::msg(&created, &msg.id));
    if let Value::Object(attrs) = serde_json::to_value(&msg).unwrap_or_default() {
        item.attrs = attrs;
    }
    let events = [Envelope::new(Event::MessageStored(msg.clone()), cause)];
    let mut ops = vec![TxOp::Put {
        item: item.clone(),
        cond: None,
    }];
    if let Some(c) = &req.client_message_id {
        let marker = Item::new(keys::chat(chat_id), keys::client_msg(&user.sub, c)).with("msgSk", item.sk.as_str());
        ops.push(TxOp::Put {
            item: marker,
            cond: Some(Condition::NotExists),
        });
    }
    ops.extend(outbox::entries(&events));
    match deps.table.transact(ops).await {
        Ok(()) => {}
        Err(TableError::TransactionCanceled { failed }) if failed == [1] => {
            let c = req.client_message_id.as_deref().unwrap_or_default();
            let marker = deps.table.get(&keys::chat(chat_id), &keys::client_msg(&user.sub, c)).await?;
            let stored = match marker.as_ref().and_then(|m| m.str("msgSk")) {
                Some(sk) => deps.table.get(&keys::chat(chat_id), sk).await?.as_ref().and_then(message_of),
                None => None,
            };
            return stored
                .map(|m| (m, false))
                .ok_or_else(|| ApiError::Unavailable("retry the send".into()));
        }
        Err(e) => return Err(e.into()),
    }
    outbox::flush(deps, &events).await;
    Ok((msg, true))
}
