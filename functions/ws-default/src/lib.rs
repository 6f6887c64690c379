//! WebSocket `$default`: a frame with no known `action` gets an `error` frame.

use realtime_domain::{ApiError, Deps};
use realtime_edge::ws::{WsRequest, WsResult};

pub async fn handle(_deps: Deps, req: WsRequest) -> WsResult {
    let body = req.body.as_deref().unwrap_or_default();
    let action = serde_json::from_str::<serde_json::Value>(body).ok().and_then(|v| {
        v.get("action")
            .and_then(|a| a.as_str())
            .map(|a| a.chars().take(40).collect::<String>())
    });
    Err(match action {
        Some(a) => ApiError::UnknownAction(format!("unknown action {a:?}")),
        None => ApiError::InvalidJson("a frame is a JSON object with an \"action\"".into()),
    })
}
