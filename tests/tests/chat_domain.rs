//! The chat domain end to end, over the local stack with real WebSocket and HTTP clients:
//! turns with the assistant, typing with its TTL, completion, analytics switched at
//! runtime, moderation, the OpenAI-compatible provider (against a mock server), and the
//! new routes' answers to bad input.

use realtime_domain::config::{AssistantProvider, ChatConfig, Secret};
use realtime_local::stack::Options;
use realtime_local::Running;
use realtime_tests::client::{Http, TokenIn, WsClient};
use realtime_tests::start_stack_with;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

fn is_event(f: &Value, ty: &str) -> bool {
    f["type"] == "event" && f["event"]["type"] == ty
}

fn events_of<'a>(frames: &'a [Value], ty: &str) -> Vec<&'a Value> {
    frames.iter().filter(|f| is_event(f, ty)).collect()
}

fn chat_config(f: impl FnOnce(&mut ChatConfig)) -> Options {
    let mut chat = ChatConfig::local();
    f(&mut chat);
    Options {
        chat: Some(chat),
        ..Options::default()
    }
}

/// A chat of alice (organizer) with the given settings, joined by `others`.
async fn chat(http: &Http, alice: &str, settings: Value, others: &[(&str, &str)]) -> String {
    let (status, chat) = http
        .post("/api/chat", Some(alice), &json!({"title": "chat domain", "settings": settings}))
        .await
        .unwrap();
    assert_eq!(status, 201, "{chat}");
    let id = chat["chatId"].as_str().unwrap().to_string();
    for (token, name) in others {
        let (status, body) = http
            .post(&format!("/api/chat/{id}/participants"), Some(token), &json!({"displayName": name}))
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
    }
    id
}

async fn subscribed(stack: &Running, token: &str, channel: &str) -> WsClient {
    let mut c = WsClient::connect(&stack.ws_url(), Some(token), TokenIn::Subprotocol).await.unwrap();
    let ack = c.subscribe("s1", channel, &["chat.**"]).await.unwrap();
    assert_eq!(ack["type"], "subscribed", "{ack}");
    c
}

/// Every frame until each of `wanted` has matched one. Events published together (one
/// transaction) are fanned out independently: they arrive in any order (their seqs say
/// the order), so a test waits for all of them, never for "the last one".
async fn collect_all(c: &mut WsClient, wanted: &[&dyn Fn(&Value) -> bool]) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    let mut frames: Vec<Value> = Vec::new();
    while !wanted.iter().all(|w| frames.iter().any(w)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match c.next(left).await {
            Some(f) => frames.push(f),
            None => panic!("not every wanted frame arrived within {WAIT:?}: {frames:#?}"),
        }
    }
    frames
}

/// The frames of one assistant round: its reply, `chat.ai.completed` and its typing off.
async fn assistant_round(c: &mut WsClient) -> Vec<Value> {
    collect_all(
        c,
        &[
            &|f| is_event(f, "chat.ai.completed"),
            &|f| is_event(f, "chat.message.stored") && f["event"]["data"]["senderRole"] == "assistant",
            &|f| is_event(f, "chat.typing.assistant") && f["event"]["data"]["isTyping"] == false,
            &|f| is_event(f, "chat.turn.changed") && f["event"]["data"]["nextRole"] == "user",
        ],
    )
    .await
}

async fn send(http: &Http, chat_id: &str, token: &str, content: &str) -> (u16, Value) {
    http.post(&format!("/api/chat/{chat_id}/messages"), Some(token), &json!({"content": content}))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_and_the_assistant_take_turns_and_the_state_agrees() {
    // The built-in provider thinks a little, so that its typing shows before its reply.
    let stack = start_stack_with(chat_config(|c| c.assistant.builtin_delay_ms = 300)).await.unwrap();
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &[]).await.unwrap();
    let bob = http.dev_token("bob", &[]).await.unwrap();
    let settings = json!({"turnMode": "user_then_assistant", "assistantEnabled": true});
    let chat_id = chat(&http, &alice, settings, &[(&bob, "Bob")]).await;
    let channel = format!("chat:{chat_id}");
    let mut a = subscribed(&stack, &alice, &channel).await;
    let mut b = subscribed(&stack, &bob, &channel).await;

    // Round 1: alice speaks, the assistant answers, the turn goes to bob.
    let (status, m1) = send(&http, &chat_id, &alice, "What should we plan first?").await;
    assert_eq!(status, 201, "{m1}");
    let (status, err) = send(&http, &chat_id, &bob, "me first").await;
    assert_eq!((status, err["error"]["code"].as_str()), (409, Some("not_your_turn")), "{err}");
    let mut fa = assistant_round(&mut a).await;
    let mut fb = assistant_round(&mut b).await;
    for frames in [&fa, &fb] {
        let mut turns: Vec<&Value> = events_of(frames, "chat.turn.changed");
        turns.sort_by_key(|f| f["seq"].as_u64());
        assert_eq!(turns.len(), 2);
        assert_eq!(turns[0]["event"]["data"]["nextUserId"], "assistant");
        assert_eq!(turns[0]["event"]["data"]["nextRole"], "assistant");
        assert_eq!(turns[1]["event"]["data"]["nextUserId"], "bob");
        // The assistant's typing shows, then its reply arrives (its typing off comes with the reply).
        let pos = |pred: &dyn Fn(&Value) -> bool| frames.iter().position(pred).expect("frame missing");
        let typing_on = pos(&|f| is_event(f, "chat.typing.assistant") && f["event"]["data"]["isTyping"] == true);
        let reply = pos(&|f| is_event(f, "chat.message.stored") && f["event"]["data"]["senderRole"] == "assistant");
        assert!(typing_on < reply, "typing at {typing_on}, reply at {reply}");
        let on_at = frames[typing_on]["event"]["occurredAt"].as_str().unwrap();
        assert!(on_at < frames[reply]["event"]["data"]["createdAt"].as_str().unwrap());
        assert!(frames[typing_on].get("seq").is_none(), "typing is low priority: no seq");
        assert_eq!(frames[typing_on]["event"]["priority"], "low");
        assert!(events_of(frames, "chat.ai.started").len() == 1 && events_of(frames, "chat.ai.requested").len() == 1);
    }
    let reply1 = events_of(&fa, "chat.message.stored")
        .into_iter()
        .find(|f| f["event"]["data"]["senderRole"] == "assistant")
        .unwrap()["event"]["data"]
        .clone();
    assert!(
        reply1["content"].as_str().unwrap().contains("What should we plan first?"),
        "{reply1}"
    );

    // Round 2: alice may not speak out of turn; bob does; the assistant answers; alice is next.
    let (status, err) = send(&http, &chat_id, &alice, "and also").await;
    assert_eq!((status, err["error"]["code"].as_str()), (409, Some("not_your_turn")), "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("bob"), "{err}");
    let (status, m3) = send(&http, &chat_id, &bob, "The route, then the stops.").await;
    assert_eq!(status, 201, "{m3}");
    fa.extend(assistant_round(&mut a).await);
    fb.extend(assistant_round(&mut b).await);

    // Every message reached every member once, with the same seq on both clients.
    let stored = |frames: &[Value]| -> Vec<(u64, String)> {
        let mut s: Vec<(u64, String)> = events_of(frames, "chat.message.stored")
            .iter()
            .map(|f| (f["seq"].as_u64().unwrap(), f["event"]["data"]["id"].as_str().unwrap().to_string()))
            .collect();
        s.sort();
        s
    };
    let (sa, sb) = (stored(&fa), stored(&fb));
    assert_eq!(sa, sb);
    assert_eq!(sa.len(), 4, "{sa:?}");
    let mut ids: Vec<&str> = sa.iter().map(|(_, id)| id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 4, "a message arrived twice");
    assert_eq!((ids[0], ids[2]), (m1["id"].as_str().unwrap(), m3["id"].as_str().unwrap()));
    // No seq twice, and both clients saw the same sequenced events.
    let seqs = |frames: &[Value]| -> Vec<u64> {
        let mut s: Vec<u64> = frames.iter().filter_map(|f| f["seq"].as_u64()).collect();
        s.sort();
        s
    };
    // (From the first message on: an event from before both subscriptions may reach one only.)
    let first = sa[0].0;
    let (mut qa, mut qb) = (seqs(&fa), seqs(&fb));
    qa.retain(|s| *s >= first);
    qb.retain(|s| *s >= first);
    assert!(qa.windows(2).all(|w| w[0] < w[1]), "{qa:?}");
    assert_eq!(qa, qb);

    // The state endpoint agrees with what the clients saw.
    let (status, state) = http.get(&format!("/api/chat/{chat_id}/state"), Some(&bob)).await.unwrap();
    assert_eq!(status, 200, "{state}");
    let recent: Vec<&str> = state["recentMessages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(recent, ids);
    let last_turn = events_of(&fa, "chat.turn.changed")
        .into_iter()
        .max_by_key(|f| f["seq"].as_u64())
        .unwrap()["event"]["data"]
        .clone();
    assert_eq!(state["turn"]["nextUserId"], last_turn["nextUserId"]);
    assert_eq!(state["turn"]["nextUserId"], "alice");
    assert_eq!(state["turn"]["mode"], "user_then_assistant");
    assert_eq!(state["typing"], json!([]));
    let people: Vec<&str> = state["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["userId"].as_str().unwrap())
        .collect();
    assert_eq!(people, vec!["alice", "bob", "assistant"]);
    assert_eq!(state["settings"]["turnMode"], "user_then_assistant");

    // The history pages the same messages, newest first.
    let (status, page) = http
        .get(&format!("/api/chat/{chat_id}/messages?limit=3"), Some(&alice))
        .await
        .unwrap();
    assert_eq!(status, 200, "{page}");
    let newest: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(newest, vec![ids[3], ids[2], ids[1]]);
    let before = page["nextBefore"].as_str().unwrap();
    let (_, older) = http
        .get(&format!("/api/chat/{chat_id}/messages?limit=3&before={before}"), Some(&alice))
        .await
        .unwrap();
    assert_eq!(older["messages"][0]["id"], ids[0]);
    assert_eq!(older["nextBefore"], Value::Null);
    a.close().await;
    b.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typing_indicator_expires_within_its_ttl_and_is_cleared_by_a_send_or_a_disconnect() {
    const TTL: u64 = 2;
    let stack = start_stack_with(chat_config(|c| c.typing_ttl_secs = TTL as i64)).await.unwrap();
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &[]).await.unwrap();
    let bob = http.dev_token("bob", &[]).await.unwrap();
    let chat_id = chat(&http, &alice, json!({}), &[(&bob, "Bob")]).await;
    let mut a = subscribed(&stack, &alice, &format!("chat:{chat_id}")).await;
    let typing_of = |state: &Value| -> Vec<String> {
        state["typing"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["userId"].as_str().unwrap().to_string())
            .collect()
    };
    let state = || async { http.get(&format!("/api/chat/{chat_id}/state"), Some(&alice)).await.unwrap().1 };

    // Over HTTP, not refreshed: it disappears by itself.
    let started = Instant::now();
    let (status, t) = http
        .post("/api/typing", Some(&bob), &json!({"chatId": chat_id, "isTyping": true}))
        .await
        .unwrap();
    assert_eq!(status, 200, "{t}");
    assert!(t["expiresAt"].is_string());
    let on = a.next_where(WAIT, |f| is_event(f, "chat.typing.user")).await.unwrap();
    assert_eq!(
        (on["event"]["data"]["userId"].as_str(), on["event"]["data"]["isTyping"].as_bool()),
        (Some("bob"), Some(true))
    );
    assert_eq!(on["event"]["data"]["displayName"], "Bob");
    assert!(on.get("seq").is_none());
    assert_eq!(typing_of(&state().await), vec!["bob"]);
    let gone_after = loop {
        let s = state().await;
        if typing_of(&s).is_empty() {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(TTL + 3),
            "still typing after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        gone_after >= Duration::from_millis(TTL * 1000 - 100),
        "gone too early: {gone_after:?}"
    );
    // Within its TTL + 1 s (the TTL attribute counts whole seconds, rounded up), plus at most
    // 250 ms for this test's 50 ms between two looks and the requests themselves.
    assert!(
        gone_after <= Duration::from_millis((TTL + 1) * 1000 + 250),
        "gone only after {gone_after:?}"
    );

    // Over the WebSocket action; a send clears it.
    let mut b = WsClient::connect(&stack.ws_url(), Some(&bob), TokenIn::Query).await.unwrap();
    b.send(&json!({"action": "typing", "chatId": chat_id, "isTyping": true}))
        .await
        .unwrap();
    a.next_where(WAIT, |f| is_event(f, "chat.typing.user") && f["event"]["data"]["isTyping"] == true)
        .await
        .unwrap();
    assert_eq!(typing_of(&state().await), vec!["bob"]);
    let (status, _) = send(&http, &chat_id, &bob, "here it is").await;
    assert_eq!(status, 201);
    // Two events of one send: the message (sequenced) and the typing off (low: no seq), in any order.
    let frames = a.collect_until(WAIT, |f| is_event(f, "chat.message.stored")).await.unwrap();
    let off = match events_of(&frames, "chat.typing.user").first() {
        Some(f) => (*f).clone(),
        None => a.next_where(WAIT, |f| is_event(f, "chat.typing.user")).await.unwrap(),
    };
    assert_eq!(off["event"]["data"]["isTyping"], false);
    assert!(typing_of(&state().await).is_empty());

    // A disconnect clears it too.
    b.send(&json!({"action": "typing", "chatId": chat_id, "isTyping": true}))
        .await
        .unwrap();
    a.next_where(WAIT, |f| is_event(f, "chat.typing.user") && f["event"]["data"]["isTyping"] == true)
        .await
        .unwrap();
    b.close().await;
    a.next_where(WAIT, |f| is_event(f, "chat.typing.user") && f["event"]["data"]["isTyping"] == false)
        .await
        .unwrap();
    assert!(typing_of(&state().await).is_empty());

    // A typing frame for a chat the user is not in is an error frame.
    let mut m = WsClient::connect(
        &stack.ws_url(),
        Some(&http.dev_token("mallory", &[]).await.unwrap()),
        TokenIn::Query,
    )
    .await
    .unwrap();
    m.send(&json!({"action": "typing", "chatId": chat_id, "isTyping": true}))
        .await
        .unwrap();
    assert_eq!(m.next(WAIT).await.unwrap()["code"], "forbidden");
    m.send(&json!({"action": "typing", "chatId": chat_id})).await.unwrap();
    assert_eq!(m.next(WAIT).await.unwrap()["code"], "invalid_json");
    m.close().await;
    a.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_ready_arrives_exactly_once_after_the_last_participant_completes() {
    let stack = start_stack_with(Options::default()).await.unwrap();
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &[]).await.unwrap();
    let bob = http.dev_token("bob", &[]).await.unwrap();
    let carol = http.dev_token("carol", &[]).await.unwrap();
    let chat_id = chat(&http, &alice, json!({}), &[(&bob, "Bob"), (&carol, "Carol")]).await;
    // Subscribe once the chat's first four events (created, three joins) are sequenced.
    let channel = realtime_domain::channels::Channel::Chat(chat_id.clone());
    let deadline = Instant::now() + WAIT;
    while realtime_domain::log::head(stack.stack.deps.table.as_ref(), &channel)
        .await
        .unwrap()
        .seq
        < 4
    {
        assert!(Instant::now() < deadline, "the chat's first events were not sequenced");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut a = WsClient::connect(&stack.ws_url(), Some(&alice), TokenIn::Subprotocol)
        .await
        .unwrap();
    let ack = a.subscribe("s1", &format!("chat:{chat_id}"), &["chat.**"]).await.unwrap();
    let from = ack["seq"].as_u64().unwrap();
    assert_eq!(from, 4);
    let complete = |token: String| {
        let (http, path) = (&http, format!("/api/chat/{chat_id}/complete"));
        async move { http.post(&path, Some(&token), &json!({})).await.unwrap() }
    };
    let (status, first) = complete(alice.clone()).await;
    assert_eq!(
        (status, first["ready"].as_bool(), first["completedCount"].as_u64()),
        (200, Some(false), Some(1))
    );
    // The last two at the same moment; one of the answers says ready.
    let ((sb, rb), (sc, rc)) = tokio::join!(complete(bob.clone()), complete(carol.clone()));
    assert_eq!((sb, sc), (200, 200));
    assert!(rb["ready"] == true || rc["ready"] == true, "{rb} {rc}");
    // Completing again changes nothing.
    let (status, again) = complete(bob.clone()).await;
    assert_eq!((status, again["completed"].as_bool()), (200, Some(true)));

    // Four events were published (three updates, one ready); a marker message makes five.
    // Wait for all of them (they are fanned out independently: any arrival order), then the
    // channel's log must hold exactly these five after the subscription: no second ready.
    let (status, marker) = send(&http, &chat_id, &alice, "marker").await;
    assert_eq!(status, 201);
    let frames = collect_all(
        &mut a,
        &[
            &|f| is_event(f, "chat.message.stored") && f["event"]["data"]["id"] == marker["id"],
            &|f| is_event(f, "chat.completion.ready"),
            &|f| is_event(f, "chat.completion.updated") && f["event"]["data"]["userId"] == "alice",
            &|f| is_event(f, "chat.completion.updated") && f["event"]["data"]["userId"] == "bob",
            &|f| is_event(f, "chat.completion.updated") && f["event"]["data"]["userId"] == "carol",
        ],
    )
    .await;
    let head = realtime_domain::log::head(stack.stack.deps.table.as_ref(), &channel).await.unwrap();
    assert_eq!(head.seq, from + 5, "exactly five events sequenced after the subscription");
    let mut seqs: Vec<u64> = frames.iter().filter_map(|f| f["seq"].as_u64()).filter(|s| *s > from).collect();
    seqs.sort();
    assert_eq!(seqs, (from + 1..=from + 5).collect::<Vec<_>>());
    let updated = events_of(&frames, "chat.completion.updated");
    let ready = events_of(&frames, "chat.completion.ready");
    assert_eq!(updated.len(), 3);
    assert_eq!(ready.len(), 1, "ready exactly once");
    let updated_users: std::collections::BTreeSet<&str> = updated.iter().map(|f| f["event"]["data"]["userId"].as_str().unwrap()).collect();
    assert_eq!(updated_users.into_iter().collect::<Vec<_>>(), vec!["alice", "bob", "carol"]);
    assert_eq!(ready[0]["event"]["data"]["participantCount"], 3);
    let (_, state) = http.get(&format!("/api/chat/{chat_id}/state"), Some(&carol)).await.unwrap();
    assert_eq!(
        (
            state["completion"]["ready"].as_bool(),
            state["completion"]["completedCount"].as_u64()
        ),
        (Some(true), Some(3))
    );
    a.close().await;
    stack.stop().await;
}

/// Parses the analytics CSV: (messageId, senderId, senderRole, length) per row.
fn csv_rows(csv: &str) -> Vec<(String, String, String, u64)> {
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("messageId,createdAt,senderId,senderRole,length,turnDurationMs,responseTimeMs")
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 7, "{l}");
            (f[0].to_string(), f[2].to_string(), f[3].to_string(), f[4].parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_csv_matches_the_messages_sent_and_switching_it_off_stops_its_updates() {
    let stack = start_stack_with(Options::default()).await.unwrap();
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &[]).await.unwrap();
    let bob = http.dev_token("bob", &[]).await.unwrap();
    let chat_id = chat(&http, &alice, json!({"extensions": ["analytics"]}), &[(&bob, "Bob")]).await;
    let mut a = subscribed(&stack, &alice, &format!("chat:{chat_id}")).await;
    let analytics = format!("/api/chat/{chat_id}/analytics");

    let mut sent: Vec<(String, String, String, u64)> = Vec::new();
    for (token, who, text) in [
        (&alice, "alice", "hello"),
        (&bob, "bob", "héllo wörld"),
        (&alice, "alice", "third one"),
    ] {
        let (status, m) = send(&http, &chat_id, token, text).await;
        assert_eq!(status, 201);
        sent.push((
            m["id"].as_str().unwrap().into(),
            who.into(),
            "user".into(),
            text.chars().count() as u64,
        ));
    }
    let wait_for_total = |n: u64| {
        let (http, analytics, alice) = (&http, &analytics, &alice);
        async move {
            let deadline = Instant::now() + WAIT;
            loop {
                let (status, r) = http.get(analytics, Some(alice)).await.unwrap();
                assert_eq!(status, 200, "{r}");
                if r["messages"]["total"].as_u64() == Some(n) {
                    return r;
                }
                assert!(Instant::now() < deadline, "analytics stuck at {}", r["messages"]["total"]);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let report = wait_for_total(3).await;
    assert_eq!(report["enabled"], true);
    let bob_figures = report["messages"]["bySender"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["senderId"] == "bob")
        .unwrap()
        .clone();
    assert_eq!(
        (bob_figures["messages"].as_u64(), bob_figures["characters"].as_u64()),
        (Some(1), Some(11))
    );
    assert_eq!(report["turns"]["count"], 2);
    let (status, content_type, csv) = http.get_text(&format!("{analytics}?format=csv"), Some(&bob)).await.unwrap();
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    assert_eq!(csv_rows(&csv), sent);

    // Off at runtime: a message now is not counted, even once analytics is back on.
    let (status, st) = http
        .put(&format!("/api/chat/{chat_id}/settings"), Some(&alice), &json!({"extensions": []}))
        .await
        .unwrap();
    assert_eq!((status, st["settings"]["extensions"].clone()), (200, json!([])), "{st}");
    let (status, unseen) = send(&http, &chat_id, &bob, "while analytics is off").await;
    assert_eq!(status, 201);
    a.next_where(WAIT, |f| {
        is_event(f, "chat.message.stored") && f["event"]["data"]["id"] == unseen["id"]
    })
    .await
    .unwrap();
    let (_, off) = http.get(&analytics, Some(&alice)).await.unwrap();
    assert_eq!(
        (off["enabled"].as_bool(), off["messages"]["total"].as_u64()),
        (Some(false), Some(3))
    );
    let (status, _) = http
        .put(
            &format!("/api/chat/{chat_id}/settings"),
            Some(&alice),
            &json!({"extensions": ["analytics"]}),
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (status, m) = send(&http, &chat_id, &alice, "back on").await;
    assert_eq!(status, 201);
    sent.push((m["id"].as_str().unwrap().into(), "alice".into(), "user".into(), 7));
    wait_for_total(4).await;
    let (_, _, csv) = http.get_text(&format!("{analytics}?format=csv"), Some(&alice)).await.unwrap();
    assert_eq!(csv_rows(&csv), sent, "the message sent while off is not there");

    // Only the organizer switches extensions; strangers see no figures.
    let (status, _) = http
        .put(&format!("/api/chat/{chat_id}/settings"), Some(&bob), &json!({"extensions": []}))
        .await
        .unwrap();
    assert_eq!(status, 403);
    let mallory = http.dev_token("mallory", &[]).await.unwrap();
    assert_eq!(http.get(&analytics, Some(&mallory)).await.unwrap().0, 403);
    a.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderation_rejection_stores_nothing_and_tells_the_sender_why() {
    let stack = start_stack_with(Options::default()).await.unwrap();
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &[]).await.unwrap();
    let bob = http.dev_token("bob", &[]).await.unwrap();
    let settings = json!({"extensions": ["moderation"], "blocklist": ["spam", "Cheap Pills"]});
    let chat_id = chat(&http, &alice, settings, &[(&bob, "Bob")]).await;
    let mut a = subscribed(&stack, &alice, &format!("chat:{chat_id}")).await;
    let mut b = WsClient::connect(&stack.ws_url(), Some(&bob), TokenIn::Subprotocol).await.unwrap();
    assert_eq!(b.subscribe("u1", "user:bob", &[]).await.unwrap()["type"], "subscribed");

    let (status, err) = send(&http, &chat_id, &bob, "Buy CHEAP pills today").await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("message_rejected")), "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("cheap pills"), "{err}");
    let rejected = b.next_where(WAIT, |f| is_event(f, "chat.message.rejected")).await.unwrap();
    assert_eq!(rejected["channel"], "user:bob");
    assert_eq!(rejected["event"]["data"]["code"], "blocked_term");
    assert_eq!(rejected["event"]["data"]["chatId"], chat_id.as_str());

    // Nothing was stored: not in the history, not in the state, not on the chat channel.
    let (_, history) = http.get(&format!("/api/chat/{chat_id}/messages"), Some(&alice)).await.unwrap();
    assert_eq!(history["messages"], json!([]));
    let (_, state) = http.get(&format!("/api/chat/{chat_id}/state"), Some(&bob)).await.unwrap();
    assert_eq!(state["recentMessages"], json!([]));
    let (status, ok) = send(&http, &chat_id, &bob, "a clean message about spamming nobody").await;
    assert_eq!(status, 201, "{ok}");
    let frames = a.collect_until(WAIT, |f| is_event(f, "chat.message.stored")).await.unwrap();
    assert!(
        events_of(&frames, "chat.message.rejected").is_empty(),
        "the room never sees a rejection"
    );
    assert_eq!(frames.last().unwrap()["event"]["data"]["id"], ok["id"]);
    a.close().await;
    b.close().await;
    stack.stop().await;
}

/// An OpenAI-compatible server: answers the first request, fails the next ones (HTTP 500);
/// keeps what it was sent.
async fn mock_openai() -> (String, std::sync::Arc<std::sync::Mutex<Vec<(HashMap<String, String>, Value)>>>) {
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| {
            let log = log.clone();
            async move {
                let h: HashMap<String, String> = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                    .collect();
                let n = {
                    let mut l = log.lock().unwrap();
                    l.push((h, body));
                    l.len()
                };
                if n == 1 {
                    (
                        StatusCode::OK,
                        axum::Json(json!({"choices": [{"message": {"role": "assistant", "content": "Hi from the model"}}]})),
                    )
                } else {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        axum::Json(json!({"error": {"message": "overloaded"}})),
                    )
                }
            }
        }),
    );
    let addr = realtime_tests::serve(app).await;
    (format!("http://{addr}/v1"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_compatible_provider_answers_and_its_failure_moves_the_turn_on() {
    let (base_url, seen) = mock_openai().await;
    let stack = start_stack_with(chat_config(|c| {
        c.assistant.provider = AssistantProvider::OpenAi {
            base_url,
            model: "test-model".into(),
            api_key: Some(Secret::new("sk-test-key")),
        }
    }))
    .await
    .unwrap();
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &[]).await.unwrap();
    let bob = http.dev_token("bob", &[]).await.unwrap();
    let settings = json!({"turnMode": "user_then_assistant", "assistantEnabled": true});
    let chat_id = chat(&http, &alice, settings, &[(&bob, "Bob")]).await;
    let mut a = subscribed(&stack, &alice, &format!("chat:{chat_id}")).await;

    assert_eq!(send(&http, &chat_id, &alice, "Hello model").await.0, 201);
    let frames = assistant_round(&mut a).await;
    let reply = events_of(&frames, "chat.message.stored")
        .into_iter()
        .find(|f| f["event"]["data"]["senderRole"] == "assistant")
        .unwrap()["event"]["data"]
        .clone();
    assert_eq!(
        (reply["content"].as_str(), reply["senderId"].as_str()),
        (Some("Hi from the model"), Some("assistant"))
    );
    let completed = events_of(&frames, "chat.ai.completed")[0]["event"]["data"].clone();
    assert_eq!(
        (completed["provider"].as_str(), completed["model"].as_str()),
        (Some("openai"), Some("test-model"))
    );
    {
        let seen = seen.lock().unwrap();
        let (headers, body) = &seen[0];
        assert_eq!(headers.get("authorization").map(String::as_str), Some("Bearer sk-test-key"));
        assert_eq!(body["model"], "test-model");
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages[0]["role"], "system");
        assert_eq!(messages.last().unwrap()["content"], "alice: Hello model");
    }

    // The provider fails: chat.ai.failed, the typing stops and the turn goes on to alice.
    assert_eq!(send(&http, &chat_id, &bob, "Still there?").await.0, 201);
    let frames = collect_all(
        &mut a,
        &[
            &|f| is_event(f, "chat.ai.failed"),
            &|f| is_event(f, "chat.turn.changed") && f["event"]["data"]["nextUserId"] == "alice",
            &|f| is_event(f, "chat.typing.assistant") && f["event"]["data"]["isTyping"] == false,
        ],
    )
    .await;
    let failed = events_of(&frames, "chat.ai.failed")[0]["event"]["data"].clone();
    assert_eq!(failed["code"], "provider_error");
    assert!(failed["error"].as_str().unwrap().contains("500"), "{failed}");
    let (_, state) = http.get(&format!("/api/chat/{chat_id}/state"), Some(&alice)).await.unwrap();
    assert_eq!(
        (state["turn"]["nextUserId"].as_str(), state["typing"].clone()),
        (Some("alice"), json!([]))
    );
    assert_eq!(send(&http, &chat_id, &alice, "Then I go on").await.0, 201);
    a.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_routes_answer_bad_input_with_a_4xx_json_error() {
    let stack = start_stack_with(Options::default()).await.unwrap();
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &[]).await.unwrap();
    let mallory = http.dev_token("mallory", &[]).await.unwrap();
    let chat_id = chat(&http, &alice, json!({}), &[]).await;
    let c = format!("/api/chat/{chat_id}");
    // (name, method, path, caller, body, status)
    type Case = (&'static str, reqwest::Method, String, &'static str, Option<Value>, u16);
    let cases: Vec<Case> = vec![
        (
            "history: limit 0",
            reqwest::Method::GET,
            format!("{c}/messages?limit=0"),
            "alice",
            None,
            400,
        ),
        (
            "history: limit text",
            reqwest::Method::GET,
            format!("{c}/messages?limit=ten"),
            "alice",
            None,
            400,
        ),
        (
            "history: bad before",
            reqwest::Method::GET,
            format!("{c}/messages?before=yesterday"),
            "alice",
            None,
            400,
        ),
        (
            "history: stranger",
            reqwest::Method::GET,
            format!("{c}/messages"),
            "mallory",
            None,
            403,
        ),
        (
            "history: no chat",
            reqwest::Method::GET,
            "/api/chat/nope/messages".into(),
            "alice",
            None,
            404,
        ),
        ("state: stranger", reqwest::Method::GET, format!("{c}/state"), "mallory", None, 403),
        (
            "state: no chat",
            reqwest::Method::GET,
            "/api/chat/nope/state".into(),
            "alice",
            None,
            404,
        ),
        (
            "state: bad id",
            reqwest::Method::GET,
            "/api/chat/a.b/state".into(),
            "alice",
            None,
            400,
        ),
        (
            "typing: missing isTyping",
            reqwest::Method::POST,
            "/api/typing".into(),
            "alice",
            Some(json!({"chatId": chat_id})),
            400,
        ),
        (
            "typing: unknown field",
            reqwest::Method::POST,
            "/api/typing".into(),
            "alice",
            Some(json!({"chatId": chat_id, "isTyping": true, "x": 1})),
            400,
        ),
        (
            "typing: bad chat id",
            reqwest::Method::POST,
            "/api/typing".into(),
            "alice",
            Some(json!({"chatId": "a b", "isTyping": true})),
            400,
        ),
        (
            "typing: stranger",
            reqwest::Method::POST,
            "/api/typing".into(),
            "mallory",
            Some(json!({"chatId": chat_id, "isTyping": true})),
            403,
        ),
        (
            "complete: a body with fields",
            reqwest::Method::POST,
            format!("{c}/complete"),
            "alice",
            Some(json!({"done": true})),
            400,
        ),
        (
            "complete: stranger",
            reqwest::Method::POST,
            format!("{c}/complete"),
            "mallory",
            None,
            403,
        ),
        (
            "settings: empty",
            reqwest::Method::PUT,
            format!("{c}/settings"),
            "alice",
            Some(json!({})),
            400,
        ),
        (
            "settings: unknown field",
            reqwest::Method::PUT,
            format!("{c}/settings"),
            "alice",
            Some(json!({"theme": "dark"})),
            400,
        ),
        (
            "settings: unknown mode",
            reqwest::Method::PUT,
            format!("{c}/settings"),
            "alice",
            Some(json!({"turnMode": "chaos"})),
            400,
        ),
        (
            "settings: unknown extension",
            reqwest::Method::PUT,
            format!("{c}/settings"),
            "alice",
            Some(json!({"extensions": ["mind-reading"]})),
            400,
        ),
        (
            "settings: long term",
            reqwest::Method::PUT,
            format!("{c}/settings"),
            "alice",
            Some(json!({"blocklist": ["x".repeat(51)]})),
            400,
        ),
        (
            "settings: assistant turns without the assistant",
            reqwest::Method::PUT,
            format!("{c}/settings"),
            "alice",
            Some(json!({"turnMode": "user_then_assistant"})),
            400,
        ),
        (
            "settings: stranger",
            reqwest::Method::PUT,
            format!("{c}/settings"),
            "mallory",
            Some(json!({"extensions": []})),
            403,
        ),
        (
            "analytics: format xml",
            reqwest::Method::GET,
            format!("{c}/analytics?format=xml"),
            "alice",
            None,
            400,
        ),
        (
            "analytics: no chat",
            reqwest::Method::GET,
            "/api/chat/nope/analytics".into(),
            "alice",
            None,
            404,
        ),
    ];
    let mut failures = Vec::new();
    for (name, method, path, who, body, want) in cases {
        let token = if who == "alice" { &alice } else { &mallory };
        let (status, answer) = http.send(method, &path, Some(token), body.as_ref()).await.unwrap();
        if status != want || answer["error"]["code"].as_str().is_none_or(str::is_empty) {
            failures.push(format!("{name}: want {want} + error JSON, got {status} {answer}"));
        }
    }
    // Without a token, every new route is refused before it runs.
    for (method, path) in [
        (reqwest::Method::GET, format!("{c}/state")),
        (reqwest::Method::POST, "/api/typing".into()),
        (reqwest::Method::PUT, format!("{c}/settings")),
    ] {
        let (status, _) = http.send(method, &path, None, Some(&json!({}))).await.unwrap();
        if status != 401 {
            failures.push(format!("{path} without a token: {status}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    stack.stop().await;
}

/// The same domain on DynamoDB (Local), the reference the embedded table follows: the
/// session Query, conditional turns under concurrency, TTL'd typing, exactly-once ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_domain_holds_on_dynamodb_local() {
    let ddb = realtime_tests::dynamodb_local::DynamoDbLocal::start()
        .await
        .expect("DynamoDB Local");
    let mut opts = chat_config(|c| {
        c.assistant.builtin_delay_ms = 0;
        c.typing_ttl_secs = 1;
    });
    opts.dynamodb_endpoint = Some(ddb.endpoint.clone());
    let stack = start_stack_with(opts).await.unwrap();
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &[]).await.unwrap();
    let bob = http.dev_token("bob", &[]).await.unwrap();
    let settings =
        json!({"turnMode": "round_robin", "assistantEnabled": true, "extensions": ["analytics", "moderation"], "blocklist": ["spam"]});
    let chat_id = chat(&http, &alice, settings, &[(&bob, "Bob")]).await;
    let mut a = subscribed(&stack, &alice, &format!("chat:{chat_id}")).await;

    // Both open at once: one gets in, the rotation holds (alice, bob, assistant).
    let (ra, rb) = tokio::join!(send(&http, &chat_id, &alice, "first"), send(&http, &chat_id, &bob, "first"));
    let statuses = [ra.0, rb.0];
    assert!(statuses.contains(&201), "{ra:?} {rb:?}");
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{ra:?} {rb:?}");
    let (_, state) = http.get(&format!("/api/chat/{chat_id}/state"), Some(&alice)).await.unwrap();
    let senders: Vec<&str> = state["recentMessages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["senderId"].as_str().unwrap())
        .collect();
    match senders.as_slice() {
        // alice opened: bob is next (then the assistant).
        ["alice"] => assert_eq!(send(&http, &chat_id, &bob, "second").await.0, 201),
        // bob opened (the assistant is next), or alice then bob got in one after the other.
        ["bob"] | ["alice", "bob"] => {}
        other => panic!("the rotation broke: {other:?}"),
    }
    // After bob, the assistant answers; then it is alice's turn.
    assistant_round(&mut a).await;
    let (_, state) = http.get(&format!("/api/chat/{chat_id}/state"), Some(&alice)).await.unwrap();
    assert_eq!(state["turn"]["nextUserId"], "alice");
    let stored = state["recentMessages"].as_array().unwrap().len();

    // Typing lives one second, then is gone from the state.
    let (status, _) = http
        .post("/api/typing", Some(&alice), &json!({"chatId": chat_id, "isTyping": true}))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (_, state) = http.get(&format!("/api/chat/{chat_id}/state"), Some(&alice)).await.unwrap();
    assert_eq!(state["typing"][0]["userId"], "alice");
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (_, state) = http.get(&format!("/api/chat/{chat_id}/state"), Some(&alice)).await.unwrap();
        if state["typing"] == json!([]) {
            break;
        }
        assert!(Instant::now() < deadline, "typing never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Moderation, on the sender's turn (the rotation starts again with alice).
    let (status, err) = send(&http, &chat_id, &alice, "spam!").await;
    assert_eq!((status, err["error"]["code"].as_str()), (422, Some("message_rejected")));

    // Completion: both at once, ready once.
    let path = format!("/api/chat/{chat_id}/complete");
    let empty = json!({});
    let (ca, cb) = tokio::join!(http.post(&path, Some(&alice), &empty), http.post(&path, Some(&bob), &empty));
    let (ca, cb) = (ca.unwrap(), cb.unwrap());
    assert_eq!((ca.0, cb.0), (200, 200));
    assert!(ca.1["ready"] == true || cb.1["ready"] == true, "{ca:?} {cb:?}");
    let frames = collect_all(&mut a, &[&|f| is_event(f, "chat.completion.ready")]).await;
    assert_eq!(events_of(&frames, "chat.completion.ready").len(), 1);

    // History pages and analytics see the stored messages.
    let (_, page) = http
        .get(&format!("/api/chat/{chat_id}/messages?limit=1"), Some(&bob))
        .await
        .unwrap();
    assert_eq!(page["messages"][0]["senderId"], "assistant");
    let before = page["nextBefore"].as_str().unwrap();
    let (_, rest) = http
        .get(&format!("/api/chat/{chat_id}/messages?limit=5&before={before}"), Some(&bob))
        .await
        .unwrap();
    assert_eq!(
        (rest["messages"].as_array().unwrap().len(), &rest["nextBefore"]),
        (stored - 1, &Value::Null)
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, r) = http.get(&format!("/api/chat/{chat_id}/analytics"), Some(&alice)).await.unwrap();
        if r["messages"]["total"] == stored && r["messages"]["rejected"] == 1 && r["assistant"]["responses"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "analytics: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.close().await;
    stack.stop().await;
}
