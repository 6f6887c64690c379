//! Chats and their members: create, join, and who may read a chat.

use super::error::ChatError;
use super::model::{ts, ChatSettings, CreateChat, JoinChat, TurnMode, MAX_NAME, MAX_PARTICIPANTS, MAX_TITLE};
use super::payloads::{ChatCreated, Participant};
use super::{session, turns};
use crate::auth::Claims;
use crate::deps::Deps;
use crate::error::text;
use crate::events::{Cause, Envelope, Event};
use crate::ids::ChatId;
use crate::keys;
use crate::outbox;
use crate::ports::{Condition, Item, TableError, TxOp, Update};
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatView {
    pub chat_id: ChatId,
    pub title: String,
    pub settings: ChatSettings,
    pub participants: Vec<Participant>,
}

/// The assistant speaks under this id; no person may use it.
fn refuse_reserved(user: &Claims) -> Result<(), ChatError> {
    if user.sub == turns::ASSISTANT_ID {
        return Err(ChatError::Forbidden(format!("the user id {:?} is reserved", turns::ASSISTANT_ID)));
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

pub async fn create(deps: &Deps, user: &Claims, req: CreateChat, cause: &Cause) -> Result<ChatView, ChatError> {
    refuse_reserved(user)?;
    let title = text("title", &req.title, MAX_TITLE)?;
    let settings = req.settings.unwrap_or_default().validated()?;
    let chat_id = ChatId::generate();
    let now = Utc::now();
    let organizer = Participant {
        chat_id: chat_id.to_string(),
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
                chat_id: chat_id.to_string(),
                title: title.clone(),
                created_by: user.sub.clone(),
                settings: settings.clone(),
            }),
            cause,
        ),
        joined_event(&organizer, cause),
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

fn joined_event(p: &Participant, cause: &Cause) -> Envelope {
    Envelope::new(Event::ParticipantJoined(p.clone()), cause)
}

/// Joins the caller; joining twice is harmless and announces nothing the second time.
/// A chat holds at most [`MAX_PARTICIPANTS`] (409 `chat_full`).
pub async fn join(deps: &Deps, user: &Claims, chat_id: &ChatId, req: JoinChat, cause: &Cause) -> Result<Participant, ChatError> {
    refuse_reserved(user)?;
    let display_name = text("displayName", &req.display_name, MAX_NAME)?;
    let p = Participant {
        chat_id: chat_id.to_string(),
        user_id: user.sub.clone(),
        display_name,
        role: "participant".into(),
        joined_at: Utc::now(),
    };
    let events = [joined_event(&p, cause)];
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
            .ok_or_else(|| ChatError::Busy("membership changed".into())),
        Err(TableError::TransactionCanceled { failed }) if failed.contains(&0) => {
            if deps.table.get(&keys::chat(chat_id), keys::CHAT_META).await?.is_none() {
                Err(ChatError::NotFound(format!("chat {chat_id} not found")))
            } else {
                Err(ChatError::conflict(
                    "chat_full",
                    format!("chat {chat_id} already has {MAX_PARTICIPANTS} participants"),
                ))
            }
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn participant(deps: &Deps, chat_id: &str, user_id: &str) -> Result<Option<Participant>, ChatError> {
    let item = deps.table.get(&keys::chat(chat_id), &keys::member(user_id)).await?;
    Ok(item.as_ref().map(session::participant_of))
}

/// The caller must be a participant (admins may read any chat): 404 for a chat that
/// does not exist, 403 for one the caller is not in.
pub async fn require_reader(deps: &Deps, user: &Claims, chat_id: &str) -> Result<(), ChatError> {
    if participant(deps, chat_id, &user.sub).await?.is_some() {
        return Ok(());
    }
    if deps.table.get(&keys::chat(chat_id), keys::CHAT_META).await?.is_none() {
        return Err(ChatError::NotFound(format!("chat {chat_id} not found")));
    }
    if user.roles.contains(&crate::auth::Role::Admin) {
        return Ok(());
    }
    Err(ChatError::Forbidden(format!("not a participant of chat {chat_id}")))
}
