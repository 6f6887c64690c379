//! The page, its assets, and the local-only drop route.

use super::*;

pub(super) async fn page() -> Response {
    web_file("index.html")
}

pub(super) async fn web_asset(Path(file): Path<String>) -> Response {
    web_file(&file)
}

pub(super) fn web_file(name: &str) -> Response {
    match crate::page::asset(name) {
        Some((content_type, body)) => ([("content-type", content_type), ("cache-control", "no-cache")], body).into_response(),
        None => json_error(StatusCode::NOT_FOUND, "not_found", "no such file"),
    }
}

/// Local only: drops every socket of a user, as API Gateway does when a connection
/// dies (the browser test uses it to watch a client reconnect and resume).
pub(super) async fn dev_drop(State(stack): Shared, body: Result<Bytes, axum::extract::rejection::BytesRejection>) -> Response {
    let body = match body_within(body, 1024) {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    let asked = serde_json::from_slice::<Value>(&body).ok();
    // Every socket at once (a deploy, an outage: the reconnect storm), or one user's.
    let all = asked.as_ref().and_then(|v| v.get("all")).and_then(Value::as_bool) == Some(true);
    let user = asked
        .as_ref()
        .and_then(|v| v.get("userId").and_then(Value::as_str).map(str::to_string));
    if !all && user.is_none() {
        return json_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "expected {\"userId\": \"...\"} or {\"all\": true}",
        );
    }
    let mut dropped = 0;
    for id in stack.hub.ids() {
        let mine = match &user {
            _ if all => true,
            Some(u) => matches!(realtime_domain::connections::get(stack.deps.table.as_ref(), &id).await, Ok(Some(c)) if c.user_id == *u),
            None => false,
        };
        if mine && stack.hub.close(&id).await.is_ok() {
            dropped += 1;
        }
    }
    axum::Json(json!({"dropped": dropped})).into_response()
}

/// What this process's resumes read: replays asked for and log reads made for them
/// (`realtime_domain::tail`; a reconnect storm shares them).
pub(super) async fn dev_stats() -> Response {
    let (replays, reads) = realtime_domain::tail::stats();
    axum::Json(json!({"replays": replays, "replayReads": reads})).into_response()
}
