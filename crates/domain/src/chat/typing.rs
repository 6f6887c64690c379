//! Typing indicators: `S#TYPING#{user}` items with a TTL, announced as `chat.typing.user`
//! (priority `low`: pushed, not logged). An indicator lives `TYPING_TTL_SECS` unless
//! refreshed; reads drop expired items, so the state endpoint stops reporting it on time
//! even though DynamoDB deletes it late. Sending a message clears it, and so does a
//! WebSocket disconnect of its user (found through the user's index partition).

use super::error::ChatError;
use super::messages::typing_event;
use super::turns::{Speaker, ASSISTANT_ID, ROLE_ASSISTANT, ROLE_USER};
use super::Typing;
use crate::deps::Deps;
use crate::events::{Cause, Envelope};
use crate::ids::ChatId;
use crate::keys;
use crate::outbox;
use crate::ports::table::{GSI1PK, GSI1SK};
use crate::ports::{Condition, Item, Query, TableError, TxOp};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// `POST /api/typing`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetTyping {
    pub chat_id: ChatId,
    pub is_typing: bool,
}

/// The WebSocket frame `{"action":"typing","chatId","isTyping"}` (the `typing` route).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TypingFrame {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub chat_id: ChatId,
    pub is_typing: bool,
}

/// The answer of `POST /api/typing`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TypingStatus {
    pub chat_id: String,
    pub user_id: String,
    pub is_typing: bool,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The TTL of an indicator set now: whole seconds (the `ttl` attribute's unit), rounded
/// up, so the indicator lives at least `ttl_secs` and is gone within `ttl_secs + 1`.
pub(crate) fn expiry(now: DateTime<Utc>, ttl_secs: i64) -> (i64, DateTime<Utc>) {
    let ttl = (now.timestamp_millis() + ttl_secs * 1000 + 999).div_euclid(1000);
    (ttl, Utc.timestamp_opt(ttl, 0).single().unwrap_or(now))
}

/// The item of an indicator; indexed under the user (`USER#{id}` / `TYPING#{chat}`) so a
/// disconnect finds the user's indicators with one Query.
pub fn typing_item(chat_id: &str, user_id: &str, display_name: &str, role: &str, now: DateTime<Utc>, ttl_secs: i64) -> Item {
    let (ttl, expires_at) = expiry(now, ttl_secs);
    Item::new(keys::chat(chat_id), keys::typing(user_id))
        .with("chatId", chat_id)
        .with("userId", user_id)
        .with("displayName", display_name)
        .with("role", role)
        .with("startedAt", super::ts(now))
        .with("expiresAt", super::ts(expires_at))
        .with(GSI1PK, keys::user(user_id))
        .with(GSI1SK, format!("TYPING#{chat_id}"))
        .with_ttl(ttl)
}

/// Sets or clears the caller's indicator in a chat they are in.
pub async fn set(deps: &Deps, user_id: &str, chat_id: &ChatId, is_typing: bool, cause: &Cause) -> Result<TypingStatus, ChatError> {
    let Some(member) = super::participant(deps, chat_id, user_id).await? else {
        if deps.table.get(&keys::chat(chat_id), keys::CHAT_META).await?.is_none() {
            return Err(ChatError::NotFound(format!("chat {chat_id} not found")));
        }
        return Err(ChatError::Forbidden(format!("not a participant of chat {chat_id}")));
    };
    let now = Utc::now();
    if !is_typing {
        clear(deps, chat_id, user_id, &member.display_name, cause).await?;
        return Ok(TypingStatus {
            chat_id: chat_id.into(),
            user_id: user_id.into(),
            is_typing: false,
            expires_at: None,
        });
    }
    let item = typing_item(
        chat_id,
        user_id,
        &member.display_name,
        ROLE_USER,
        now,
        deps.config.chat.typing_ttl_secs,
    );
    let (_, expires_at) = expiry(now, deps.config.chat.typing_ttl_secs);
    let data = Typing {
        chat_id: chat_id.into(),
        user_id: user_id.into(),
        display_name: member.display_name.clone(),
        is_typing: true,
        expires_at: Some(expires_at),
    };
    let events = [typing_event(Speaker::User(user_id), data, cause)];
    let ops = vec![TxOp::Put { item, cond: None }];
    outbox::commit(deps, ops, &events).await?;
    Ok(TypingStatus {
        chat_id: chat_id.into(),
        user_id: user_id.into(),
        is_typing: true,
        expires_at: Some(expires_at),
    })
}

/// Clears an indicator if it is on (announcing it); nothing happens if it is not.
pub(crate) async fn clear(deps: &Deps, chat_id: &str, user_id: &str, display_name: &str, cause: &Cause) -> Result<bool, ChatError> {
    let speaker = if user_id == ASSISTANT_ID {
        Speaker::Assistant
    } else {
        Speaker::User(user_id)
    };
    let data = Typing {
        chat_id: chat_id.into(),
        user_id: user_id.into(),
        display_name: display_name.into(),
        is_typing: false,
        expires_at: None,
    };
    let events = [typing_event(speaker, data, cause)];
    let ops = vec![TxOp::Delete {
        pk: keys::chat(chat_id),
        sk: keys::typing(user_id),
        // Only a live indicator is announced off. The condition names the TTL itself: DynamoDB
        // still sees an expired item that it has not deleted yet.
        cond: Some(Condition::Gt(
            crate::ports::table::TTL.into(),
            crate::ports::table::now_epoch() as f64,
        )),
    }];
    match outbox::commit(deps, ops, &events).await {
        Ok(_) => Ok(true),
        Err(TableError::TransactionCanceled { failed }) if failed == [0] => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Clears every indicator of a user (their WebSocket closed). Best effort per chat.
pub async fn clear_user(deps: &Deps, user_id: &str, cause: &Cause) -> Result<usize, ChatError> {
    let q = Query::gsi1(keys::user(user_id)).begins_with("TYPING#");
    let items = crate::ports::table::query_all(deps.table.as_ref(), q).await?;
    let mut cleared = 0;
    for item in &items {
        let (Some(chat_id), Some(name)) = (item.str("chatId"), item.str("displayName")) else {
            continue;
        };
        if clear(deps, chat_id, user_id, name, cause).await? {
            cleared += 1;
        }
    }
    Ok(cleared)
}

/// The assistant's indicator, on while it works (its TTL covers the provider's timeout).
pub(crate) fn assistant_item(deps: &Deps, chat_id: &str, now: DateTime<Utc>, cause: &Cause) -> (Item, Envelope) {
    let cfg = &deps.config.chat.assistant;
    let ttl = cfg.timeout_secs as i64 + 5;
    let item = typing_item(chat_id, ASSISTANT_ID, &cfg.name, ROLE_ASSISTANT, now, ttl);
    let (_, expires_at) = expiry(now, ttl);
    let data = Typing {
        chat_id: chat_id.into(),
        user_id: ASSISTANT_ID.into(),
        display_name: cfg.name.clone(),
        is_typing: true,
        expires_at: Some(expires_at),
    };
    (item, typing_event(Speaker::Assistant, data, cause))
}
