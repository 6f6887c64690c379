//! The chat domain on the embedded adapters (in-memory table, a bus without rules whose
//! tap shows every published event).

use chrono::Utc;
use realtime_domain::auth::Claims;
use realtime_domain::chat::*;
use realtime_domain::error::ApiError;
use realtime_domain::events::{Cause, Envelope, Event};
use realtime_domain::ids::ChatId;
use realtime_domain::keys;

use async_trait::async_trait;
use realtime_domain::chat::assistant::{self, Builtin, Conversation, Outcome, Provider, ProviderError};
use realtime_domain::chat::settings::SettingsPatch;
use realtime_domain::events::MessageStored;
use realtime_embedded::testing::{embedded, Embedded};
use serde_json::Value;
use std::time::Duration;
use tokio::sync::broadcast::Receiver;

/// How the API answers a chat refusal (the mapping is `From<ChatError> for ApiError`).
trait Answered {
    fn status(&self) -> u16;
    fn code(&self) -> &'static str;
}

impl Answered for ChatError {
    fn status(&self) -> u16 {
        ApiError::from(self.clone()).status()
    }
    fn code(&self) -> &'static str {
        ApiError::from(self.clone()).code()
    }
}

const SECRET: &str = "chat-tests-secret-0123456789";

fn claims(sub: &str) -> Claims {
    Claims {
        sub: sub.into(),
        roles: vec![],
        name: Some(sub.to_uppercase()),
        exp: i64::MAX,
    }
}

fn cause() -> Cause {
    Cause::default()
}

fn settings(mode: TurnMode, assistant: bool, extensions: &[&str]) -> ChatSettings {
    ChatSettings {
        turn_mode: mode,
        assistant_enabled: assistant,
        extensions: extensions.iter().map(|e| e.to_string()).collect(),
        blocklist: vec![],
    }
}

/// A chat of alice (organizer) with bob and carol.
async fn chat(e: &Embedded, s: ChatSettings) -> ChatId {
    let view = create(
        &e.deps,
        &claims("alice"),
        CreateChat {
            title: "test".into(),
            settings: Some(s),
        },
        &cause(),
    )
    .await
    .unwrap();
    for u in ["bob", "carol"] {
        join(&e.deps, &claims(u), &view.chat_id, JoinChat { display_name: u.into() }, &cause())
            .await
            .unwrap();
    }
    view.chat_id
}

async fn say(e: &Embedded, chat_id: &str, who: &str, text: &str) -> Result<MessageStored, ChatError> {
    let req = SendMessage {
        content: text.into(),
        client_message_id: None,
    };
    send(&e.deps, &claims(who), &chat_id.parse().unwrap(), req, &cause())
        .await
        .map(|(m, _)| m)
}

/// The events published so far (type, data).
fn drain(tap: &mut Receiver<Value>) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    while let Ok(ev) = tap.try_recv() {
        out.push((ev["detail-type"].as_str().unwrap_or_default().to_string(), ev["detail"].clone()));
    }
    out
}

fn types(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(t, _)| t.as_str()).collect()
}

fn request_of(events: &[(String, Value)]) -> Envelope {
    let (_, detail) = events.iter().find(|(t, _)| t == "chat.ai.requested").expect("an ai request");
    serde_json::from_value(detail.clone()).unwrap()
}

fn instant() -> Builtin {
    Builtin { delay: Duration::ZERO }
}

#[tokio::test]
async fn user_then_assistant_turns_advance_and_the_assistant_answers() {
    let e = embedded(SECRET);
    let mut tap = e.bus.tap();
    let c = chat(&e, settings(TurnMode::UserThenAssistant, true, &[])).await;
    drain(&mut tap);

    let m1 = say(&e, &c, "bob", "hello everyone").await.unwrap();
    let ev = drain(&mut tap);
    assert_eq!(types(&ev), vec!["chat.message.stored", "chat.turn.changed", "chat.ai.requested"]);
    assert_eq!(ev[1].1["data"]["nextUserId"], "assistant");
    assert_eq!(ev[1].1["data"]["nextRole"], "assistant");
    // Nobody speaks over the assistant.
    let err = say(&e, &c, "carol", "me too").await.unwrap_err();
    assert_eq!((err.status(), err.code()), (409, "not_your_turn"));

    let request = request_of(&ev);
    assert_eq!(request.data["messageId"], m1.id.as_str());
    let Outcome::Replied(reply) = assistant::respond(&e.deps, &instant(), &request).await.unwrap() else {
        panic!("no reply")
    };
    assert_eq!((reply.sender_id.as_str(), reply.sender_role.as_str()), ("assistant", "assistant"));
    assert!(reply.content.contains("hello everyone"), "{}", reply.content);
    let ev = drain(&mut tap);
    assert_eq!(
        types(&ev),
        vec![
            "chat.ai.started",
            "chat.typing.assistant",
            "chat.message.stored",
            "chat.ai.completed",
            "chat.turn.changed",
            // `low`: not logged, published by the writer after its commit.
            "chat.typing.assistant"
        ]
    );
    assert_eq!(
        (ev[1].1["priority"].as_str(), ev[1].1["data"]["isTyping"].as_bool()),
        (Some("low"), Some(true))
    );
    assert_eq!(ev[5].1["data"]["isTyping"], false);
    // After bob and the assistant, carol (next in join order).
    assert_eq!(ev[4].1["data"]["nextUserId"], "carol");
    assert!(ev[3].1["data"]["responseTimeMs"].is_u64());
    assert_eq!(ev[3].1["data"]["messageId"], reply.id.as_str());

    // A redelivered request stores nothing twice.
    assert!(matches!(
        assistant::respond(&e.deps, &instant(), &request).await.unwrap(),
        Outcome::Skipped(_)
    ));
    assert!(drain(&mut tap).is_empty());
    assert_eq!(say(&e, &c, "bob", "again").await.unwrap_err().code(), "not_your_turn");
    say(&e, &c, "carol", "my turn").await.unwrap();

    let state = session::state(&e.deps, &claims("alice"), &c).await.unwrap();
    assert_eq!(state.recent_messages.len(), 3);
    assert_eq!(state.turn.next_user_id.as_deref(), Some("assistant"));
    assert_eq!(state.participants.len(), 4, "three people and the assistant");
    assert!(state.typing.is_empty());
}

struct Broken;

#[async_trait]
impl Provider for Broken {
    fn name(&self) -> &str {
        "broken"
    }
    fn model(&self) -> &str {
        "none"
    }
    async fn reply(&self, _: &Conversation) -> Result<String, ProviderError> {
        Err(ProviderError::Failed("boom".into()))
    }
}

#[tokio::test]
async fn a_failed_assistant_request_does_not_leave_the_turn_stuck() {
    let e = embedded(SECRET);
    let mut tap = e.bus.tap();
    let c = chat(&e, settings(TurnMode::UserThenAssistant, true, &[])).await;
    say(&e, &c, "alice", "question?").await.unwrap();
    let request = request_of(&drain(&mut tap));
    assert!(matches!(
        assistant::respond(&e.deps, &Broken, &request).await.unwrap(),
        Outcome::Failed(_)
    ));
    let ev = drain(&mut tap);
    assert_eq!(
        types(&ev),
        vec![
            "chat.ai.started",
            "chat.typing.assistant",
            "chat.ai.failed",
            "chat.turn.changed",
            "chat.typing.assistant"
        ]
    );
    assert_eq!(ev[2].1["data"]["code"], "provider_error");
    assert_eq!(ev[3].1["data"]["nextUserId"], "bob");
    say(&e, &c, "bob", "then I go on").await.unwrap();
    let state = session::state(&e.deps, &claims("bob"), &c).await.unwrap();
    assert!(state.typing.is_empty());
}

#[tokio::test]
async fn free_mode_lets_anyone_speak_and_the_assistant_answers_each_user_message() {
    let e = embedded(SECRET);
    let mut tap = e.bus.tap();
    let c = chat(&e, settings(TurnMode::Free, true, &[])).await;
    drain(&mut tap);
    say(&e, &c, "bob", "one").await.unwrap();
    say(&e, &c, "bob", "two").await.unwrap();
    let ev = drain(&mut tap);
    assert_eq!(
        types(&ev),
        vec![
            "chat.message.stored",
            "chat.ai.requested",
            "chat.message.stored",
            "chat.ai.requested"
        ]
    );
    let Outcome::Replied(r) = assistant::respond(&e.deps, &instant(), &request_of(&ev)).await.unwrap() else {
        panic!()
    };
    assert!(
        !types(&drain(&mut tap)).contains(&"chat.ai.requested"),
        "the assistant does not answer itself"
    );
    assert_eq!(r.sender_role, "assistant");
}

#[tokio::test]
async fn round_robin_follows_join_order_and_retried_sends_are_idempotent() {
    let e = embedded(SECRET);
    let c = chat(&e, settings(TurnMode::RoundRobin, false, &[])).await;
    say(&e, &c, "alice", "1").await.unwrap();
    assert_eq!(say(&e, &c, "carol", "x").await.unwrap_err().code(), "not_your_turn");
    let req = || SendMessage {
        content: "2".into(),
        client_message_id: Some("b-2".into()),
    };
    let (m, created) = send(&e.deps, &claims("bob"), &c, req(), &cause()).await.unwrap();
    assert!(created);
    // The retry lands after the turn moved on, and still answers the stored message.
    let (again, created) = send(&e.deps, &claims("bob"), &c, req(), &cause()).await.unwrap();
    assert_eq!((again.id, created), (m.id, false));
    say(&e, &c, "carol", "3").await.unwrap();
    say(&e, &c, "alice", "4").await.unwrap();
    let err = say(&e, &c, "mallory", "hi").await.unwrap_err();
    assert_eq!(err.status(), 403);
}

#[tokio::test]
async fn concurrent_sends_never_break_the_rotation() {
    let e = embedded(SECRET);
    let c = chat(&e, settings(TurnMode::RoundRobin, false, &[])).await;
    // Anyone may open; all three try at once, twice. Whoever gets in, the stored order
    // follows the rotation (a loser starts over on the new turn: in if it is now theirs).
    let order = ["alice", "bob", "carol"];
    for _ in 0..2 {
        let results = futures::future::join_all(order.map(|u| say(&e, &c, u, "hi"))).await;
        assert!(
            results.iter().filter_map(|r| r.as_ref().err()).all(|e| e.code() == "not_your_turn"),
            "{results:?}"
        );
    }
    let mut senders: Vec<String> = history(&e.deps, &claims("alice"), &c, None, None)
        .await
        .unwrap()
        .messages
        .into_iter()
        .map(|m| m.sender_id)
        .collect();
    senders.reverse();
    assert!(!senders.is_empty());
    for pair in senders.windows(2) {
        let i = order.iter().position(|u| *u == pair[0]).unwrap();
        assert_eq!(pair[1], order[(i + 1) % 3], "{senders:?}");
    }
}

#[tokio::test]
async fn moderation_rejects_before_storage_and_tells_the_sender() {
    let e = embedded(SECRET);
    let mut tap = e.bus.tap();
    let mut s = settings(TurnMode::Free, false, &["moderation"]);
    s.blocklist = vec!["Spam".into()];
    let c = chat(&e, s).await;
    drain(&mut tap);
    let err = say(&e, &c, "bob", "buy SPAM now").await.unwrap_err();
    assert_eq!((err.status(), err.code()), (422, "message_rejected"));
    assert!(err.to_string().contains("\"spam\""), "{err}");
    let ev = drain(&mut tap);
    assert_eq!(types(&ev), vec!["chat.message.rejected"]);
    assert_eq!(ev[0].1["userId"], "bob");
    assert!(ev[0].1.get("chatId").is_none(), "not sent to the chat channel");
    assert!(ev[0].1["data"].get("content").is_none());
    assert!(history(&e.deps, &claims("bob"), &c, None, None).await.unwrap().messages.is_empty());
    // Words that merely contain a term pass; switching moderation off lets anything pass.
    say(&e, &c, "bob", "antispam tools").await.unwrap();
    let off = SettingsPatch {
        extensions: Some(vec![]),
        ..Default::default()
    };
    settings::update(&e.deps, &claims("alice"), &c, off, &cause()).await.unwrap();
    say(&e, &c, "bob", "spam").await.unwrap();
}

#[tokio::test]
async fn typing_lives_until_its_ttl_and_a_send_clears_it() {
    let e = embedded(SECRET);
    let mut tap = e.bus.tap();
    let c = chat(&e, settings(TurnMode::Free, false, &[])).await;
    drain(&mut tap);
    let before = Utc::now();
    let st = typing::set(&e.deps, "bob", &c, true, &cause()).await.unwrap();
    let ttl = e.deps.config.chat.typing_ttl_secs;
    let expires = st.expires_at.unwrap();
    assert!(expires >= before + chrono::Duration::seconds(ttl) && expires <= before + chrono::Duration::seconds(ttl + 1));
    let item = e.deps.table.get(&keys::chat(&c), &keys::typing("bob")).await.unwrap().unwrap();
    assert_eq!(item.ttl(), Some(expires.timestamp()));
    let ev = drain(&mut tap);
    assert_eq!(types(&ev), vec!["chat.typing.user"]);
    assert_eq!(
        (ev[0].1["priority"].as_str(), ev[0].1["data"]["isTyping"].as_bool()),
        (Some("low"), Some(true))
    );
    let state = session::state(&e.deps, &claims("alice"), &c).await.unwrap();
    assert_eq!(state.typing.len(), 1);
    assert_eq!(state.typing[0].display_name, "bob");

    say(&e, &c, "bob", "done typing").await.unwrap();
    let ev = drain(&mut tap);
    assert_eq!(types(&ev), vec!["chat.message.stored", "chat.typing.user"]);
    assert_eq!(ev[1].1["data"]["isTyping"], false);
    assert!(session::state(&e.deps, &claims("alice"), &c).await.unwrap().typing.is_empty());

    // An expired indicator is not reported, and clearing it announces nothing.
    let past = Utc::now() - chrono::Duration::seconds(10);
    let old = typing::typing_item(&c, "carol", "carol", "user", past, 1);
    e.deps.table.put(old, None).await.unwrap();
    assert!(session::state(&e.deps, &claims("alice"), &c).await.unwrap().typing.is_empty());
    assert_eq!(typing::clear_user(&e.deps, "carol", &cause()).await.unwrap(), 0);
    // A live one is cleared by the user's disconnect.
    typing::set(&e.deps, "carol", &c, true, &cause()).await.unwrap();
    drain(&mut tap);
    assert_eq!(typing::clear_user(&e.deps, "carol", &cause()).await.unwrap(), 1);
    assert_eq!(types(&drain(&mut tap)), vec!["chat.typing.user"]);
    let err = typing::set(&e.deps, "mallory", &c, true, &cause()).await.unwrap_err();
    assert_eq!(err.status(), 403);
    assert_eq!(
        typing::set(&e.deps, "bob", &ChatId::parse("nope").unwrap(), true, &cause())
            .await
            .unwrap_err()
            .status(),
        404
    );
}

#[tokio::test]
async fn completion_ready_is_announced_exactly_once_under_concurrency() {
    let e = embedded(SECRET);
    let mut tap = e.bus.tap();
    let c = chat(&e, settings(TurnMode::Free, false, &[])).await;
    drain(&mut tap);
    let first = completion::complete(&e.deps, &claims("alice"), &c, &cause()).await.unwrap();
    assert_eq!((first.completed_count, first.participant_count, first.ready), (1, 3, false));
    // Completing twice announces nothing.
    completion::complete(&e.deps, &claims("alice"), &c, &cause()).await.unwrap();
    // The last two at once.
    let (bob, carol, why) = (claims("bob"), claims("carol"), cause());
    let (b, c2) = tokio::join!(
        completion::complete(&e.deps, &bob, &c, &why),
        completion::complete(&e.deps, &carol, &c, &why)
    );
    assert!(b.unwrap().ready || c2.unwrap().ready);
    let ev = drain(&mut tap);
    let t = types(&ev);
    assert_eq!(t.iter().filter(|t| **t == "chat.completion.updated").count(), 3);
    assert_eq!(t.iter().filter(|t| **t == "chat.completion.ready").count(), 1);
    // The two completions publish concurrently, so only the ready one's own order is fixed:
    // its update (the third) first, then ready.
    let third = ev
        .iter()
        .position(|(t, d)| t == "chat.completion.updated" && d["data"]["completedCount"] == 3)
        .expect("the third completion's update");
    let ready = t.iter().position(|t| *t == "chat.completion.ready").unwrap();
    assert!(third < ready, "{t:?}");
    let state = session::state(&e.deps, &claims("alice"), &c).await.unwrap();
    assert!(state.completion.ready);
    assert_eq!(state.completion.completed_count, 3);
    assert_eq!(
        completion::complete(&e.deps, &claims("mallory"), &c, &cause())
            .await
            .unwrap_err()
            .status(),
        403
    );
}

#[tokio::test]
async fn history_pages_newest_first() {
    let e = embedded(SECRET);
    let c = chat(&e, settings(TurnMode::Free, false, &[])).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(say(&e, &c, "alice", &format!("m{i}")).await.unwrap().id);
    }
    let p1 = history(&e.deps, &claims("bob"), &c, None, Some("3")).await.unwrap();
    let got: Vec<&str> = p1.messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(got, vec![ids[6].as_str(), &ids[5], &ids[4]]);
    let p2 = history(&e.deps, &claims("bob"), &c, p1.next_before.as_deref(), Some("3"))
        .await
        .unwrap();
    let got: Vec<&str> = p2.messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(got, vec![ids[3].as_str(), &ids[2], &ids[1]]);
    let p3 = history(&e.deps, &claims("bob"), &c, p2.next_before.as_deref(), Some("3"))
        .await
        .unwrap();
    assert_eq!((p3.messages.len(), p3.next_before), (1, None));
    // A timestamp works as a bound too; bad bounds and limits are 400.
    let all = history(&e.deps, &claims("bob"), &c, Some("2999-01-01T00:00:00Z"), Some("100"))
        .await
        .unwrap();
    assert_eq!(all.messages.len(), 7);
    for (before, limit) in [
        (Some("yesterday"), None),
        (Some("2020-01-01T00:00:00Z_a#b"), None),
        (None, Some("0")),
        (None, Some("101")),
    ] {
        assert_eq!(history(&e.deps, &claims("bob"), &c, before, limit).await.unwrap_err().status(), 400);
    }
    assert_eq!(
        history(&e.deps, &claims("mallory"), &c, None, None).await.unwrap_err().status(),
        403
    );
    assert_eq!(
        history(&e.deps, &claims("bob"), &ChatId::parse("nope").unwrap(), None, None)
            .await
            .unwrap_err()
            .status(),
        404
    );
}

#[tokio::test]
async fn the_state_is_one_bounded_query_even_with_a_long_history() {
    let e = embedded(SECRET);
    let c = chat(&e, settings(TurnMode::Free, false, &[])).await;
    for i in 0..(session::RECENT_MESSAGES + 5) {
        say(&e, &c, "bob", &format!("m{i}")).await.unwrap();
    }
    let st = session::state(&e.deps, &claims("alice"), &c).await.unwrap();
    assert_eq!(st.recent_messages.len(), session::RECENT_MESSAGES as usize);
    assert!(st.more_messages);
    assert_eq!(
        st.recent_messages.last().unwrap().content,
        format!("m{}", session::RECENT_MESSAGES + 4)
    );
    assert_eq!(st.recent_messages[0].content, "m5", "oldest first");
    assert_eq!(st.participants.len(), 3);
    assert_eq!(st.title, "test");
}

#[tokio::test]
async fn settings_change_at_runtime_and_restart_the_turn() {
    let e = embedded(SECRET);
    let mut tap = e.bus.tap();
    let c = chat(&e, settings(TurnMode::RoundRobin, false, &[])).await;
    say(&e, &c, "alice", "1").await.unwrap();
    drain(&mut tap);
    let (alice, why) = (claims("alice"), cause());
    let patch = |p: SettingsPatch| settings::update(&e.deps, &alice, &c, p, &why);
    let st = patch(SettingsPatch {
        turn_mode: Some(TurnMode::UserThenAssistant),
        assistant_enabled: Some(true),
        extensions: Some(vec!["analytics".into(), "analytics".into()]),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(st.settings.extensions, vec!["analytics"]);
    assert_eq!(st.turn.next_user_id, None, "any user may open after a change");
    let ev = drain(&mut tap);
    assert_eq!(types(&ev), vec!["chat.settings.updated", "chat.turn.changed"]);
    assert_eq!(
        ev[0].1["data"]["changed"],
        serde_json::json!(["turnMode", "assistantEnabled", "extensions"])
    );
    say(&e, &c, "carol", "anyone may open").await.unwrap();

    for (bad, status) in [
        (SettingsPatch::default(), 400),
        (
            SettingsPatch {
                extensions: Some(vec!["telepathy".into()]),
                ..Default::default()
            },
            400,
        ),
        (
            SettingsPatch {
                assistant_enabled: Some(false),
                ..Default::default()
            },
            400,
        ),
    ] {
        assert_eq!(patch(bad).await.unwrap_err().status(), status);
    }
    let by_bob = settings::update(&e.deps, &claims("bob"), &c, with_blocklist(SettingsPatch::default()), &cause()).await;
    assert_eq!(by_bob.unwrap_err().status(), 403);
}

fn with_blocklist(mut patch: SettingsPatch) -> SettingsPatch {
    patch.blocklist = Some(vec!["x".into()]);
    patch
}

#[tokio::test]
async fn analytics_records_while_enabled_and_exports_csv() {
    let e = embedded(SECRET);
    let mut tap = e.bus.tap();
    let c = chat(&e, settings(TurnMode::Free, true, &["analytics"])).await;
    drain(&mut tap);
    let m1 = say(&e, &c, "bob", "héllo").await.unwrap();
    let ev = drain(&mut tap);
    let Outcome::Replied(reply) = assistant::respond(&e.deps, &instant(), &request_of(&ev)).await.unwrap() else {
        panic!()
    };
    let mut all = ev;
    all.extend(drain(&mut tap));
    // The extension's function sees every event; it records the ones it cares about.
    for (_, detail) in &all {
        let env: Envelope = serde_json::from_value(detail.clone()).unwrap();
        analytics::record(&e.deps, &env).await.unwrap();
        // At least once: a redelivery changes nothing.
        analytics::record(&e.deps, &env).await.unwrap();
    }
    let r = analytics::report(&e.deps, &claims("alice"), &c).await.unwrap();
    assert!(r.enabled);
    assert_eq!((r.messages.total, r.messages.from_users, r.messages.from_assistant), (2, 1, 1));
    assert_eq!(r.messages.by_sender.iter().find(|s| s.sender_id == "bob").unwrap().characters, 5);
    assert_eq!((r.assistant.responses, r.turns.count), (1, 1));
    assert_eq!(r.completion.participants, 3);
    let csv = r.to_csv();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], analytics::CSV_HEADER);
    assert!(
        lines[1].starts_with(&format!("{},", m1.id)) && lines[1].contains(",bob,user,5,,"),
        "{}",
        lines[1]
    );
    assert!(lines[2].starts_with(&format!("{},", reply.id)) && lines[2].contains(",assistant,assistant,"));
    assert_eq!(lines.len(), 3);

    // Off: events from now on are not recorded, even if delivered after it is on again.
    let off = SettingsPatch {
        extensions: Some(vec![]),
        ..Default::default()
    };
    settings::update(&e.deps, &claims("alice"), &c, off, &cause()).await.unwrap();
    drain(&mut tap);
    say(&e, &c, "carol", "unseen").await.unwrap();
    let while_off = drain(&mut tap);
    let on = SettingsPatch {
        extensions: Some(vec!["analytics".into()]),
        ..Default::default()
    };
    settings::update(&e.deps, &claims("alice"), &c, on, &cause()).await.unwrap();
    let stored: Envelope = serde_json::from_value(while_off[0].1.clone()).unwrap();
    assert_eq!(analytics::record(&e.deps, &stored).await.unwrap(), analytics::Recorded::Disabled);
    assert_eq!(analytics::report(&e.deps, &claims("alice"), &c).await.unwrap().messages.total, 2);

    // Retention: rows carry a TTL; an expired row is gone from the figures.
    let row = e
        .deps
        .table
        .query(realtime_domain::ports::Query::new(keys::analytics(&c)))
        .await
        .unwrap();
    assert!(row.items.iter().all(|i| i.ttl().is_some()));
    let mut expired = row.items.iter().find(|i| i.sk.starts_with("MSG#")).unwrap().clone();
    expired
        .attrs
        .insert("ttl".into(), (realtime_domain::ports::table::now_epoch() - 1).into());
    e.deps.table.put(expired, None).await.unwrap();
    assert_eq!(analytics::report(&e.deps, &claims("alice"), &c).await.unwrap().messages.total, 1);
}

#[tokio::test]
async fn joins_are_bounded_and_the_assistant_id_is_reserved() {
    let e = embedded(SECRET);
    let c = chat(&e, settings(TurnMode::Free, false, &[])).await;
    for i in 3..MAX_PARTICIPANTS {
        join(
            &e.deps,
            &claims(&format!("u{i}")),
            &c,
            JoinChat { display_name: "u".into() },
            &cause(),
        )
        .await
        .unwrap();
    }
    // Joining again is harmless even when full; a newcomer is refused.
    join(&e.deps, &claims("bob"), &c, JoinChat { display_name: "b".into() }, &cause())
        .await
        .unwrap();
    let err = join(&e.deps, &claims("late"), &c, JoinChat { display_name: "l".into() }, &cause())
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (409, "chat_full"));
    let err = join(&e.deps, &claims("assistant"), &c, JoinChat { display_name: "a".into() }, &cause())
        .await
        .unwrap_err();
    assert_eq!(err.status(), 403);
    let bad = ChatSettings {
        turn_mode: TurnMode::UserThenAssistant,
        ..ChatSettings::default()
    };
    let req = CreateChat {
        title: "x".into(),
        settings: Some(bad),
    };
    assert_eq!(create(&e.deps, &claims("alice"), req, &cause()).await.unwrap_err().status(), 400);
}

#[test]
fn every_chat_event_is_in_the_catalogue_and_round_trips() {
    let now = Utc::now();
    let typing = Typing {
        chat_id: "C1".into(),
        user_id: "u".into(),
        display_name: "U".into(),
        is_typing: true,
        expires_at: Some(now),
    };
    let events = vec![
        Event::MessageRejected(MessageRejected {
            chat_id: "C1".into(),
            sender_id: "u".into(),
            code: "blocked_term".into(),
            reason: "r".into(),
            client_message_id: None,
            rejected_at: now,
        }),
        Event::TypingUser(typing.clone()),
        Event::TypingAssistant(typing),
        Event::CompletionUpdated(CompletionUpdated {
            chat_id: "C1".into(),
            user_id: "u".into(),
            completed: true,
            completed_count: 1,
            participant_count: 2,
            completed_at: now,
        }),
        Event::CompletionReady(CompletionReady {
            chat_id: "C1".into(),
            participant_count: 1,
            participants: vec!["u".into()],
            ready_at: now,
        }),
        Event::SettingsUpdated(SettingsUpdated {
            chat_id: "C1".into(),
            settings: ChatSettings::default(),
            changed: vec!["turnMode".into()],
            updated_by: "u".into(),
            updated_at: now,
        }),
        Event::AiRequested(AiRequested {
            chat_id: "C1".into(),
            request_id: "r".into(),
            message_id: "m".into(),
            requested_by: "u".into(),
            requested_at: now,
        }),
        Event::AiStarted(AiStarted {
            chat_id: "C1".into(),
            request_id: "r".into(),
            provider: "builtin".into(),
            model: "echo-1".into(),
            started_at: now,
        }),
        Event::AiCompleted(AiCompleted {
            chat_id: "C1".into(),
            request_id: "r".into(),
            message_id: "m".into(),
            provider: "builtin".into(),
            model: "echo-1".into(),
            response_time_ms: 5,
            total_time_ms: 9,
            completed_at: now,
        }),
        Event::AiFailed(AiFailed {
            chat_id: "C1".into(),
            request_id: "r".into(),
            provider: "openai".into(),
            code: "timeout".into(),
            error: "e".into(),
            response_time_ms: 5,
            failed_at: now,
        }),
    ];
    for ev in events {
        let env = Envelope::new(ev.clone(), &cause());
        assert!(
            realtime_domain::events::EVENT_TYPES.contains(&env.event_type.as_str()),
            "{}",
            env.event_type
        );
        assert_eq!((env.source.as_str(), env.chat_id.as_deref()), ("realtime.chat", Some("C1")));
        let back: Envelope = serde_json::from_value(serde_json::to_value(&env).unwrap()).unwrap();
        assert_eq!(back.typed(), Some(ev));
    }
}
