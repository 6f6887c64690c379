//! The event fixtures under `tests/fixtures/` (the ones `cargo lambda invoke
//! --data-file` sends) parse into the functions' event types, and each function's
//! handler, wrapped exactly as in Lambda, does what it should with them.

use aws_lambda_events::encodings::Body;
use realtime_local::registry::{handler, Handler};
use realtime_shared::adapters::hub::Outbound;
use realtime_shared::keys;
use realtime_shared::ports::Item;
use realtime_shared::testing::{embedded, FIXTURE_SECRET};
use realtime_shared::ws::WsResponse;
use serde_json::Value;
use std::time::Duration;

const CONN: &str = "Fx3dZc1-IAMCJRg=";

fn fixture(name: &str) -> Value {
    let path = realtime_tests::procs::workspace_root().join("tests/fixtures").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

async fn ws(binary: &str, deps: &realtime_shared::Deps, name: &str) -> WsResponse {
    let Some(Handler::Ws(f)) = handler(binary) else {
        panic!("{binary} is not a ws function")
    };
    f(deps.clone(), serde_json::from_value(fixture(name)).unwrap()).await
}

async fn http(binary: &str, deps: &realtime_shared::Deps, name: &str) -> (i64, Value) {
    let Some(Handler::Http(f)) = handler(binary) else {
        panic!("{binary} is not an http function")
    };
    let r = f(deps.clone(), serde_json::from_value(fixture(name)).unwrap()).await;
    let body = match r.body {
        Some(Body::Text(t)) => serde_json::from_str(&t).unwrap(),
        _ => Value::Null,
    };
    (r.status_code, body)
}

async fn frame(rx: &mut tokio::sync::mpsc::Receiver<Outbound>) -> Value {
    match tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
        Ok(Some(Outbound::Text(t))) => serde_json::from_str(&t).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[tokio::test]
async fn websocket_fixtures_drive_the_connection_lifecycle() {
    let e = embedded(FIXTURE_SECRET);
    let mut rx = e.hub.register(CONN, None);
    let r = ws("ws-connect", &e.deps, "ws-connect.json").await;
    assert_eq!(r.status_code, 200);
    assert_eq!(
        r.headers.get("sec-websocket-protocol").and_then(|v| v.to_str().ok()),
        Some("realtime.v1")
    );
    assert!(e.deps.table.get(&keys::conn(CONN), keys::META).await.unwrap().is_some());

    assert_eq!(ws("ws-subscribe", &e.deps, "ws-subscribe.json").await.status_code, 200);
    let f = frame(&mut rx).await;
    assert_eq!(
        (f["type"].as_str(), f["channel"].as_str(), f["id"].as_str()),
        (Some("subscribed"), Some("user:alice"), Some("r1"))
    );
    ws("ws-ping", &e.deps, "ws-ping.json").await;
    assert_eq!(frame(&mut rx).await, serde_json::json!({"type": "pong", "id": "r4"}));
    ws("ws-unsubscribe", &e.deps, "ws-unsubscribe.json").await;
    assert_eq!(frame(&mut rx).await["type"], "unsubscribed");
    ws("ws-default", &e.deps, "ws-default.json").await;
    assert_eq!(frame(&mut rx).await["code"], "unknown_action");
    assert_eq!(ws("ws-disconnect", &e.deps, "ws-disconnect.json").await.status_code, 200);
    assert!(e.deps.table.get(&keys::conn(CONN), keys::META).await.unwrap().is_none());
}

#[tokio::test]
async fn http_fixtures_create_join_and_send() {
    let e = embedded(FIXTURE_SECRET);
    let (status, chat) = http("chat-create", &e.deps, "http-chat-create.json").await;
    assert_eq!((status, chat["title"].as_str()), (201, Some("Fixture chat")));
    // The join and send fixtures name chat C1: create it.
    e.deps
        .table
        .put(
            Item::new(keys::chat("C1"), keys::META).with("chatId", "C1").with("title", "C1"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(http("chat-join", &e.deps, "http-chat-join.json").await.0, 200);
    let (status, msg) = http("chat-send-message", &e.deps, "http-chat-send-message.json").await;
    assert_eq!((status, msg["content"].as_str()), (201, Some("hello")));
    let (status, again) = http("chat-send-message", &e.deps, "http-chat-send-message.json").await;
    assert_eq!((status, &again["id"]), (200, &msg["id"]));
}

async fn authorize(deps: &realtime_shared::Deps, name: &str) -> Value {
    let Some(Handler::Authorizer(f)) = handler("authorizer") else {
        panic!("authorizer is not an authorizer function")
    };
    f(deps.clone(), fixture(name)).await.unwrap()
}

#[tokio::test]
async fn authorizer_fixtures_are_allowed_and_the_context_reaches_the_functions() {
    let e = embedded(FIXTURE_SECRET);
    let ws_answer = authorize(&e.deps, "authorizer-ws-request.json").await;
    let statement = &ws_answer["policyDocument"]["Statement"][0];
    assert_eq!(
        (statement["Effect"].as_str(), ws_answer["principalId"].as_str()),
        (Some("Allow"), Some("alice"))
    );
    let http_answer = authorize(&e.deps, "authorizer-http-request.json").await;
    assert_eq!(http_answer["isAuthorized"], true);
    assert_eq!(http_answer["context"], ws_answer["context"]);

    // `$connect` as API Gateway invokes it after the authorizer: the context, and the token
    // header still there but not needed (drop it to be sure it is not read).
    let mut connect = fixture("ws-connect.json");
    connect["headers"]["Sec-WebSocket-Protocol"] = "realtime.v1".into();
    let mut context = ws_answer["context"].clone();
    context["principalId"] = ws_answer["principalId"].clone();
    connect["requestContext"]["authorizer"] = context;
    let Some(Handler::Ws(f)) = handler("ws-connect") else { panic!() };
    let _rx = e.hub.register(CONN, None);
    assert_eq!(f(e.deps.clone(), serde_json::from_value(connect).unwrap()).await.status_code, 200);
    let conn = e.deps.table.get(&keys::conn(CONN), keys::META).await.unwrap().unwrap();
    assert_eq!((conn.str("userId"), conn.str("name")), (Some("alice"), Some("Alice")));

    // An HTTP API route: the context under `lambda`, no Authorization header.
    let mut create = fixture("http-chat-create.json");
    create["headers"].as_object_mut().unwrap().remove("authorization");
    create["requestContext"]["authorizer"] = serde_json::json!({"lambda": http_answer["context"]});
    let Some(Handler::Http(f)) = handler("chat-create") else { panic!() };
    let r = f(e.deps.clone(), serde_json::from_value(create).unwrap()).await;
    assert_eq!(r.status_code, 201);
}

#[tokio::test]
async fn the_eventbridge_fixture_is_fanned_out_to_a_subscriber() {
    let e = embedded(FIXTURE_SECRET);
    let mut rx = e.hub.register(CONN, None);
    ws("ws-connect", &e.deps, "ws-connect.json").await;
    e.deps
        .table
        .put(Item::new(keys::chat("C1"), keys::member("alice")).with("userId", "alice"), None)
        .await
        .unwrap();
    let conn = realtime_shared::connections::get(e.deps.table.as_ref(), CONN)
        .await
        .unwrap()
        .unwrap();
    let chan = realtime_shared::channels::Channel::Chat("C1".into());
    realtime_shared::connections::subscribe(e.deps.table.as_ref(), &conn, &chan, &[], None)
        .await
        .unwrap();
    let Some(Handler::Event(f)) = handler("fanout") else {
        panic!("fanout is not an event function")
    };
    f(e.deps.clone(), fixture("eventbridge-chat-message-stored.json")).await.unwrap();
    let got = frame(&mut rx).await;
    assert_eq!((got["channel"].as_str(), got["seq"].as_u64()), (Some("chat:C1"), Some(1)));
    assert_eq!(got["event"]["data"]["content"], "hello");
    // EventBridge delivers at least once: the same event again pushes nothing.
    f(e.deps.clone(), fixture("eventbridge-chat-message-stored.json")).await.unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(200), rx.recv()).await.is_err());
}
