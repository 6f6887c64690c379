//! `--functions-url` against a Lambda Invoke API this test serves: every function the chat
//! scenario needs is invoked over HTTP by its binary name, with the very events API Gateway
//! and EventBridge would send, and its answer is read back as API Gateway reads it. The
//! fake runs the handlers in-process (`cargo lambda watch` runs the binaries:
//! `infra/check-lambda-watch.sh`), except `ws-ping`, which fails as a crashed function
//! does, so the socket gets API Gateway's "Internal server error" frame.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use realtime_domain::Deps;
use realtime_local::registry::{self, Handler};
use realtime_local::stack::Options;
use realtime_tests::client::{Http, TokenIn, WsClient};
use realtime_tests::dynamodb_local::DynamoDbLocal;
use realtime_tests::start_stack_with;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

#[derive(Clone, Default)]
struct Fake {
    deps: Arc<OnceLock<Deps>>,
    calls: Arc<Mutex<HashMap<String, usize>>>,
}

fn function_error(message: &str) -> Response {
    (
        [("x-amz-function-error", "Unhandled")],
        axum::Json(json!({"errorType": "Error", "errorMessage": message})),
    )
        .into_response()
}

async fn invoke(State(fake): State<Fake>, Path(name): Path<String>, axum::Json(payload): axum::Json<Value>) -> Response {
    *fake.calls.lock().unwrap().entry(name.clone()).or_default() += 1;
    let deps = fake.deps.get().expect("the stack is up").clone();
    if name == "ws-ping" {
        return function_error("the function crashed");
    }
    match registry::handler(&name) {
        Some(Handler::Ws(f)) => axum::Json(f(deps, serde_json::from_value(payload).unwrap()).await).into_response(),
        Some(Handler::Http(f)) => axum::Json(f(deps, serde_json::from_value(payload).unwrap()).await).into_response(),
        Some(Handler::Event(f)) => match f(deps, payload).await {
            Ok(()) => axum::Json(Value::Null).into_response(),
            Err(e) => function_error(&e.message),
        },
        Some(Handler::Authorizer(f)) => match f(deps, payload).await {
            Ok(answer) => axum::Json(answer).into_response(),
            Err(message) => function_error(&message),
        },
        _ => (axum::http::StatusCode::NOT_FOUND, "no such function").into_response(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stack_invokes_each_function_over_the_invoke_api() {
    let dynamo = DynamoDbLocal::start().await.unwrap();
    let fake = Fake::default();
    let app = axum::Router::new()
        .route("/2015-03-31/functions/{name}/invocations", axum::routing::post(invoke))
        .with_state(fake.clone());
    let url = format!("http://{}", realtime_tests::serve(app).await);
    let stack = start_stack_with(Options {
        dynamodb_endpoint: Some(dynamo.endpoint.clone()),
        functions_url: Some(url),
        ..Default::default()
    })
    .await
    .unwrap();
    let _ = fake.deps.set(stack.stack.deps.clone());

    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &[]).await.unwrap();
    let (status, chat) = http.post("/api/chat", Some(&alice), &json!({"title": "remote"})).await.unwrap();
    assert_eq!(status, 201, "{chat}");
    let chat_id = chat["chatId"].as_str().unwrap().to_string();
    let mut c = WsClient::connect(&stack.ws_url(), Some(&alice), TokenIn::Subprotocol)
        .await
        .unwrap();
    let ack = c.subscribe("s", &format!("chat:{chat_id}"), &["chat.message.*"]).await.unwrap();
    assert_eq!(ack["type"], "subscribed", "{ack}");
    let (status, msg) = http
        .post(
            &format!("/api/chat/{chat_id}/messages"),
            Some(&alice),
            &json!({"content": "over HTTP"}),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{msg}");
    let f = c
        .next_where(Duration::from_secs(20), |f| f["type"] == "event")
        .await
        .expect("the message, through the relay and the fan-out");
    assert_eq!(f["event"]["data"]["id"], msg["id"]);

    // A route whose function fails: API Gateway's frame, and the socket stays open.
    c.send(&json!({"action": "ping", "id": "p1"})).await.unwrap();
    let frame = c.next_where(Duration::from_secs(5), |f| f.get("message").is_some()).await.unwrap();
    assert_eq!(frame["message"], "Internal server error", "{frame}");
    assert!(frame["connectionId"].is_string() && frame["requestId"].is_string(), "{frame}");
    let again = c.subscribe("s2", &format!("chat:{chat_id}"), &[]).await.unwrap();
    assert_eq!(again["type"], "subscribed");

    let calls = fake.calls.lock().unwrap().clone();
    for f in [
        "authorizer",
        "ws-connect",
        "ws-subscribe",
        "chat-create",
        "chat-send-message",
        "log-relay",
        "fanout",
        "ws-ping",
    ] {
        assert!(calls.get(f).copied().unwrap_or(0) > 0, "{f} was never invoked: {calls:?}");
    }
    c.close().await;
    stack.stop().await;
}
