//! Turns, as pure functions of the session: who may speak now, and who is next after a
//! message. The state lives in one item (`S#TURN`) whose `version` guards every change
//! (a send writes the next turn only if nobody moved it meanwhile).
//!
//! * `free`: anyone speaks at any time; there is no turn to move (no `chat.turn.changed`).
//!   With the assistant on, it answers every user message.
//! * `round_robin`: the participants in join order, then the assistant when it is on; round
//!   after round. At the start (and after a settings change) any user may open.
//! * `user_then_assistant`: every user message is answered by the assistant; after its
//!   answer the next user in join order speaks.
//!
//! The assistant's turn never blocks a chat: a failed request moves the turn on like an
//! answer would, and a turn left waiting longer than the assistant's turn timeout lets
//! users speak again.

use super::error::ChatError;
use super::{Participant, TurnMode};
use crate::keys;
use crate::ports::Item;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The assistant's participant id (reserved: no person may use it).
pub const ASSISTANT_ID: &str = "assistant";
pub const ROLE_USER: &str = "user";
pub const ROLE_ASSISTANT: &str = "assistant";

/// Who is speaking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker<'a> {
    User(&'a str),
    Assistant,
}

impl Speaker<'_> {
    pub fn id(&self) -> &str {
        match self {
            Speaker::User(u) => u,
            Speaker::Assistant => ASSISTANT_ID,
        }
    }
    pub fn role(&self) -> &'static str {
        match self {
            Speaker::User(_) => ROLE_USER,
            Speaker::Assistant => ROLE_ASSISTANT,
        }
    }
}

/// The turn state (the `S#TURN` item).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Turn {
    pub mode: TurnMode,
    /// Who speaks next; None when any user may.
    pub next_user_id: Option<String>,
    /// `user` or `assistant`; None in `free` mode.
    pub next_role: Option<String>,
    pub since: DateTime<Utc>,
    #[serde(default)]
    pub version: i64,
    /// The last user who spoke (the assistant's answer goes back to the rotation after them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_user_id: Option<String>,
    /// The assistant request the turn waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_request_id: Option<String>,
}

impl Turn {
    /// The turn of a new chat, or after a settings change: any user may open.
    pub fn initial(mode: TurnMode, version: i64, now: DateTime<Utc>) -> Self {
        Self {
            mode,
            next_user_id: None,
            next_role: (mode != TurnMode::Free).then(|| ROLE_USER.to_string()),
            since: now,
            version,
            last_user_id: None,
            ai_request_id: None,
        }
    }

    pub fn from_item(item: &Item) -> Option<Self> {
        serde_json::from_value(Value::Object(item.attrs.clone())).ok()
    }

    pub fn item(&self, chat_id: &str) -> Item {
        let mut item = Item::new(keys::chat(chat_id), keys::TURN);
        if let Ok(Value::Object(attrs)) = serde_json::to_value(self) {
            item.attrs = attrs;
        }
        item
    }

    pub fn waits_for_assistant(&self) -> bool {
        self.next_role.as_deref() == Some(ROLE_ASSISTANT)
    }
}

fn not_your_turn(message: String) -> ChatError {
    ChatError::conflict("not_your_turn", message)
}

/// Whether `speaker` may send now; 409 `not_your_turn` (saying whose turn it is) if not.
pub fn check(turn: &Turn, speaker: Speaker<'_>, now: DateTime<Utc>, assistant_turn_timeout_secs: i64) -> Result<(), ChatError> {
    if turn.mode == TurnMode::Free {
        return Ok(());
    }
    match speaker {
        Speaker::Assistant if turn.waits_for_assistant() => Ok(()),
        Speaker::Assistant => Err(not_your_turn("the turn moved on; the assistant is not expected to answer".into())),
        Speaker::User(_) if turn.waits_for_assistant() => {
            if (now - turn.since).num_seconds() >= assistant_turn_timeout_secs {
                Ok(()) // the assistant took too long: the chat goes on without it
            } else {
                Err(not_your_turn("it is the assistant's turn".into()))
            }
        }
        Speaker::User(u) => match turn.next_user_id.as_deref() {
            None => Ok(()),
            Some(next) if next == u => Ok(()),
            Some(next) => Err(not_your_turn(format!("it is {next}'s turn"))),
        },
    }
}

/// The people of a chat in turn order: join order, then user id.
pub fn rotation(members: &[Participant]) -> Vec<&str> {
    let mut m: Vec<&Participant> = members.iter().collect();
    m.sort_by(|a, b| a.joined_at.cmp(&b.joined_at).then_with(|| a.user_id.cmp(&b.user_id)));
    m.into_iter().map(|p| p.user_id.as_str()).collect()
}

/// The turn after `speaker` spoke (or, for the assistant, failed to): None when the mode
/// has no turns. A new turn of the assistant carries a fresh request id.
pub fn advance(turn: &Turn, assistant_enabled: bool, members: &[Participant], speaker: Speaker<'_>, now: DateTime<Utc>) -> Option<Turn> {
    let people = rotation(members);
    let after = |list: &[&str], who: Option<&str>| -> Option<String> {
        if list.is_empty() {
            return None;
        }
        let i = who.and_then(|w| list.iter().position(|x| *x == w));
        Some(match i {
            Some(i) => list[(i + 1) % list.len()].to_string(),
            None => list[0].to_string(),
        })
    };
    let next = match turn.mode {
        TurnMode::Free => return None,
        TurnMode::RoundRobin => {
            let mut order = people.clone();
            if assistant_enabled {
                order.push(ASSISTANT_ID);
            }
            after(&order, Some(speaker.id()))?
        }
        TurnMode::UserThenAssistant => match speaker {
            Speaker::User(_) if assistant_enabled => ASSISTANT_ID.to_string(),
            Speaker::User(u) => after(&people, Some(u))?,
            Speaker::Assistant => after(&people, turn.last_user_id.as_deref())?,
        },
    };
    let to_assistant = next == ASSISTANT_ID;
    Some(Turn {
        mode: turn.mode,
        next_role: Some(if to_assistant { ROLE_ASSISTANT } else { ROLE_USER }.to_string()),
        next_user_id: Some(next),
        since: now,
        version: turn.version + 1,
        last_user_id: match speaker {
            Speaker::User(u) => Some(u.to_string()),
            Speaker::Assistant => turn.last_user_id.clone(),
        },
        ai_request_id: to_assistant.then(|| ulid::Ulid::new().to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn members(ids: &[&str]) -> Vec<Participant> {
        let t0 = Utc::now();
        ids.iter()
            .enumerate()
            .map(|(i, id)| Participant {
                chat_id: "C".into(),
                user_id: id.to_string(),
                display_name: id.to_string(),
                role: "participant".into(),
                joined_at: t0 + Duration::seconds(i as i64),
            })
            .collect()
    }

    /// Plays `speakers` from the initial turn; the sequence of `next_user_id`s.
    fn play(mode: TurnMode, assistant: bool, ids: &[&str], speakers: &[&str]) -> Result<Vec<String>, String> {
        let m = members(ids);
        let mut turn = Turn::initial(mode, 1, Utc::now());
        let mut out = Vec::new();
        for s in speakers {
            let sp = if *s == ASSISTANT_ID { Speaker::Assistant } else { Speaker::User(s) };
            check(&turn, sp, Utc::now(), 60).map_err(|e| format!("{s}: {e}"))?;
            if let Some(next) = advance(&turn, assistant, &m, sp, Utc::now()) {
                assert_eq!(next.version, turn.version + 1);
                assert_eq!(next.ai_request_id.is_some(), next.waits_for_assistant());
                turn = next;
            }
            out.push(turn.next_user_id.clone().unwrap_or_default());
        }
        Ok(out)
    }

    #[test]
    fn free_mode_has_no_turns() {
        assert_eq!(play(TurnMode::Free, true, &["a", "b"], &["a", "a", "b"]).unwrap(), vec!["", "", ""]);
    }

    #[test]
    fn round_robin_goes_round_in_join_order_with_the_assistant_last() {
        assert_eq!(
            play(TurnMode::RoundRobin, false, &["a", "b", "c"], &["b", "c", "a", "b"]).unwrap(),
            vec!["c", "a", "b", "c"]
        );
        assert_eq!(
            play(TurnMode::RoundRobin, true, &["a", "b"], &["a", "b", "assistant", "a"]).unwrap(),
            vec!["b", "assistant", "a", "b"]
        );
        let err = play(TurnMode::RoundRobin, false, &["a", "b"], &["a", "a"]).unwrap_err();
        assert!(err.contains("b's turn"), "{err}");
    }

    #[test]
    fn user_then_assistant_alternates_and_users_take_turns() {
        let ids = ["a", "b"];
        assert_eq!(
            play(TurnMode::UserThenAssistant, true, &ids, &["a", "assistant", "b", "assistant", "a"]).unwrap(),
            vec!["assistant", "b", "assistant", "a", "assistant"]
        );
        assert!(play(TurnMode::UserThenAssistant, true, &ids, &["a", "b"])
            .unwrap_err()
            .contains("assistant's turn"));
        assert!(play(TurnMode::UserThenAssistant, true, &ids, &["a", "assistant", "a"])
            .unwrap_err()
            .contains("b's turn"));
        // The assistant speaks only when asked.
        assert!(play(TurnMode::UserThenAssistant, true, &ids, &["assistant"]).is_err());
    }

    #[test]
    fn a_waiting_assistant_turn_times_out() {
        let m = members(&["a", "b"]);
        let t0 = Utc::now();
        let turn = Turn::initial(TurnMode::UserThenAssistant, 1, t0);
        let waiting = advance(&turn, true, &m, Speaker::User("a"), t0).unwrap();
        assert!(check(&waiting, Speaker::User("b"), t0 + Duration::seconds(10), 60).is_err());
        assert!(check(&waiting, Speaker::User("b"), t0 + Duration::seconds(61), 60).is_ok());
        // A failed answer moves on like an answer.
        let after = advance(&waiting, true, &m, Speaker::Assistant, t0).unwrap();
        assert_eq!(
            (after.next_user_id.as_deref(), after.next_role.as_deref()),
            (Some("b"), Some(ROLE_USER))
        );
    }

    #[test]
    fn the_turn_item_round_trips() {
        let t = Turn::initial(TurnMode::RoundRobin, 3, Utc::now());
        assert_eq!(Turn::from_item(&t.item("C1")), Some(t));
    }
}
