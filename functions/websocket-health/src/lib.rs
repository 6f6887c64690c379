//! `GET /api/websocket/health` (public, no token): whether the service can reach its table.
//! Answers 200 `{"status":"ok"}`, or 503 when the table does not answer; it reveals nothing else.

use realtime_domain::{keys, Deps};
use realtime_edge::http::{self, HttpRequest, HttpResult};
use serde_json::json;

pub async fn handle(deps: Deps, _req: HttpRequest) -> HttpResult {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    match deps.table.get(&keys::stats(0), "HEALTH").await {
        Ok(_) => Ok(http::json(200, &json!({"status": "ok", "checks": {"table": "ok"}, "time": now}))),
        Err(e) => {
            tracing::error!(error = %e, "health: table unreachable");
            Ok(http::json(
                503,
                &json!({"status": "unavailable", "checks": {"table": "unreachable"}, "time": now}),
            ))
        }
    }
}
