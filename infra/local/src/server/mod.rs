//! The one address of the local stack: `/ws` (WebSocket API), `/api/*` (HTTP API),
//! `/@connections/{id}` (management API), `POST /` (EventBridge `PutEvents`), `/`.

use crate::registry::Handler;
use crate::sigv4::{self, Service};
use crate::stack::Stack;
use crate::template::{AuthorizerKind, IdentitySource};
use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use base64::Engine;
use futures::{SinkExt, StreamExt};
use realtime_domain::auth::{self, Claims, Role};
use realtime_domain::frames::MAX_FRAME_BYTES;
use realtime_embedded::hub::{Outbound, Outgoing};

/// API Gateway's largest WebSocket message (a frame is at most `MAX_FRAME_BYTES`).
const MAX_MESSAGE_BYTES: usize = 128 * 1024;
use realtime_domain::ports::{ConnectionPusher, PushError};
use realtime_edge::http::MAX_BODY_BYTES;
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::sync::Arc;

mod authorizer;
mod http_api;
mod management;
mod page;
mod put_events;
mod websocket;

use authorizer::*;
use http_api::*;
use management::*;
use page::*;
use put_events::*;
use websocket::*;

type Shared = State<Arc<Stack>>;

pub fn router(stack: Arc<Stack>) -> Router {
    let mut router = Router::new();
    if stack.production.is_none() {
        // Development only: minting tokens and dropping sockets are doors for anyone.
        router = router
            .route("/api/dev/token", post(dev_token))
            .route("/api/dev/drop", post(dev_drop))
            .route("/api/dev/stats", get(dev_stats));
    }
    router
        .route("/", get(page).post(put_events))
        .route("/ws", get(ws_upgrade))
        .route("/web/{file}", get(web_asset))
        .route(
            "/web/vendor/{file}",
            get(|Path(file): Path<String>| async move { web_file(&format!("vendor/{file}")) }),
        )
        // The client package's built modules (clients/js/dist), as an application imports them.
        .route(
            "/web/realtime/{file}",
            get(|Path(file): Path<String>| async move { web_file(&format!("realtime/{file}")) }),
        )
        // The admin console: one page, a tab per route.
        .route("/admin/events", get(|| async { web_file("admin.html") }))
        .route("/admin/websocket", get(|| async { web_file("admin.html") }))
        .route("/api/{*rest}", any(http_api))
        .route("/@connections/{id}", post(conn_post).get(conn_get).delete(conn_delete))
        // The template's `ManagementEndpoint` output names the stage: `https://…/{stage}`.
        .route("/{stage}/@connections/{id}", post(conn_post).get(conn_get).delete(conn_delete))
        // Nothing on this address takes more than PutEvents' 1 MB; larger bodies are
        // refused before they are read (and answered as JSON by `body_within`).
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(axum::middleware::from_fn_with_state(stack.clone(), cors))
        .layer(axum::middleware::from_fn_with_state(stack.clone(), body_deadline))
        .with_state(stack)
}

/// A body not sent within the body read timeout is answered 408 (a client that sends half
/// a request no longer holds a connection and a task forever).
async fn body_deadline(State(stack): Shared, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let has_body =
        req.headers().contains_key(axum::http::header::CONTENT_LENGTH) || req.headers().contains_key(axum::http::header::TRANSFER_ENCODING);
    if !has_body {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(stack.body_read_timeout, axum::body::to_bytes(body, MAX_REQUEST_BYTES + 1)).await {
        Ok(Ok(bytes)) => next.run(axum::extract::Request::from_parts(parts, Body::from(bytes))).await,
        Ok(Err(e)) if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) => json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &format!("bodies are at most {} KB here", MAX_REQUEST_BYTES / 1024),
        ),
        Ok(Err(_)) => json_error(StatusCode::BAD_REQUEST, "bad_request", "the body could not be read"),
        Err(_) => json_error(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            &format!("the body did not arrive within {} ms", stack.body_read_timeout.as_millis()),
        ),
    }
}

/// The largest body anything on this address takes (PutEvents' 1 MB).
const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// CORS as the template sets it: API Gateway answers an HTTP API's preflight itself (the
/// routes and the authorizer never see it) and adds `Access-Control-Allow-Origin` to the
/// answers of an allowed `Origin`; a function URL does the same with its `Cors`.
async fn cors(State(stack): Shared, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let path = req.uri().path();
    let setting = match stack.template.match_stream(path) {
        Some((route, _)) => route.cors.clone(),
        None if path.starts_with("/api/") => stack.template.http_cors.clone(),
        None => None,
    };
    let origin = req.headers().get("origin").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (Some(setting), Some(origin)) = (setting, origin) else {
        return next.run(req).await;
    };
    let allowed = setting.allow_origin(&origin);
    if req.method() == Method::OPTIONS && req.headers().contains_key("access-control-request-method") {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        if let Some(allowed) = allowed {
            let h = resp.headers_mut();
            let join = |v: &[String]| HeaderValue::from_str(&v.join(",")).ok();
            if let Ok(v) = HeaderValue::from_str(&allowed) {
                h.insert("access-control-allow-origin", v);
            }
            if let Some(v) = join(&setting.allow_methods) {
                h.insert("access-control-allow-methods", v);
            }
            if let Some(v) = join(&setting.allow_headers) {
                h.insert("access-control-allow-headers", v);
            }
            if let Some(age) = setting.max_age {
                h.insert("access-control-max-age", HeaderValue::from(age));
            }
        }
        return resp;
    }
    let mut resp = next.run(req).await;
    if let Some(v) = allowed.and_then(|a| HeaderValue::from_str(&a).ok()) {
        resp.headers_mut().insert("access-control-allow-origin", v);
    }
    resp
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({"error": {"code": code, "message": message}}))).into_response()
}

/// The body, or the API's 413 JSON answer when it is over `limit` (or over the
/// router's limit, which refuses it unread).
fn body_within(body: Result<Bytes, axum::extract::rejection::BytesRejection>, limit: usize) -> Result<Bytes, Box<Response>> {
    let too_large = || {
        Box::new(json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &format!("body larger than {} KB", limit / 1024),
        ))
    };
    match body {
        Ok(b) if b.len() <= limit => Ok(b),
        Ok(_) => Err(too_large()),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(too_large()),
        Err(e) => Err(Box::new(json_error(StatusCode::BAD_REQUEST, "bad_request", &e.body_text()))),
    }
}

fn headers_json(headers: &HeaderMap) -> Map<String, Value> {
    let mut out = Map::new();
    for name in headers.keys() {
        let joined = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        out.insert(name.as_str().to_string(), Value::String(joined));
    }
    out
}

fn query_json(query: Option<&str>) -> Map<String, Value> {
    let mut out = Map::new();
    for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        // A query string is form-encoded: `+` is a space there (not in a path).
        let decode = |s: &str| crate::template::percent_decode(&s.replace('+', " "));
        out.insert(decode(k), Value::String(decode(v)));
    }
    out
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
