//! The message pipeline and the history.
//!
//! A message is validated (length, membership, turn, moderation), then stored in one
//! transaction with everything it changes and announces: the message, its idempotency
//! marker, the next turn (conditioned on the turn it was checked against), the sender's
//! typing indicator (cleared) and the log entries of `chat.message.stored`,
//! `chat.typing.*` (off), `chat.turn.changed` and `chat.ai.requested`. When another send
//! moved the turn meanwhile, the pipeline starts over on the new state.

use super::error::ChatError;
use super::extensions::Extension;
use super::session::{self, message_of, Session};
use super::turns::{self, Speaker, Turn};
use super::{moderation, ts, AiRequested, MessageRejected, SendMessage, Typing, MAX_CONTENT};
use crate::auth::Claims;
use crate::deps::Deps;
use crate::error::text;
use crate::events::{Cause, Envelope, Event, MessageStored, Priority, TurnChanged};
use crate::ids::ChatId;
use crate::keys;
use crate::outbox;
use crate::ports::{Condition, Item, Query, SkCond, TableError, TxOp};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// How often a send starts over when the turn moved under it.
const ATTEMPTS: usize = 6;

/// A message on its way in.
pub(crate) struct Outgoing<'a> {
    pub speaker: Speaker<'a>,
    pub content: String,
    pub client_message_id: Option<String>,
    /// For the assistant: the request it answers (its turn must still wait for it).
    pub ai_request_id: Option<&'a str>,
}

/// Stores a member's message and announces it. A retried send with the same
/// `clientMessageId` returns the stored message and announces nothing again.
pub async fn send(
    deps: &Deps,
    user: &Claims,
    chat_id: &ChatId,
    req: SendMessage,
    cause: &Cause,
) -> Result<(MessageStored, bool), ChatError> {
    let content = text("content", &req.content, MAX_CONTENT)?;
    if let Some(c) = &req.client_message_id {
        if !crate::ids::valid_id(c) {
            return Err(ChatError::Invalid("clientMessageId must be 1-64 letters, digits, - or _".into()));
        }
    }
    let out = Outgoing {
        speaker: Speaker::User(&user.sub),
        content,
        client_message_id: req.client_message_id,
        ai_request_id: None,
    };
    store(deps, chat_id, out, cause, |_| Vec::new()).await
}

/// The message a sender already stored under a client message id.
async fn stored_by_marker(deps: &Deps, chat_id: &str, sender: &str, cmid: &str) -> Result<Option<MessageStored>, ChatError> {
    let marker = deps.table.get(&keys::chat(chat_id), &keys::client_msg(sender, cmid)).await?;
    Ok(match marker.as_ref().and_then(|m| m.str("msgSk")) {
        Some(sk) => deps.table.get(&keys::chat(chat_id), sk).await?.as_ref().and_then(message_of),
        None => None,
    })
}

/// The typing event of a speaker (user or assistant variant).
pub(crate) fn typing_event(speaker: Speaker<'_>, data: Typing, cause: &Cause) -> Envelope {
    let ev = match speaker {
        Speaker::User(_) => Event::TypingUser(data),
        Speaker::Assistant => Event::TypingAssistant(data),
    };
    Envelope::new(ev, cause).with_priority(Priority::Low)
}

pub(crate) fn turn_event(chat_id: &str, t: &Turn, cause: &Cause) -> Envelope {
    Envelope::new(
        Event::TurnChanged(TurnChanged {
            chat_id: chat_id.into(),
            next_user_id: t.next_user_id.clone(),
            next_role: t.next_role.clone(),
            timestamp: t.since,
        }),
        cause,
    )
}

/// The write of a new turn, conditioned on the turn the change was computed from.
pub(crate) fn turn_op(chat_id: &str, s: &Session, next: &Turn) -> TxOp {
    TxOp::Put {
        item: next.item(chat_id),
        cond: Some(if s.turn_stored {
            Condition::Eq("version".into(), s.turn.version.into())
        } else {
            Condition::NotExists
        }),
    }
}

/// The pipeline. `extra` adds events that depend on the stored message (the assistant's
/// `chat.ai.completed`); they go out in the same transaction.
pub(crate) async fn store(
    deps: &Deps,
    chat_id: &str,
    out: Outgoing<'_>,
    cause: &Cause,
    extra: impl Fn(&MessageStored) -> Vec<Envelope>,
) -> Result<(MessageStored, bool), ChatError> {
    let sender = out.speaker.id().to_string();
    // A retry of a send that already landed answers with that message, whatever the turn is now.
    if let Some(c) = &out.client_message_id {
        if let Some(m) = stored_by_marker(deps, chat_id, &sender, c).await? {
            return Ok((m, false));
        }
    }
    let timeout = deps.config.chat.assistant.turn_timeout_secs();
    for attempt in 0..ATTEMPTS {
        let s = session::require(deps, chat_id, 0).await?;
        let now = Utc::now();
        match out.speaker {
            Speaker::User(u) if s.member(u).is_none() => {
                return Err(ChatError::Forbidden(format!("not a participant of chat {chat_id}")));
            }
            Speaker::Assistant if !s.meta.settings.assistant_enabled => {
                return Err(ChatError::conflict("assistant_disabled", "the assistant is off in this chat"));
            }
            Speaker::Assistant if s.turn.mode != super::TurnMode::Free && s.turn.ai_request_id.as_deref() != out.ai_request_id => {
                return Err(ChatError::conflict(
                    "not_your_turn",
                    "the turn moved on; this request is no longer awaited",
                ));
            }
            _ => {}
        }
        turns::check(&s.turn, out.speaker, now, timeout)?;
        if let Speaker::User(u) = out.speaker {
            if s.meta.settings.has(Extension::Moderation) {
                let terms: Vec<String> = deps
                    .config
                    .chat
                    .moderation_blocklist
                    .iter()
                    .chain(&s.meta.settings.blocklist)
                    .cloned()
                    .collect();
                if let Some(term) = moderation::find_blocked(&out.content, &terms) {
                    return Err(reject(deps, chat_id, u, term, out.client_message_id.clone(), cause).await);
                }
            }
        }
        let msg = MessageStored {
            id: ulid::Ulid::new().to_string(),
            chat_id: chat_id.to_string(),
            sender_id: sender.clone(),
            sender_role: out.speaker.role().to_string(),
            content: out.content.clone(),
            client_message_id: out.client_message_id.clone(),
            created_at: now,
        };
        let next = turns::advance(&s.turn, s.meta.settings.assistant_enabled, &s.members, out.speaker, now);
        let (ops, events, turn_index) = plan(chat_id, &s, &msg, out.speaker, next.as_ref(), cause, &extra);
        match outbox::commit(deps, ops, &events).await {
            Ok(_) => {
                return Ok((msg, true));
            }
            // The marker exists: this very send landed meanwhile (a concurrent retry).
            Err(TableError::TransactionCanceled { failed }) if out.client_message_id.is_some() && failed.contains(&1) => {
                let c = out.client_message_id.as_deref().unwrap_or_default();
                return stored_by_marker(deps, chat_id, &sender, c)
                    .await?
                    .map(|m| (m, false))
                    .ok_or_else(|| ChatError::Busy("retry the send".into()));
            }
            // The turn moved: check again on the new state.
            Err(TableError::TransactionCanceled { failed }) if turn_index.is_some_and(|i| failed.contains(&i)) => continue,
            // DynamoDB cancels concurrent transactions on one item (the turn) as a conflict.
            Err(TableError::Transient(_)) if turn_index.is_some() => crate::retry::CONTENDED.sleep(attempt as u32).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ChatError::Busy("the turn kept changing; retry the send".into()))
}

/// The writes and events of one stored message: (ops, events, index of the turn write).
fn plan(
    chat_id: &str,
    s: &Session,
    msg: &MessageStored,
    speaker: Speaker<'_>,
    next: Option<&Turn>,
    cause: &Cause,
    extra: &dyn Fn(&MessageStored) -> Vec<Envelope>,
) -> (Vec<TxOp>, Vec<Envelope>, Option<usize>) {
    let mut item = Item::new(keys::chat(chat_id), keys::msg(&ts(msg.created_at), &msg.id));
    if let Value::Object(attrs) = serde_json::to_value(msg).unwrap_or_default() {
        item.attrs = attrs;
    }
    // Causes first: the message, what it completes (the assistant's `chat.ai.completed`),
    // then what it changes (typing, turn) and what it asks for.
    let mut events = vec![Envelope::new(Event::MessageStored(msg.clone()), cause)];
    events.extend(extra(msg));
    let mut ops = vec![TxOp::Put {
        item: item.clone(),
        cond: None,
    }];
    if let Some(c) = &msg.client_message_id {
        let marker = Item::new(keys::chat(chat_id), keys::client_msg(&msg.sender_id, c)).with("msgSk", item.sk.as_str());
        ops.push(TxOp::Put {
            item: marker,
            cond: Some(Condition::NotExists),
        });
    }
    // Sending ends typing.
    if let Some(t) = s.typing_of(&msg.sender_id) {
        ops.push(TxOp::Delete {
            pk: keys::chat(chat_id),
            sk: keys::typing(&msg.sender_id),
            cond: None,
        });
        let off = Typing {
            chat_id: chat_id.into(),
            user_id: msg.sender_id.clone(),
            display_name: t.display_name.clone(),
            is_typing: false,
            expires_at: None,
        };
        events.push(typing_event(speaker, off, cause));
    }
    let mut turn_index = None;
    if let Some(t) = next {
        turn_index = Some(ops.len());
        ops.push(turn_op(chat_id, s, t));
        events.push(turn_event(chat_id, t, cause));
    }
    // The assistant answers: on its turn, or every user message in free mode.
    let ai_request_id = match (next, speaker) {
        (Some(t), _) if t.waits_for_assistant() => t.ai_request_id.clone(),
        (None, Speaker::User(_)) if s.meta.settings.assistant_enabled => Some(ulid::Ulid::new().to_string()),
        _ => None,
    };
    if let Some(request_id) = ai_request_id {
        events.push(Envelope::new(
            Event::AiRequested(AiRequested {
                chat_id: chat_id.into(),
                request_id,
                message_id: msg.id.clone(),
                requested_by: msg.sender_id.clone(),
                requested_at: msg.created_at,
            }),
            cause,
        ));
    }
    (ops, events, turn_index)
}

/// Moderation refused a message: nothing is stored; `chat.message.rejected` goes to the
/// sender (its log entry is the only write), and the sender gets 422 `message_rejected`.
async fn reject(deps: &Deps, chat_id: &str, sender: &str, term: &str, cmid: Option<String>, cause: &Cause) -> ChatError {
    let reason = format!("the message contains the blocked term {term:?}");
    let mut ev = Envelope::new(
        Event::MessageRejected(MessageRejected {
            chat_id: chat_id.into(),
            sender_id: sender.into(),
            code: "blocked_term".into(),
            reason: reason.clone(),
            client_message_id: cmid,
            rejected_at: Utc::now(),
        }),
        cause,
    );
    // Only the sender hears about it: no chat channel, their user channel.
    ev.chat_id = None;
    let events = [ev.for_user(sender)];
    match outbox::commit(deps, Vec::new(), &events).await {
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "chat.message.rejected not recorded"),
    }
    ChatError::Rejected {
        code: "message_rejected",
        message: format!("message rejected by moderation: {reason}"),
    }
}

// ---------------------------------------------------------------- history

pub const HISTORY_DEFAULT_LIMIT: u32 = 50;
pub const HISTORY_MAX_LIMIT: u32 = 100;

/// A page of history, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct History {
    pub messages: Vec<MessageStored>,
    /// Pass as `before` for the next (older) page; null on the last page.
    pub next_before: Option<String>,
}

/// The upper bound of a history page from `before`: a `nextBefore` cursor
/// (`{time}_{messageId}`, URL-safe), or a timestamp (messages strictly older).
fn before_bound(before: &str) -> Result<String, ChatError> {
    let bad = || ChatError::Invalid("before must be a nextBefore cursor or an RFC 3339 timestamp".into());
    if before.len() > 100 {
        return Err(bad());
    }
    let (time, id) = match before.split_once('_') {
        Some((t, id)) if crate::ids::valid_id(id) => (t, Some(id)),
        Some(_) => return Err(bad()),
        None => (before, None),
    };
    let t: DateTime<Utc> = chrono::DateTime::parse_from_rfc3339(time).map_err(|_| bad())?.with_timezone(&Utc);
    Ok(match id {
        Some(id) => keys::msg(&ts(t), id),
        None => format!("{}{}", keys::MSG_PREFIX, ts(t)),
    })
}

/// `GET /api/chat/{chatId}/messages?before=&limit=`: a participant's view of the history.
pub async fn history(
    deps: &Deps,
    user: &Claims,
    chat_id: &ChatId,
    before: Option<&str>,
    limit: Option<&str>,
) -> Result<History, ChatError> {
    let limit = match limit {
        None => HISTORY_DEFAULT_LIMIT,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=HISTORY_MAX_LIMIT).contains(l))
            .ok_or_else(|| ChatError::Invalid(format!("limit must be a number from 1 to {HISTORY_MAX_LIMIT}")))?,
    };
    let upper = before.map(before_bound).transpose()?;
    super::require_reader(deps, user, chat_id).await?;
    let sk = match &upper {
        // Inclusive bounds: the cursor's own message is dropped below.
        Some(u) => SkCond::Between(keys::MSG_PREFIX.into(), u.clone()),
        None => SkCond::BeginsWith(keys::MSG_PREFIX.into()),
    };
    let q = Query::new(keys::chat(chat_id)).sk(sk).backward().limit(limit + 2);
    let page = deps.table.query(q).await?;
    let mut items: Vec<&Item> = page.items.iter().filter(|i| Some(&i.sk) != upper.as_ref()).collect();
    let more = items.len() > limit as usize || (page.cursor.is_some() && items.len() == limit as usize);
    items.truncate(limit as usize);
    let messages: Vec<MessageStored> = items.iter().filter_map(|i| message_of(i)).collect();
    let next_before = match (more, items.last()) {
        // The sort key `MSG#{time}#{id}` as `{time}_{id}`.
        (true, Some(last)) => last.sk.strip_prefix(keys::MSG_PREFIX).map(|k| k.replacen('#', "_", 1)),
        _ => None,
    };
    Ok(History { messages, next_before })
}
