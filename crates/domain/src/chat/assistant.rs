//! The assistant: its providers and its answer to `chat.ai.requested`.
//!
//! The `chat-assistant` function, invoked by an EventBridge rule on `chat.ai.requested`,
//! calls [`respond`]: it announces `chat.ai.started` and the assistant's typing, asks the
//! provider (timed, bounded by `ASSISTANT_TIMEOUT_SECS`), and stores the reply through the
//! message pipeline as the assistant (`chat.message.stored`, `chat.turn.changed`, typing
//! off and `chat.ai.completed` with the response time, in one transaction). On a provider
//! error it announces `chat.ai.failed`, clears the typing and moves the turn on, so the
//! chat never waits for an answer that will not come.
//!
//! EventBridge delivers at least once: the reply is stored under the client message id
//! `ai-{requestId}`, so a redelivered request stores nothing twice, and a request whose
//! turn has moved on is dropped.

use super::error::ChatError;
use super::messages::{self, turn_event, turn_op, Outgoing};
use super::session::{self, Session};
use super::turns::{self, Speaker, ROLE_ASSISTANT};
use super::{AiCompleted, AiFailed, AiRequested, AiStarted, TurnMode, Typing, MAX_CONTENT};
use crate::deps::Deps;
use crate::events::{Actor, Cause, Envelope, Event, MessageStored};
use crate::keys;
use crate::outbox;
use crate::ports::{TableError, TxOp};
use async_trait::async_trait;
use chrono::Utc;
use std::time::{Duration, Instant};

/// One message of the conversation, as a provider sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationMessage {
    pub role: String,
    pub name: String,
    pub content: String,
}

/// What a provider answers to.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub chat_title: String,
    /// Oldest first; the last one is the message to answer.
    pub messages: Vec<ConversationMessage>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("provider error: {0}")]
    Failed(String),
    #[error("the provider did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the provider answered nothing")]
    Empty,
}

impl ProviderError {
    fn code(&self) -> &'static str {
        match self {
            ProviderError::Failed(_) => "provider_error",
            ProviderError::Timeout(_) => "timeout",
            ProviderError::Empty => "empty_reply",
        }
    }
}

/// Writes the assistant's replies.
#[async_trait]
pub trait Provider: Send + Sync {
    /// For events and logs: `builtin`, `openai`.
    fn name(&self) -> &str;
    fn model(&self) -> &str;
    async fn reply(&self, conversation: &Conversation) -> Result<String, ProviderError>;
}

/// The default provider: deterministic and offline. It answers the last message by quoting
/// it back with a little arithmetic about the conversation, after a configurable pause (so
/// that its typing indicator shows, as a real model's would).
pub struct Builtin {
    pub delay: Duration,
}

#[async_trait]
impl Provider for Builtin {
    fn name(&self) -> &str {
        "builtin"
    }
    fn model(&self) -> &str {
        "echo-1"
    }
    async fn reply(&self, c: &Conversation) -> Result<String, ProviderError> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let Some(last) = c.messages.last() else {
            return Ok(format!("Hello! I am the assistant of \"{}\".", c.chat_title));
        };
        let quoted: String = last.content.chars().take(200).collect();
        let ellipsis = if last.content.chars().count() > 200 { "…" } else { "" };
        let words = last.content.split_whitespace().count();
        Ok(format!(
            "{}, you said: \"{quoted}{ellipsis}\" ({words} word{}; message {} of this conversation).",
            last.name,
            if words == 1 { "" } else { "s" },
            c.messages.len()
        ))
    }
}

/// What [`respond`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Replied(MessageStored),
    Failed(String),
    /// A redelivery, a request whose turn moved on, or a chat without the assistant now.
    Skipped(&'static str),
}

fn conversation(s: &Session, assistant_name: &str) -> Conversation {
    Conversation {
        chat_title: s.meta.title.clone(),
        messages: s
            .recent
            .iter()
            .map(|m| ConversationMessage {
                role: m.sender_role.clone(),
                name: if m.sender_role == ROLE_ASSISTANT {
                    assistant_name.to_string()
                } else {
                    s.member(&m.sender_id)
                        .map(|p| p.display_name.clone())
                        .unwrap_or_else(|| m.sender_id.clone())
                },
                content: m.content.clone(),
            })
            .collect(),
    }
}

fn awaited(s: &Session, req: &AiRequested) -> bool {
    s.meta.settings.assistant_enabled && (s.turn.mode == TurnMode::Free || s.turn.ai_request_id.as_deref() == Some(req.request_id.as_str()))
}

/// Answers one `chat.ai.requested` (the envelope it came in, for correlation).
pub async fn respond(deps: &Deps, provider: &dyn Provider, request: &Envelope) -> Result<Outcome, ChatError> {
    let Some(Event::AiRequested(req)) = request.typed() else {
        return Ok(Outcome::Skipped("not a chat.ai.requested event"));
    };
    let cfg = &deps.config.chat.assistant;
    let cause = Cause {
        correlation_id: request.correlation_id.clone(),
        causation_id: Some(request.id.clone()),
        actor: Some(Actor {
            user_id: turns::ASSISTANT_ID.into(),
            role: Some(ROLE_ASSISTANT.into()),
        }),
    };
    let cmid = format!("ai-{}", req.request_id);
    let chat_id = req.chat_id.as_str();
    let Some(s) = session::load(deps, chat_id, cfg.context_messages).await? else {
        return Ok(Outcome::Skipped("the chat is gone"));
    };
    if !awaited(&s, &req) {
        return Ok(Outcome::Skipped("the request is no longer awaited"));
    }
    if deps
        .table
        .get(&keys::chat(chat_id), &keys::client_msg(turns::ASSISTANT_ID, &cmid))
        .await?
        .is_some()
    {
        return Ok(Outcome::Skipped("already answered"));
    }

    // Started, and typing.
    let now = Utc::now();
    let (typing, typing_on) = super::typing::assistant_item(deps, chat_id, now, &cause);
    let started = [
        Envelope::new(
            Event::AiStarted(AiStarted {
                chat_id: chat_id.into(),
                request_id: req.request_id.clone(),
                provider: provider.name().into(),
                model: provider.model().into(),
                started_at: now,
            }),
            &cause,
        ),
        typing_on,
    ];
    let ops = vec![TxOp::Put { item: typing, cond: None }];
    outbox::commit(deps, ops, &started).await?;

    // The provider, timed.
    let clock = Instant::now();
    let limit = Duration::from_secs(cfg.timeout_secs);
    let answer = match tokio::time::timeout(limit, provider.reply(&conversation(&s, &cfg.name))).await {
        Ok(Ok(text)) => {
            let text: String = text.trim().chars().take(MAX_CONTENT).collect();
            if text.is_empty() {
                Err(ProviderError::Empty)
            } else {
                Ok(text)
            }
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ProviderError::Timeout(limit)),
    };
    let response_time_ms = clock.elapsed().as_millis() as u64;
    let text = match answer {
        Ok(text) => text,
        Err(e) => {
            tracing::warn!(chat_id, request_id = %req.request_id, error = %e, "assistant request failed");
            fail(deps, provider, &req, e.code(), &e.to_string(), response_time_ms, &cause).await?;
            return Ok(Outcome::Failed(e.to_string()));
        }
    };

    let out = Outgoing {
        speaker: Speaker::Assistant,
        content: text,
        client_message_id: Some(cmid),
        ai_request_id: Some(&req.request_id),
    };
    let (provider_name, model) = (provider.name().to_string(), provider.model().to_string());
    let completed = |m: &MessageStored| {
        vec![Envelope::new(
            Event::AiCompleted(AiCompleted {
                chat_id: m.chat_id.clone(),
                request_id: req.request_id.clone(),
                message_id: m.id.clone(),
                provider: provider_name.clone(),
                model: model.clone(),
                response_time_ms,
                total_time_ms: (m.created_at - req.requested_at).num_milliseconds().max(0) as u64,
                completed_at: m.created_at,
            }),
            &cause,
        )]
    };
    match messages::store(deps, chat_id, out, &cause, completed).await {
        Ok((m, _)) => Ok(Outcome::Replied(m)),
        // The turn moved on while the provider worked (timeout, settings change).
        Err(ChatError::Conflict { code, message }) => {
            fail(deps, provider, &req, "turn_moved_on", &message, response_time_ms, &cause).await?;
            tracing::info!(chat_id, code, "assistant reply dropped");
            Ok(Outcome::Failed(message))
        }
        Err(e) => Err(e),
    }
}

/// `chat.ai.failed`: typing off and, when the turn still waits for this request, the turn
/// moves on as if the assistant had answered.
async fn fail(
    deps: &Deps,
    provider: &dyn Provider,
    req: &AiRequested,
    code: &str,
    error: &str,
    response_time_ms: u64,
    cause: &Cause,
) -> Result<(), ChatError> {
    let chat_id = req.chat_id.as_str();
    for attempt in 0..4 {
        let Some(s) = session::load(deps, chat_id, 0).await? else {
            return Ok(());
        };
        let now = Utc::now();
        let mut events = vec![Envelope::new(
            Event::AiFailed(AiFailed {
                chat_id: chat_id.into(),
                request_id: req.request_id.clone(),
                provider: provider.name().into(),
                code: code.into(),
                error: error.chars().take(300).collect(),
                response_time_ms,
                failed_at: now,
            }),
            cause,
        )];
        let mut ops = Vec::new();
        if s.typing_of(turns::ASSISTANT_ID).is_some() {
            ops.push(TxOp::Delete {
                pk: keys::chat(chat_id),
                sk: keys::typing(turns::ASSISTANT_ID),
                cond: None,
            });
            let off = Typing {
                chat_id: chat_id.into(),
                user_id: turns::ASSISTANT_ID.into(),
                display_name: deps.config.chat.assistant.name.clone(),
                is_typing: false,
                expires_at: None,
            };
            events.push(messages::typing_event(Speaker::Assistant, off, cause));
        }
        let waiting = s.turn.waits_for_assistant() && s.turn.ai_request_id.as_deref() == Some(req.request_id.as_str());
        if waiting {
            if let Some(next) = turns::advance(&s.turn, s.meta.settings.assistant_enabled, &s.members, Speaker::Assistant, now) {
                ops.push(turn_op(chat_id, &s, &next));
                events.push(turn_event(chat_id, &next, cause));
            }
        }
        match outbox::commit(deps, ops, &events).await {
            Ok(_) => {
                return Ok(());
            }
            Err(TableError::TransactionCanceled { .. }) | Err(TableError::Transient(_)) => crate::retry::CONTENDED.sleep(attempt).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ChatError::Busy("the turn kept changing while failing the request".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_builtin_provider_is_deterministic() {
        let c = Conversation {
            chat_title: "t".into(),
            messages: vec![ConversationMessage {
                role: "user".into(),
                name: "Alice".into(),
                content: "hello there".into(),
            }],
        };
        let p = Builtin { delay: Duration::ZERO };
        let a = p.reply(&c).await.unwrap();
        assert_eq!(a, p.reply(&c).await.unwrap());
        assert_eq!(a, "Alice, you said: \"hello there\" (2 words; message 1 of this conversation).");
    }
}
