//! The analytics extension. Its event function (`ext-analytics`, invoked by its own
//! EventBridge rule) records one row per event it cares about under `ANALYTICS#{chatId}`;
//! `GET /api/chat/{chatId}/analytics` computes the figures from the rows (JSON or CSV).
//!
//! Rows are keyed by what they describe (the message id, the request id, the event id), so
//! a redelivered event rewrites the same row: counts never double. Every row carries a TTL
//! (`ANALYTICS_RETENTION_DAYS`); reads drop expired rows.
//!
//! | row (sk) | from | holds |
//! |---|---|---|
//! | `MSG#{time}#{id}` | `chat.message.stored` | sender, role, length |
//! | `AI#{requestId}` | `chat.ai.completed` / `chat.ai.failed` | outcome, response time, reply id |
//! | `REJ#{eventId}` | `chat.message.rejected` | sender |

use super::error::ChatError;
use super::extensions::Extension;
use super::session::{self, Meta};
use super::ts;
use crate::auth::Claims;
use crate::deps::Deps;
use crate::events::{Envelope, Event};
use crate::ids::ChatId;
use crate::keys;
use crate::ports::table::{now_epoch, query_all};
use crate::ports::{Item, Query, TableError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// What the extension did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Row,
    /// Analytics was off for the chat when the event occurred.
    Disabled,
    /// Not an event analytics records, or its chat is gone.
    Ignored,
}

fn chat_of(e: &Envelope) -> Option<String> {
    e.chat_id
        .clone()
        .or_else(|| e.data.get("chatId").and_then(|v| v.as_str()).map(str::to_string))
        .filter(|id| crate::ids::valid_id(id))
}

/// Records one event (the extension's event function calls this).
pub async fn record(deps: &Deps, e: &Envelope) -> Result<Recorded, TableError> {
    let Some(event) = e.typed() else {
        return Ok(Recorded::Ignored);
    };
    if !matches!(
        event,
        Event::MessageStored(_) | Event::MessageRejected(_) | Event::AiCompleted(_) | Event::AiFailed(_)
    ) {
        return Ok(Recorded::Ignored);
    }
    let Some(chat_id) = chat_of(e) else {
        return Ok(Recorded::Ignored);
    };
    let Some(meta) = deps.table.get(&keys::chat(&chat_id), keys::CHAT_META).await? else {
        return Ok(Recorded::Ignored);
    };
    if !Meta::from_item(&meta).extension_on(Extension::Analytics, e.occurred_at) {
        return Ok(Recorded::Disabled);
    }
    let pk = keys::analytics(&chat_id);
    let ttl = now_epoch() + deps.config.chat.analytics_retention_secs;
    let row = match event {
        Event::MessageStored(m) => Item::new(pk, keys::msg(&ts(m.created_at), &m.id))
            .with("messageId", m.id.as_str())
            .with("senderId", m.sender_id.as_str())
            .with("senderRole", m.sender_role.as_str())
            .with("length", m.content.chars().count() as i64)
            .with("createdAt", ts(m.created_at)),
        Event::AiCompleted(a) => Item::new(pk, format!("AI#{}", a.request_id))
            .with("outcome", "completed")
            .with("messageId", a.message_id.as_str())
            .with("responseTimeMs", a.response_time_ms as i64)
            .with("at", ts(a.completed_at)),
        Event::AiFailed(a) => Item::new(pk, format!("AI#{}", a.request_id))
            .with("outcome", "failed")
            .with("code", a.code.as_str())
            .with("responseTimeMs", a.response_time_ms as i64)
            .with("at", ts(a.failed_at)),
        Event::MessageRejected(r) => Item::new(pk, format!("REJ#{}", e.id))
            .with("senderId", r.sender_id.as_str())
            .with("at", ts(r.rejected_at)),
        _ => return Ok(Recorded::Ignored),
    };
    deps.table.put(row.with_ttl(ttl), None).await?;
    Ok(Recorded::Row)
}

// ---------------------------------------------------------------- the report

/// One message as analytics saw it (a CSV row).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageRow {
    pub message_id: String,
    pub created_at: DateTime<Utc>,
    pub sender_id: String,
    pub sender_role: String,
    pub length: u64,
    /// Since the previous message, when the speaker changed (how long the turn took).
    pub turn_duration_ms: Option<u64>,
    /// For the assistant's replies: how long its provider took.
    pub response_time_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SenderFigures {
    pub sender_id: String,
    pub sender_role: String,
    pub messages: u64,
    pub characters: u64,
    pub average_length: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageFigures {
    pub total: u64,
    pub from_users: u64,
    pub from_assistant: u64,
    pub rejected: u64,
    pub characters: u64,
    pub average_length: f64,
    pub by_sender: Vec<SenderFigures>,
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnFigures {
    pub count: u64,
    pub average_duration_ms: f64,
    pub max_duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssistantFigures {
    pub responses: u64,
    pub failures: u64,
    pub average_response_ms: f64,
    pub min_response_ms: u64,
    pub max_response_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompletionFigures {
    pub participants: u64,
    pub completed: u64,
    /// `completed / participants` (0 when nobody is in the chat).
    pub rate: f64,
    pub ready: bool,
}

/// `GET /api/chat/{chatId}/analytics?format=json`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub chat_id: String,
    /// Whether the extension is on now (figures cover the periods it was on).
    pub enabled: bool,
    pub retention_days: i64,
    pub messages: MessageFigures,
    pub turns: TurnFigures,
    pub assistant: AssistantFigures,
    pub completion: CompletionFigures,
    pub rows: Vec<MessageRow>,
    pub generated_at: DateTime<Utc>,
}

fn avg(sum: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        (sum as f64 / n as f64 * 100.0).round() / 100.0
    }
}

/// The figures of a chat, for its participants (and admins).
pub async fn report(deps: &Deps, user: &Claims, chat_id: &ChatId) -> Result<Report, ChatError> {
    let s = session::require(deps, chat_id, 0).await?;
    if s.member(&user.sub).is_none() && !user.roles.contains(&crate::auth::Role::Admin) {
        return Err(ChatError::Forbidden(format!("not a participant of chat {chat_id}")));
    }
    let items = query_all(deps.table.as_ref(), Query::new(keys::analytics(chat_id))).await?;
    let (mut rows, mut rejected) = (Vec::new(), 0u64);
    let mut ai: BTreeMap<String, u64> = BTreeMap::new(); // reply id → response time
    let (mut responses, mut failures, mut response_times) = (0u64, 0u64, Vec::new());
    for i in &items {
        if i.sk.starts_with(keys::MSG_PREFIX) {
            rows.push(MessageRow {
                message_id: i.str("messageId").unwrap_or_default().to_string(),
                created_at: i.str("createdAt").and_then(|t| t.parse().ok()).unwrap_or_default(),
                sender_id: i.str("senderId").unwrap_or_default().to_string(),
                sender_role: i.str("senderRole").unwrap_or_default().to_string(),
                length: i.i64("length").unwrap_or(0).max(0) as u64,
                turn_duration_ms: None,
                response_time_ms: None,
            });
        } else if i.sk.starts_with("AI#") {
            let ms = i.i64("responseTimeMs").unwrap_or(0).max(0) as u64;
            if i.str("outcome") == Some("completed") {
                responses += 1;
                response_times.push(ms);
                if let Some(m) = i.str("messageId") {
                    ai.insert(m.to_string(), ms);
                }
            } else {
                failures += 1;
            }
        } else if i.sk.starts_with("REJ#") {
            rejected += 1;
        }
    }
    // Rows sort by time (their sort key); a turn is the time to the next speaker's message.
    let mut turns = Vec::new();
    for k in 0..rows.len() {
        if k > 0 && rows[k].sender_id != rows[k - 1].sender_id {
            let ms = (rows[k].created_at - rows[k - 1].created_at).num_milliseconds().max(0) as u64;
            rows[k].turn_duration_ms = Some(ms);
            turns.push(ms);
        }
        rows[k].response_time_ms = ai.get(&rows[k].message_id).copied();
    }
    let mut by_sender: BTreeMap<&str, SenderFigures> = BTreeMap::new();
    for r in &rows {
        let f = by_sender.entry(&r.sender_id).or_insert_with(|| SenderFigures {
            sender_id: r.sender_id.clone(),
            sender_role: r.sender_role.clone(),
            messages: 0,
            characters: 0,
            average_length: 0.0,
        });
        f.messages += 1;
        f.characters += r.length;
    }
    let by_sender: Vec<SenderFigures> = by_sender
        .into_values()
        .map(|mut f| {
            f.average_length = avg(f.characters, f.messages);
            f
        })
        .collect();
    let characters: u64 = rows.iter().map(|r| r.length).sum();
    let from_assistant = rows.iter().filter(|r| r.sender_role == super::turns::ROLE_ASSISTANT).count() as u64;
    let completed = s.members.iter().filter(|m| s.has_completed(&m.user_id)).count() as u64;
    let participants = s.members.len() as u64;
    Ok(Report {
        chat_id: chat_id.into(),
        enabled: s.meta.settings.has(Extension::Analytics),
        retention_days: deps.config.chat.analytics_retention_secs / 86_400,
        messages: MessageFigures {
            total: rows.len() as u64,
            from_users: rows.len() as u64 - from_assistant,
            from_assistant,
            rejected,
            characters,
            average_length: avg(characters, rows.len() as u64),
            by_sender,
        },
        turns: TurnFigures {
            count: turns.len() as u64,
            average_duration_ms: avg(turns.iter().sum(), turns.len() as u64),
            max_duration_ms: turns.iter().copied().max().unwrap_or(0),
        },
        assistant: AssistantFigures {
            responses,
            failures,
            average_response_ms: avg(response_times.iter().sum(), responses),
            min_response_ms: response_times.iter().copied().min().unwrap_or(0),
            max_response_ms: response_times.iter().copied().max().unwrap_or(0),
        },
        completion: CompletionFigures {
            participants,
            completed,
            rate: if participants == 0 {
                0.0
            } else {
                (completed as f64 / participants as f64 * 1000.0).round() / 1000.0
            },
            ready: s.ready_at.is_some(),
        },
        rows,
        generated_at: Utc::now(),
    })
}

/// A CSV field, quoted when it must be (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub const CSV_HEADER: &str = "messageId,createdAt,senderId,senderRole,length,turnDurationMs,responseTimeMs";

impl Report {
    /// One line per message, oldest first, under [`CSV_HEADER`].
    pub fn to_csv(&self) -> String {
        let mut out = String::from(CSV_HEADER);
        out.push_str("\r\n");
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        for r in &self.rows {
            let line = [
                csv_field(&r.message_id),
                csv_field(&ts(r.created_at)),
                csv_field(&r.sender_id),
                csv_field(&r.sender_role),
                r.length.to_string(),
                opt(r.turn_duration_ms),
                opt(r.response_time_ms),
            ]
            .join(",");
            out.push_str(&line);
            out.push_str("\r\n");
        }
        out
    }
}
