//! End to end over the local stack: the authorizer function guards WebSocket `$connect` and the
//! HTTP routes as API Gateway runs it. A missing token is a 401, a refused one (expired, forged,
//! tampered, alg=none) a 403, on both APIs; a valid one gets through, and the functions act for
//! the user the authorizer's context names.

use realtime_domain::auth::{self, Claims, Role};
use realtime_tests::client::{Http, TokenIn, WsClient};
use realtime_tests::start_stack;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite;

/// The secret `start_stack` configures.
const SECRET: &str = "test-secret-test-secret-0123456789";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn mint(secret: &str, sub: &str, roles: Vec<Role>, exp: i64) -> String {
    auth::mint(
        secret,
        &Claims {
            sub: sub.into(),
            roles,
            name: Some(sub.to_uppercase()),
            exp,
        },
    )
}

/// `{"alg":"none","typ":"JWT"}`, base64url.
const ALG_NONE_HEADER: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
/// `{"sub":"mallory","roles":["admin"],"exp":4102444800}`, base64url.
const ADMIN_PAYLOAD: &str = "eyJzdWIiOiJtYWxsb3J5Iiwicm9sZXMiOlsiYWRtaW4iXSwiZXhwIjo0MTAyNDQ0ODAwfQ";

/// Tokens the authorizer must refuse, by why.
fn bad_tokens() -> Vec<(&'static str, String)> {
    let good = mint(SECRET, "mallory", vec![], now() + 3600);
    let parts: Vec<&str> = good.split('.').collect();
    // Mallory's real signature over a payload that makes her an admin.
    let tampered = format!("{}.{ADMIN_PAYLOAD}.{}", parts[0], parts[2]);
    let alg_none = format!("{ALG_NONE_HEADER}.{ADMIN_PAYLOAD}.");
    vec![
        ("expired", mint(SECRET, "mallory", vec![], now() - 10)),
        (
            "forged",
            mint("another-secret-another-secret-0123", "mallory", vec![Role::Admin], now() + 3600),
        ),
        ("tampered", tampered),
        ("alg=none", alg_none),
    ]
}

/// The HTTP status and JSON body of a refused WebSocket upgrade.
async fn refused_upgrade(url: &str, token: Option<&str>, how: TokenIn) -> (u16, Value) {
    let Err(err) = WsClient::connect(url, token, how).await else {
        panic!("the connection was accepted")
    };
    match err.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Http(resp)) => {
            let body = resp.body().as_deref().and_then(|b| serde_json::from_slice(b).ok());
            (resp.status().as_u16(), body.unwrap_or(Value::Null))
        }
        _ => panic!("not an HTTP refusal: {err:#}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_connects_without_a_valid_token_are_refused_before_connect_runs() {
    let stack = start_stack().await.unwrap();
    let url = stack.ws_url();

    let (status, body) = refused_upgrade(&url, None, TokenIn::Subprotocol).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")), "{body}");
    let (status, _) = refused_upgrade(&url, Some(""), TokenIn::Query).await;
    assert_eq!(status, 401, "an empty ?token= is no token");

    for (why, token) in bad_tokens() {
        for how in [TokenIn::Subprotocol, TokenIn::Query] {
            let (status, body) = refused_upgrade(&url, Some(&token), how).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (403, Some("forbidden")),
                "{why} in {how:?}: {body}"
            );
        }
    }
    // Refused at the authorizer: `$connect` never ran, so no connection was registered or stored.
    assert_eq!(stack.stack.hub.len(), 0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_valid_tokens_connect_as_the_authorized_user() {
    let stack = start_stack().await.unwrap();
    let token = mint(SECRET, "dana", vec![Role::Driver], now() + 3600);
    for how in [TokenIn::Subprotocol, TokenIn::Query] {
        let mut c = WsClient::connect(&stack.ws_url(), Some(&token), how).await.unwrap();
        assert_eq!(c.protocol.as_deref(), Some("realtime.v1"), "{how:?}");
        // The connection carries the context's user and roles: dana's own channel and, as a
        // driver, `drivers`; not `admin`.
        for (id, channel, answer) in [
            ("u", "user:dana", "subscribed"),
            ("d", "drivers", "subscribed"),
            ("a", "admin", "error"),
        ] {
            let ack = c.subscribe(id, channel, &[]).await.unwrap();
            assert_eq!(ack["type"], answer, "{how:?} {channel}: {ack}");
        }
        c.close().await;
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_routes_refuse_missing_and_bad_tokens_and_act_for_the_authorized_user() {
    let stack = start_stack().await.unwrap();
    let http = Http::new(stack.http_url());
    let chat = json!({"title": "Guarded"});

    let (status, body) = http.post("/api/chat", None, &chat).await.unwrap();
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")), "{body}");
    // A header that is present but not a bearer token reaches the authorizer, which refuses it.
    let resp = reqwest::Client::new()
        .post(format!("{}/api/chat", stack.http_url()))
        .header("authorization", "Basic YWxpY2U6eA==")
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    for (why, token) in bad_tokens() {
        let (status, body) = http.post("/api/chat", Some(&token), &chat).await.unwrap();
        assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{why}: {body}");
    }
    // Every route is guarded, not only the first.
    let (status, _) = http.post("/api/chat/C1/messages", None, &json!({"content": "hi"})).await.unwrap();
    assert_eq!(status, 401);

    // The local-only token route stays open, and its token is accepted.
    let alice = http.dev_token("alice", &["organizer"]).await.unwrap();
    let (status, created) = http.post("/api/chat", Some(&alice), &chat).await.unwrap();
    assert_eq!(status, 201, "{created}");
    let participants = created["participants"].as_array().unwrap();
    assert_eq!(participants.len(), 1, "{created}");
    assert_eq!(
        (participants[0]["userId"].as_str(), participants[0]["role"].as_str()),
        (Some("alice"), Some("organizer")),
        "{created}"
    );
    stack.stop().await;
}
