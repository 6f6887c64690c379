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

type Shared = State<Arc<Stack>>;

pub fn router(stack: Arc<Stack>) -> Router {
    let mut router = Router::new();
    if stack.production.is_none() {
        // Development only: minting tokens and dropping sockets are doors for anyone.
        router = router
            .route("/api/dev/token", post(dev_token))
            .route("/api/dev/drop", post(dev_drop));
    }
    router
        .route("/", get(page).post(put_events))
        .route("/ws", get(ws_upgrade))
        .route("/web/{file}", get(web_asset))
        .route(
            "/web/vendor/{file}",
            get(|Path(file): Path<String>| async move { web_file(&format!("vendor/{file}")) }),
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
        out.insert(decode(k), Value::String(decode(v)));
    }
    out
}

fn decode(s: &str) -> String {
    let bytes = s.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

// ---------- HTTP API ----------

async fn http_api(
    State(stack): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let path = uri.path();
    let Some((route, params)) = stack.template.match_http(method.as_str(), path) else {
        if let Some((route, _)) = stack.template.match_stream(path) {
            let function = route.function.clone();
            return function_url(&stack, &function, peer, method, uri, headers, body).await;
        }
        return json_error(StatusCode::NOT_FOUND, "not_found", &format!("no route for {method} {path}"));
    };
    let body = match body_within(body, MAX_BODY_BYTES) {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    let Some(Handler::Http(f)) = stack.handler(&route.function) else {
        return json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "route has no HTTP handler");
    };
    let (body, b64) = match std::str::from_utf8(&body) {
        Ok(s) => (s.to_string(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(&body), true),
    };
    let route_key = format!("{} {}", route.method, route.path);
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": uri.query().unwrap_or_default(),
        "headers": headers_json(&headers),
        "queryStringParameters": query_json(uri.query()),
        "pathParameters": params.into_iter().map(|(k, v)| (k, Value::String(v))).collect::<Map<String, Value>>(),
        "requestContext": {
            "accountId": "000000000000", "apiId": "local", "domainName": headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost"),
            "http": {"method": method.as_str(), "path": path, "protocol": "HTTP/1.1", "sourceIp": peer.ip().to_string(),
                     "userAgent": headers.get("user-agent").and_then(|h| h.to_str().ok()).unwrap_or_default()},
            "requestId": ulid::Ulid::new().to_string(), "routeKey": route_key, "stage": "$default",
            "time": chrono::Utc::now().to_rfc2822(), "timeEpoch": now_ms()
        },
        "body": body,
        "isBase64Encoded": b64,
    });
    if let Some(name) = &route.authorizer {
        // The 2.0 authorizer payload: the request without its body, plus what API Gateway adds.
        let mut auth_event = event.clone();
        if let Some(e) = auth_event.as_object_mut() {
            e.remove("body");
            e.remove("isBase64Encoded");
        }
        let arn = format!("{ARN_PREFIX}/$default/{}{path}", method.as_str());
        match authorize(&stack, name, auth_event, &arn, &headers, uri.query()).await {
            Ok(context) => event["requestContext"]["authorizer"] = json!({"lambda": context}),
            Err(refused) => return refused,
        }
    }
    if let (Some(remote), Some(binary)) = (&stack.remote, stack.template.binary_of(&route.function)) {
        return match remote.invoke(binary, &event).await {
            Ok(answer) => lambda_http_answer(&answer),
            Err(e) => {
                tracing::error!(function = binary, error = %e, "HTTP route function failed");
                // What API Gateway answers when the integration fails.
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    axum::Json(json!({"message": "Internal Server Error"})),
                )
                    .into_response()
            }
        };
    }
    let req = match serde_json::from_value(event) {
        Ok(r) => r,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, "bad_request", &e.to_string()),
    };
    let resp = f(stack.deps.clone(), req).await;
    let mut out = Response::builder().status(StatusCode::from_u16(resp.status_code as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for (k, v) in resp.headers.iter() {
        out = out.header(k, v);
    }
    let body = match resp.body {
        Some(aws_lambda_events::encodings::Body::Text(t)) => Body::from(t),
        Some(aws_lambda_events::encodings::Body::Binary(b)) => Body::from(b),
        _ => Body::empty(),
    };
    out.body(body).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A function's payload 2.0 answer (`statusCode`, `headers`, `body`, `isBase64Encoded`) as
/// the HTTP response API Gateway makes of it.
fn lambda_http_answer(answer: &Value) -> Response {
    let status = answer["statusCode"].as_u64().and_then(|s| StatusCode::from_u16(s as u16).ok());
    let mut out = Response::builder().status(status.unwrap_or(StatusCode::OK));
    if let Some(headers) = answer["headers"].as_object() {
        for (k, v) in headers {
            if let Some(v) = v.as_str() {
                out = out.header(k.as_str(), v);
            }
        }
    }
    let body = answer["body"].as_str().unwrap_or_default();
    let body = if answer["isBase64Encoded"] == true {
        Body::from(base64::engine::general_purpose::STANDARD.decode(body).unwrap_or_default())
    } else {
        Body::from(body.to_owned())
    };
    out.body(body).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A streaming function URL (`InvokeMode: RESPONSE_STREAM`): the request as a function URL
/// sends it (payload 2.0, route `$default`, no path parameters, no authorizer: the function
/// checks the caller), the answer streamed to the client as the function produces it.
async fn function_url(
    stack: &Stack,
    function: &str,
    peer: SocketAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body_within(body, MAX_BODY_BYTES) {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    let Some(Handler::Stream(f)) = stack.handler(function) else {
        return json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "function URL has no streaming handler",
        );
    };
    let (body, b64) = match std::str::from_utf8(&body) {
        Ok(s) => (s.to_string(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(&body), true),
    };
    let path = uri.path();
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": uri.query().unwrap_or_default(),
        "headers": headers_json(&headers),
        "queryStringParameters": query_json(uri.query()),
        "requestContext": {
            "accountId": "anonymous", "apiId": "local", "domainName": headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost"),
            "http": {"method": method.as_str(), "path": path, "protocol": "HTTP/1.1", "sourceIp": peer.ip().to_string(),
                     "userAgent": headers.get("user-agent").and_then(|h| h.to_str().ok()).unwrap_or_default()},
            "requestId": ulid::Ulid::new().to_string(), "routeKey": "$default", "stage": "$default",
            "time": chrono::Utc::now().to_rfc2822(), "timeEpoch": now_ms()
        },
        "body": body,
        "isBase64Encoded": b64,
    });
    let req = match serde_json::from_value(event) {
        Ok(r) => r,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, "bad_request", &e.to_string()),
    };
    let resp = f(stack.deps.clone(), req).await;
    let mut out = Response::builder().status(StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for (k, v) in &resp.headers {
        out = out.header(k.as_str(), v.as_str());
    }
    let body = resp.body.take_until(stack.streams_ended());
    out.body(Body::from_stream(body.map(Ok::<Bytes, std::convert::Infallible>)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

// ---------- Lambda authorizers ----------

/// The execute-api ARN of the local APIs, before `/{stage}/...`.
const ARN_PREFIX: &str = "arn:aws:execute-api:local:000000000000:local";

/// Runs an authorizer as API Gateway does before a route: 401 without invoking it when an
/// identity source is missing; then 401 when it fails with `Unauthorized`, 500 when it fails
/// otherwise, 403 when its answer does not allow `arn`; else the context it passes on.
async fn authorize(
    stack: &Stack,
    name: &str,
    mut event: Value,
    arn: &str,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Map<String, Value>, Response> {
    let internal = || json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal Server Error");
    let unauthorized = || json_error(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized");
    let Some(authorizer) = stack.template.authorizer(name) else {
        return Err(internal());
    };
    let Some(Handler::Authorizer(f)) = stack.handler(&authorizer.function) else {
        return Err(internal());
    };
    let query = query_json(query);
    let mut identity = Vec::new();
    for source in &authorizer.identity_sources {
        let value = match source {
            IdentitySource::Header(h) => headers.get(h.as_str()).and_then(|v| v.to_str().ok()),
            IdentitySource::Query(q) => query.get(q).and_then(Value::as_str),
        };
        match value.filter(|v| !v.is_empty()) {
            Some(v) => identity.push(Value::String(v.to_string())),
            None => return Err(unauthorized()),
        }
    }
    event["type"] = "REQUEST".into();
    match authorizer.kind {
        AuthorizerKind::WebSocket => event["methodArn"] = arn.into(),
        AuthorizerKind::Http { .. } => {
            event["routeArn"] = arn.into();
            event["identitySource"] = identity.into();
        }
    }
    let answered = match (&stack.remote, stack.template.binary_of(&authorizer.function)) {
        (Some(remote), Some(binary)) => remote.invoke(binary, &event).await,
        _ => f(stack.deps.clone(), event).await,
    };
    let answer = match answered {
        Ok(answer) => answer,
        Err(message) if message == "Unauthorized" => return Err(unauthorized()),
        Err(message) => {
            tracing::warn!(authorizer = %name, error = %message, "authorizer failed");
            return Err(internal());
        }
    };
    let allowed = match authorizer.kind {
        AuthorizerKind::Http { simple_responses: true } => answer.get("isAuthorized") == Some(&Value::Bool(true)),
        _ => policy_allows(&answer["policyDocument"], arn),
    };
    if !allowed {
        return Err(json_error(StatusCode::FORBIDDEN, "forbidden", "Forbidden"));
    }
    let mut context = answer.get("context").and_then(Value::as_object).cloned().unwrap_or_default();
    if authorizer.kind == AuthorizerKind::WebSocket {
        if let Some(principal) = answer.get("principalId") {
            context.insert("principalId".into(), principal.clone());
        }
    }
    Ok(context)
}

/// Whether an authorizer's IAM policy lets `arn` be invoked: an Allow statement covers it and no
/// Deny statement does.
fn policy_allows(policy: &Value, arn: &str) -> bool {
    fn strings(v: Option<&Value>) -> Vec<&str> {
        match v {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }
    let statements: Vec<&Value> = match policy.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
        None => Vec::new(),
    };
    let covers = |effect: &str| {
        statements.iter().any(|s| {
            s.get("Effect").and_then(Value::as_str) == Some(effect)
                && strings(s.get("Action"))
                    .iter()
                    .any(|a| wildcard_match(&a.to_ascii_lowercase(), "execute-api:invoke"))
                && strings(s.get("Resource")).iter().any(|r| wildcard_match(r, arn))
        })
    };
    covers("Allow") && !covers("Deny")
}

/// IAM wildcards: `*` matches any run of characters, `?` one character.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Local only: mints a token so a newcomer can try the API (API.md "Auth").
async fn dev_token(State(stack): Shared, body: Result<Bytes, axum::extract::rejection::BytesRejection>) -> Response {
    let body = match body_within(body, 4 * 1024) {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Req {
        sub: String,
        #[serde(default)]
        roles: Vec<Role>,
        #[serde(default)]
        name: Option<String>,
    }
    let req: Req = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, "invalid_json", &e.to_string()),
    };
    if !realtime_domain::ids::valid_id(&req.sub) {
        return json_error(StatusCode::BAD_REQUEST, "bad_request", "sub must be 1-64 letters, digits, - or _");
    }
    let claims = Claims {
        sub: req.sub,
        roles: req.roles,
        name: req.name,
        exp: chrono::Utc::now().timestamp() + 24 * 3600,
    };
    let token = auth::mint(stack.deps.config.jwt_secret.expose(), &claims);
    axum::Json(json!({"token": token, "claims": claims})).into_response()
}

// ---------- WebSocket API ----------

/// What API Gateway knows about one socket, for the events of its routes.
#[derive(Clone)]
struct Socket {
    conn_id: String,
    peer: SocketAddr,
    connected_at: i64,
}

impl Socket {
    fn event(&self, route_key: &str, event_type: &str, headers: Option<&HeaderMap>, query: Option<&str>, body: Option<&str>) -> Value {
        let mut event = json!({
            "requestContext": {
                "routeKey": route_key, "eventType": event_type, "connectionId": self.conn_id, "messageDirection": "IN",
                "requestId": ulid::Ulid::new().to_string(), "domainName": "localhost", "stage": "local", "apiId": "local",
                "connectedAt": self.connected_at, "requestTimeEpoch": now_ms(), "identity": {"sourceIp": self.peer.ip().to_string()}
            },
            "isBase64Encoded": false
        });
        if let Some(h) = headers {
            event["headers"] = Value::Object(headers_json(h));
        }
        if let Some(q) = query {
            event["queryStringParameters"] = Value::Object(query_json(Some(q)));
        }
        if let Some(b) = body {
            event["body"] = Value::String(b.to_string());
        }
        event
    }
}

/// Runs a WebSocket route's function. When it fails (here: panics), API Gateway answers a
/// message with `{"message": "Internal server error", "connectionId", "requestId"}` on the
/// socket and refuses a `$connect` with 500.
async fn invoke_ws(stack: &Stack, route_key: &str, event: Value) -> Option<u16> {
    let route = stack.template.ws_route(route_key)?;
    let Some(Handler::Ws(f)) = stack.handler(&route.function) else {
        return None;
    };
    let conn_id = event["requestContext"]["connectionId"].as_str().unwrap_or_default().to_owned();
    let request_id = event["requestContext"]["requestId"].as_str().unwrap_or_default().to_owned();
    let is_message = event["requestContext"]["eventType"] == "MESSAGE";
    let outcome = match &stack.remote {
        Some(remote) => {
            let binary = stack.template.binary_of(&route.function)?;
            remote
                .invoke(binary, &event)
                .await
                .map(|answer| answer["statusCode"].as_u64().unwrap_or(200) as u16)
        }
        None => {
            let req = serde_json::from_value(event).ok()?;
            tokio::spawn(f(stack.deps.clone(), req))
                .await
                .map(|resp| resp.status_code as u16)
                .map_err(|e| e.to_string())
        }
    };
    match outcome {
        Ok(status) => Some(status),
        Err(e) => {
            tracing::error!(route = route_key, error = %e, "WebSocket route function failed");
            if is_message {
                let frame = json!({"message": "Internal server error", "connectionId": conn_id, "requestId": request_id});
                let _ = stack.hub.post(&conn_id, frame.to_string().as_bytes()).await;
            }
            Some(500)
        }
    }
}

async fn ws_upgrade(
    State(stack): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(prod) = &stack.production {
        let origin = headers.get("origin").map(|v| v.to_str().unwrap_or("\u{fffd}"));
        if !prod.origin_allowed(origin) {
            return json_error(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this Origin may not open a WebSocket here",
            );
        }
    }
    let sock = Socket {
        conn_id: ulid::Ulid::new().to_string(),
        peer,
        connected_at: now_ms(),
    };
    let mut event = sock.event("$connect", "CONNECT", Some(&headers), uri.query(), None);
    if let Some(name) = stack.template.ws_route("$connect").and_then(|r| r.authorizer.clone()) {
        let arn = format!("{ARN_PREFIX}/local/$connect");
        let mut auth_event = event.clone();
        auth_event["stageVariables"] = json!({});
        match authorize(&stack, &name, auth_event, &arn, &headers, uri.query()).await {
            Ok(context) => event["requestContext"]["authorizer"] = Value::Object(context),
            Err(refused) => return refused,
        }
    }
    let user = event["requestContext"]["authorizer"]["userId"].as_str().unwrap_or_default();
    let slot = match stack.admit_socket(user) {
        Ok(slot) => slot,
        Err(why) => return json_error(StatusCode::TOO_MANY_REQUESTS, "too_many_connections", &why),
    };
    // Registered before `$connect` runs, as API Gateway accepts posts during it.
    let user_agent = headers.get("user-agent").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let outbound = stack.hub.register_with(&sock.conn_id, Some(peer.ip().to_string()), user_agent);
    match invoke_ws(&stack, "$connect", event).await {
        Some(200..=299) => {}
        status => {
            stack.hub.unregister(&sock.conn_id);
            let code = StatusCode::from_u16(status.unwrap_or(500)).unwrap_or(StatusCode::FORBIDDEN);
            return json_error(code, "connect_refused", "the $connect route refused the connection");
        }
    }
    upgrade
        // tungstenite keeps (and zero-fills) the whole read buffer per socket: axum's
        // 128 KiB default made 10,000 sockets take 1.4 GB; 4 KiB made them 167 MB.
        .read_buffer_size(4 * 1024)
        .protocols(["realtime.v1"])
        // API Gateway's limits: a frame over 32 KB or a message over 128 KB closes with 1009.
        .max_frame_size(MAX_FRAME_BYTES)
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move {
            run_socket(stack, socket, sock, outbound).await;
            drop(slot);
        })
}

async fn run_socket(stack: Arc<Stack>, socket: WebSocket, sock: Socket, mut outbound: Outgoing) {
    let conn_id = sock.conn_id.clone();
    let (mut sink, mut stream) = socket.split();
    let cut = outbound.cut();
    let mut writer = tokio::spawn(async move {
        while let Some(msg) = outbound.recv().await {
            let msg = match msg {
                Outbound::Text(t) => Message::Text(t.into()),
                Outbound::Binary(b) => Message::Binary(b.into()),
                Outbound::Close => {
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
                Outbound::CloseWith(code, reason) => {
                    let frame = axum::extract::ws::CloseFrame {
                        code,
                        reason: reason.into(),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    break;
                }
            };
            if sink.send(msg).await.is_err() {
                break;
            }
        }
    });
    tokio::pin!(cut);
    // API Gateway's two clocks: 10 minutes without a client message, 2 hours in all.
    let ends_at = tokio::time::Instant::now() + stack.max_connection_age;
    let mut idle_at = tokio::time::Instant::now() + stack.idle_timeout;
    // Set when the server closes with a code: the writer gets to send that close frame.
    let mut closing = false;
    loop {
        let msg = tokio::select! {
            m = stream.next() => match m {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    // tungstenite's capacity error ("Message too long") is API Gateway's 1009.
                    if e.to_string().contains("too long") {
                        stack.hub.close_with(&conn_id, 1009, "Message too big");
                        closing = true;
                    }
                    break;
                }
                None => break,
            },
            // Over its queue budget: the socket goes without a close frame it would not read.
            () = &mut cut => break,
            () = tokio::time::sleep_until(idle_at) => {
                stack.hub.close_with(&conn_id, 1001, "Going away");
                closing = true;
                break;
            }
            () = tokio::time::sleep_until(ends_at) => {
                stack.hub.close_with(&conn_id, 1001, "Going away");
                closing = true;
                break;
            }
        };
        idle_at = tokio::time::Instant::now() + stack.idle_timeout;
        let text = match msg {
            Message::Text(t) => t.to_string(),
            Message::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
            Message::Close(_) => break,
            _ => continue,
        };
        stack.hub.touch(&conn_id);
        // Route selection: `$request.body.action`, else `$default`.
        let action = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("action").and_then(Value::as_str).map(str::to_string));
        let Some(route) = stack.template.ws_route_for_action(action.as_deref()) else {
            continue;
        };
        let route_key = route.route_key.clone();
        let event = sock.event(&route_key, "MESSAGE", None, None, Some(&text));
        invoke_ws(&stack, &route_key, event).await;
    }
    stack.hub.unregister(&conn_id);
    if closing {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), &mut writer).await;
    }
    writer.abort();
    let event = sock.event("$disconnect", "DISCONNECT", None, None, None);
    invoke_ws(&stack, "$disconnect", event).await;
}

// ---------- @connections (API Gateway management API) ----------

fn gone() -> Response {
    (
        StatusCode::GONE,
        [("x-amzn-errortype", "GoneException")],
        axum::Json(json!({"message": "Gone"})),
    )
        .into_response()
}

/// In `--production`, the request's SigV4 signature with the configured credentials, or
/// the answer AWS gives to an unsigned or wrongly signed one.
fn signed(stack: &Stack, service: Service, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<(), Box<Response>> {
    let Some(prod) = &stack.production else {
        return Ok(());
    };
    let now = std::time::SystemTime::now();
    sigv4::verify(
        method.as_str(),
        uri.path(),
        uri.query(),
        headers,
        body,
        &prod.credentials,
        service,
        now,
    )
    .map_err(|e| {
        let (status, parts, body) = e.response_parts(service);
        let mut resp = (StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN), body).into_response();
        for (k, v) in parts {
            if let Ok(v) = HeaderValue::from_str(&v) {
                resp.headers_mut().insert(k, v);
            }
        }
        Box::new(resp)
    })
}

fn push_error(e: PushError) -> Response {
    match e {
        PushError::Gone => gone(),
        PushError::Throttled => (
            StatusCode::TOO_MANY_REQUESTS,
            [("x-amzn-errortype", "LimitExceededException")],
            axum::Json(json!({"message": "Limit exceeded"})),
        )
            .into_response(),
        PushError::Other(m) => (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"message": m}))).into_response(),
    }
}

async fn conn_post(State(stack): Shared, ConnId(id): ConnId, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = signed(&stack, Service::ExecuteApi, &method, &uri, &headers, &body) {
        return *refused;
    }
    if body.len() > MAX_BODY_BYTES {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            [("x-amzn-errortype", "PayloadTooLargeException")],
            axum::Json(json!({"message": "payload too large"})),
        )
            .into_response();
    }
    match stack.hub.post(&id, &body).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => push_error(e),
    }
}

/// The `{id}` of `/@connections/{id}` and of `/{stage}/@connections/{id}` (the form of the
/// template's `ManagementEndpoint`, which the SDKs call under the stage).
struct ConnId(String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ConnId {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Response> {
        let Path(mut params) = Path::<std::collections::HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        params.remove("id").map(ConnId).ok_or_else(gone)
    }
}

async fn conn_get(State(stack): Shared, ConnId(id): ConnId, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if let Err(refused) = signed(&stack, Service::ExecuteApi, &method, &uri, &headers, b"") {
        return *refused;
    }
    match stack.hub.info(&id).await {
        Ok(info) => axum::Json(json!({
            // The wire names of the management API (its model's jsonName), ISO 8601 times.
            "connectedAt": info.connected_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "lastActiveAt": info.last_active_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "identity": {"sourceIp": info.source_ip.unwrap_or_default(), "userAgent": info.user_agent.unwrap_or_default()}
        }))
        .into_response(),
        Err(e) => push_error(e),
    }
}

async fn conn_delete(State(stack): Shared, ConnId(id): ConnId, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if let Err(refused) = signed(&stack, Service::ExecuteApi, &method, &uri, &headers, b"") {
        return *refused;
    }
    match stack.hub.close(&id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => push_error(e),
    }
}

// ---------- EventBridge PutEvents ----------

/// Whether an entry's `EventBusName` (a name or an ARN; none is `default`) is `ours`.
fn on_our_bus(name: Option<&str>, ours: &str) -> bool {
    let name = name.unwrap_or("default");
    name == ours
        || name
            .strip_suffix(ours)
            .is_some_and(|arn| arn.starts_with("arn:") && arn.ends_with(":event-bus/"))
}

/// What one `PutEvents` call may carry, entries summed by [`entry_size`].
const MAX_PUT_EVENTS_BYTES: usize = 256 * 1024;

/// An entry's size as EventBridge counts it: `Time` 14 bytes when set, then the UTF-8
/// bytes of `Source`, `DetailType`, `Detail` and each of `Resources`.
fn entry_size(e: &Value) -> usize {
    let s = |k: &str| e.get(k).and_then(Value::as_str).map_or(0, str::len);
    let time = if e.get("Time").is_some_and(|t| !t.is_null()) { 14 } else { 0 };
    let resources: usize = e
        .get("Resources")
        .and_then(Value::as_array)
        .map_or(0, |r| r.iter().filter_map(Value::as_str).map(str::len).sum());
    time + s("Source") + s("DetailType") + s("Detail") + resources
}

async fn put_events(State(stack): Shared, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = signed(&stack, Service::Events, &method, &uri, &headers, &body) {
        return *refused;
    }
    let amz_json = |status: StatusCode, v: Value| {
        (
            status,
            [("content-type", HeaderValue::from_static("application/x-amz-json-1.1"))],
            v.to_string(),
        )
            .into_response()
    };
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if target != "AWSEvents.PutEvents" {
        return amz_json(
            StatusCode::BAD_REQUEST,
            json!({"__type": "UnknownOperationException", "message": format!("unsupported operation {target:?}")}),
        );
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return amz_json(
            StatusCode::BAD_REQUEST,
            json!({"__type": "SerializationException", "message": "body is not JSON"}),
        );
    };
    let entries = req.get("Entries").and_then(Value::as_array).cloned().unwrap_or_default();
    if entries.is_empty() || entries.len() > 10 {
        return amz_json(
            StatusCode::BAD_REQUEST,
            json!({"__type": "ValidationException", "message": "Entries must hold 1 to 10 entries"}),
        );
    }
    let total: usize = entries.iter().map(entry_size).sum();
    if total > MAX_PUT_EVENTS_BYTES {
        return amz_json(
            StatusCode::BAD_REQUEST,
            json!({"__type": "ValidationException", "message": "Total size of the entries in the request is over the limit."}),
        );
    }
    let bus = stack.deps.config.event_bus_name.as_str();
    let mut failed = 0;
    let results: Vec<Value> = entries
        .iter()
        .map(|e| {
            let field = |k: &str| e.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
            let detail = field("Detail")
                .and_then(|d| serde_json::from_str::<Value>(d).ok())
                .filter(Value::is_object);
            match (field("Source"), field("DetailType"), detail) {
                // The template's rules live on its bus: an event for the default bus, or for a
                // bus that does not exist, is accepted and reaches nothing, as on AWS.
                (Some(source), Some(detail_type), Some(detail)) if on_our_bus(field("EventBusName"), bus) => {
                    json!({"EventId": stack.bus.put(source, detail_type, detail, field("Time").map(str::to_string))})
                }
                (Some(_), Some(_), Some(_)) => json!({"EventId": ulid::Ulid::new().to_string().to_lowercase()}),
                (_, _, None) if field("Detail").is_some() => {
                    failed += 1;
                    json!({"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."})
                }
                _ => {
                    failed += 1;
                    json!({"ErrorCode": "InvalidArgument", "ErrorMessage": "Parameter(s) Source, DetailType and Detail must be specified."})
                }
            }
        })
        .collect();
    amz_json(StatusCode::OK, json!({"FailedEntryCount": failed, "Entries": results}))
}

// ---------- the page ----------

async fn page() -> Response {
    web_file("index.html")
}

async fn web_asset(Path(file): Path<String>) -> Response {
    web_file(&file)
}

fn web_file(name: &str) -> Response {
    match crate::page::asset(name) {
        Some((content_type, body)) => ([("content-type", content_type), ("cache-control", "no-cache")], body).into_response(),
        None => json_error(StatusCode::NOT_FOUND, "not_found", "no such file"),
    }
}

/// Local only: drops every socket of a user, as API Gateway does when a connection
/// dies (the browser test uses it to watch a client reconnect and resume).
async fn dev_drop(State(stack): Shared, body: Result<Bytes, axum::extract::rejection::BytesRejection>) -> Response {
    let body = match body_within(body, 1024) {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    let Some(user) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("userId").and_then(Value::as_str).map(str::to_string))
    else {
        return json_error(StatusCode::BAD_REQUEST, "bad_request", "expected {\"userId\": \"...\"}");
    };
    let mut dropped = 0;
    for id in stack.hub.ids() {
        if let Ok(Some(conn)) = realtime_domain::connections::get(stack.deps.table.as_ref(), &id).await {
            if conn.user_id == user && stack.hub.close(&id).await.is_ok() {
                dropped += 1;
            }
        }
    }
    axum::Json(json!({"dropped": dropped})).into_response()
}
