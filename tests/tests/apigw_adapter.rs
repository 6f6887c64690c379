//! `ApiGatewayPusher` against a small imitation of the API Gateway management API
//! (`POST/GET/DELETE /{stage}/@connections/{id}`), answering the way API Gateway does:
//! errors carry `x-amzn-ErrorType` and a JSON body `{"message": ...}` (restJson1), which
//! the SDK turns into its typed `GoneException` / `LimitExceededException`.
//!
//! Connection ids: `known=` (delivers, recorded), `throttled-twice` (429 twice, then 200),
//! `always-throttled` (429 forever), `bare-gone` (410 without an error type: the status
//! alone must do), anything else: 410 `GoneException`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use realtime_aws::apigw::{client_for, ApiGatewayPusher};
use realtime_aws::sdk::local_config;
use realtime_domain::ports::{ConnectionPusher, PushError};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

const STAGE: &str = "dev";

#[derive(Default)]
struct Api {
    /// Connections that exist.
    live: HashSet<String>,
    /// How many more posts to each id are throttled.
    throttle: HashMap<String, u32>,
    /// Requests per connection id, e.g. `POST known=`.
    requests: HashMap<String, u32>,
    /// What each connection received.
    delivered: HashMap<String, Vec<Vec<u8>>>,
}

type Shared = Arc<Mutex<Api>>;

fn error(status: StatusCode, error_type: Option<&str>, message: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    if let Some(t) = error_type {
        headers.insert("x-amzn-ErrorType", t.parse().unwrap());
    }
    (status, headers, json!({ "message": message }).to_string()).into_response()
}

fn gone() -> Response {
    error(StatusCode::GONE, Some("GoneException"), "Gone")
}

fn count(api: &mut Api, method: &str, id: &str) {
    *api.requests.entry(format!("{method} {id}")).or_default() += 1;
}

async fn post_to(State(api): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    let mut api = api.lock().unwrap();
    count(&mut api, "POST", &id);
    if id == "bare-gone" {
        return (StatusCode::GONE, "{}").into_response();
    }
    if !api.live.contains(&id) {
        return gone();
    }
    if let Some(n) = api.throttle.get_mut(&id).filter(|n| **n > 0) {
        *n -= 1;
        return error(StatusCode::TOO_MANY_REQUESTS, Some("LimitExceededException"), "Rate exceeded");
    }
    api.delivered.entry(id).or_default().push(body.to_vec());
    StatusCode::OK.into_response()
}

async fn get_conn(State(api): State<Shared>, Path(id): Path<String>) -> Response {
    let mut api = api.lock().unwrap();
    count(&mut api, "GET", &id);
    if !api.live.contains(&id) {
        return gone();
    }
    let body = json!({
        "connectedAt": "2026-01-02T03:04:05.000Z",
        "lastActiveAt": "2026-01-02T03:09:00.250Z",
        "identity": { "sourceIp": "203.0.113.7", "userAgent": "test-agent" },
    });
    ([("content-type", "application/json")], body.to_string()).into_response()
}

async fn delete_conn(State(api): State<Shared>, Path(id): Path<String>) -> Response {
    let mut api = api.lock().unwrap();
    count(&mut api, "DELETE", &id);
    if api.live.remove(&id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        gone()
    }
}

struct Fixture {
    api: Shared,
    client: aws_sdk_apigatewaymanagement::Client,
    pusher: ApiGatewayPusher,
    _server: tokio::task::JoinHandle<()>,
}

impl Fixture {
    fn requests(&self, what: &str) -> u32 {
        self.api.lock().unwrap().requests.get(what).copied().unwrap_or(0)
    }
    fn delivered(&self, id: &str) -> Vec<Vec<u8>> {
        self.api.lock().unwrap().delivered.get(id).cloned().unwrap_or_default()
    }
}

async fn fixture() -> Fixture {
    let mut api = Api::default();
    for id in ["known=", "throttled-twice", "always-throttled"] {
        api.live.insert(id.to_string());
    }
    api.throttle.insert("throttled-twice".into(), 2);
    api.throttle.insert("always-throttled".into(), u32::MAX);
    let api: Shared = Arc::new(Mutex::new(api));

    let app = Router::new()
        .route(
            &format!("/{STAGE}/@connections/{{id}}"),
            post(post_to).get(get_conn).delete(delete_conn),
        )
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });

    // As in Lambda: the endpoint includes the stage.
    let endpoint = format!("http://{addr}/{STAGE}");
    let client = client_for(&local_config(&endpoint), &endpoint);
    Fixture {
        api,
        client: client.clone(),
        pusher: ApiGatewayPusher::new(client),
        _server: server,
    }
}

/// The imitation's errors are the SDK's typed errors (so the adapter's mapping is the
/// one real API Gateway answers get), and `client_for` leaves retrying to the adapter.
#[tokio::test]
async fn the_imitation_answers_with_the_sdks_typed_errors() {
    let f = fixture().await;
    let post = |id: &'static str| f.client.post_to_connection().connection_id(id).data(b"x".to_vec().into()).send();
    let gone = post("stale").await.unwrap_err().into_service_error();
    assert!(gone.is_gone_exception(), "{gone:?}");
    let limited = post("always-throttled").await.unwrap_err().into_service_error();
    assert!(limited.is_limit_exceeded_exception(), "{limited:?}");
    assert_eq!(limited.meta().message(), Some("Rate exceeded"));
    assert_eq!(f.requests("POST always-throttled"), 1, "the SDK retried by itself");
    let gone = f
        .client
        .delete_connection()
        .connection_id("stale")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(gone.is_gone_exception(), "{gone:?}");
    let gone = f
        .client
        .get_connection()
        .connection_id("stale")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(gone.is_gone_exception(), "{gone:?}");
}

#[tokio::test]
async fn post_to_a_known_connection_delivers_the_exact_bytes() {
    let f = fixture().await;
    let frame: Vec<u8> = [b"{\"type\":\"event\",\"seq\":1}".as_slice(), &[0, 0xff, 0xfe, b'\n']].concat();
    f.pusher.post("known=", &frame).await.unwrap();
    f.pusher.post("known=", b"second").await.unwrap();
    assert_eq!(f.delivered("known="), vec![frame, b"second".to_vec()]);
    assert_eq!(f.requests("POST known="), 2);
}

#[tokio::test]
async fn post_to_an_unknown_connection_is_gone_without_retries() {
    let f = fixture().await;
    assert_eq!(f.pusher.post("stale", b"x").await, Err(PushError::Gone));
    assert_eq!(f.requests("POST stale"), 1);
    // A bare 410 (no error type) is Gone by its status.
    assert_eq!(f.pusher.post("bare-gone", b"x").await, Err(PushError::Gone));
    assert_eq!(f.requests("POST bare-gone"), 1);
}

#[tokio::test]
async fn a_throttled_post_succeeds_after_retries() {
    let f = fixture().await;
    let t = Instant::now();
    f.pusher.post("throttled-twice", b"hello").await.unwrap();
    eprintln!("two throttles absorbed in {:?}", t.elapsed());
    assert_eq!(f.requests("POST throttled-twice"), 3, "two 429s, then the delivery");
    assert_eq!(f.delivered("throttled-twice"), vec![b"hello".to_vec()]);
}

#[tokio::test]
async fn a_post_throttled_on_every_attempt_is_throttled() {
    let f = fixture().await;
    let t = Instant::now();
    assert_eq!(f.pusher.post("always-throttled", b"x").await, Err(PushError::Throttled));
    let took = t.elapsed();
    eprintln!("gave up after {took:?}");
    assert_eq!(f.requests("POST always-throttled"), ApiGatewayPusher::DEFAULT_BACKOFF.attempts);
    assert!(f.delivered("always-throttled").is_empty());
    // Jittered backoff: waits of at least half of 25, 50 and 100 ms.
    assert!(took.as_millis() >= 87, "no backoff between attempts? {took:?}");
}

#[tokio::test]
async fn info_reads_the_connection() {
    let f = fixture().await;
    let info = f.pusher.info("known=").await.unwrap();
    assert_eq!(info.connected_at.to_rfc3339(), "2026-01-02T03:04:05+00:00");
    assert_eq!(
        info.last_active_at.timestamp_millis(),
        info.connected_at.timestamp_millis() + 295_250
    );
    assert_eq!(info.source_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(f.pusher.info("stale").await, Err(PushError::Gone));
}

#[tokio::test]
async fn close_deletes_the_connection_and_it_is_gone_afterwards() {
    let f = fixture().await;
    f.pusher.close("known=").await.unwrap();
    assert_eq!(f.requests("DELETE known="), 1);
    assert_eq!(f.pusher.close("known=").await, Err(PushError::Gone));
    assert_eq!(f.pusher.post("known=", b"late").await, Err(PushError::Gone));
    assert_eq!(f.pusher.info("known=").await, Err(PushError::Gone));
    assert!(f.delivered("known=").is_empty());
}
