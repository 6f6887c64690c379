//! Completion: each participant marks itself complete (`S#DONE#{user}`, announced as
//! `chat.completion.updated`); when the last one does, `chat.completion.ready` goes out,
//! exactly once per chat, even when the last participants complete at the same moment.
//!
//! How "exactly once" holds: every completion writes, in one transaction, its done item
//! (only if missing), the completed count on `S#COMPLETION` (only if the count is still the
//! one this completion read) and a check that the member count on `S#META` is still the one
//! it read (a concurrent join changes who must complete). So completions of one chat are
//! serialized: of two concurrent ones, one fails its condition and starts over on the new
//! state. Only the completion that sees every other participant done sets `readyAt` (only if
//! unset) and announces `ready`.

use super::error::ChatError;
use super::session::{self, Session};
use super::{CompletionReady, CompletionUpdated};
use crate::auth::Claims;
use crate::deps::Deps;
use crate::events::{Cause, Envelope, Event};
use crate::ids::ChatId;
use crate::keys;
use crate::outbox;
use crate::ports::{Condition, Item, TableError, TxOp, Update};
use chrono::{DateTime, Utc};
use serde::Serialize;

const ATTEMPTS: usize = 8;

/// The answer of `POST /api/chat/{chatId}/complete`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompletionStatus {
    pub chat_id: String,
    pub user_id: String,
    pub completed: bool,
    pub completed_count: u32,
    pub participant_count: u32,
    pub ready: bool,
    pub ready_at: Option<DateTime<Utc>>,
}

fn status(s: &Session, user_id: &str) -> CompletionStatus {
    CompletionStatus {
        chat_id: s.chat_id.clone(),
        user_id: user_id.into(),
        completed: s.has_completed(user_id),
        completed_count: s.members.iter().filter(|m| s.has_completed(&m.user_id)).count() as u32,
        participant_count: s.members.len() as u32,
        ready: s.ready_at.is_some(),
        ready_at: s.ready_at,
    }
}

/// Marks the caller complete. Completing twice is harmless: the second call answers the
/// current status and announces nothing.
pub async fn complete(deps: &Deps, user: &Claims, chat_id: &ChatId, cause: &Cause) -> Result<CompletionStatus, ChatError> {
    for attempt in 0..ATTEMPTS {
        let s = session::require(deps, chat_id, 0).await?;
        if s.member(&user.sub).is_none() {
            return Err(ChatError::Forbidden(format!("not a participant of chat {chat_id}")));
        }
        if s.has_completed(&user.sub) {
            return Ok(status(&s, &user.sub));
        }
        let now = Utc::now();
        let others_done = s.members.iter().all(|m| m.user_id == user.sub || s.has_completed(&m.user_id));
        let ready = others_done && s.ready_at.is_none();
        let completed_count = s.members.iter().filter(|m| s.has_completed(&m.user_id)).count() as u32 + 1;
        let participant_count = s.members.len() as u32;
        let mut events = vec![Envelope::new(
            Event::CompletionUpdated(CompletionUpdated {
                chat_id: chat_id.into(),
                user_id: user.sub.clone(),
                completed: true,
                completed_count,
                participant_count,
                completed_at: now,
            }),
            cause,
        )];
        let count = "count".to_string();
        let mut count_cond = if s.completed_count == 0 {
            Condition::Or(vec![
                Condition::AttrNotExists(count.clone()),
                Condition::Eq(count.clone(), 0.into()),
            ])
        } else {
            Condition::Eq(count.clone(), s.completed_count.into())
        };
        let mut updates = vec![Update::Set(count, (s.completed_count + 1).into())];
        if ready {
            count_cond = Condition::And(vec![count_cond, Condition::AttrNotExists("readyAt".into())]);
            updates.push(Update::Set("readyAt".into(), super::ts(now).into()));
            events.push(Envelope::new(
                Event::CompletionReady(CompletionReady {
                    chat_id: chat_id.into(),
                    participant_count,
                    participants: s.members.iter().map(|m| m.user_id.clone()).collect(),
                    ready_at: now,
                }),
                cause,
            ));
        }
        let member_count = "memberCount".to_string();
        let ops = vec![
            TxOp::Put {
                item: Item::new(keys::chat(chat_id), keys::done(&user.sub))
                    .with("userId", user.sub.as_str())
                    .with("completedAt", super::ts(now)),
                cond: Some(Condition::NotExists),
            },
            TxOp::Update {
                pk: keys::chat(chat_id),
                sk: keys::COMPLETION.into(),
                updates,
                cond: Some(count_cond),
            },
            TxOp::Check {
                pk: keys::chat(chat_id),
                sk: keys::CHAT_META.into(),
                cond: if s.meta.member_count == 0 {
                    Condition::AttrNotExists(member_count)
                } else {
                    Condition::Eq(member_count, s.meta.member_count.into())
                },
            },
        ];
        match outbox::commit(deps, ops, &events).await {
            Ok(_) => {
                return Ok(CompletionStatus {
                    chat_id: chat_id.into(),
                    user_id: user.sub.clone(),
                    completed: true,
                    completed_count,
                    participant_count,
                    ready: ready || s.ready_at.is_some(),
                    ready_at: if ready { Some(now) } else { s.ready_at },
                });
            }
            // Someone completed or joined meanwhile (or this very user did): start over.
            Err(TableError::TransactionCanceled { .. }) | Err(TableError::Transient(_)) => {
                crate::retry::CONTENDED.sleep(attempt as u32).await
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ChatError::Busy("completion kept conflicting; retry".into()))
}
