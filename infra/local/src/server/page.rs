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
