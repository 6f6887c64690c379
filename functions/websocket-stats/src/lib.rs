//! `GET /api/websocket/stats` (admins): WebSocket connections opened, closed and active, and
//! pushes delivered, stale, throttled and failed (`realtime_shared::stats`).

use realtime_shared::auth::Role;
use realtime_shared::http::{self, HttpRequest, HttpResult};
use realtime_shared::{stats, ApiError, Deps};

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    if !user.has_role(Role::Admin) {
        return Err(ApiError::Forbidden("admins only".into()));
    }
    Ok(http::json(200, &stats::websocket_stats(deps.table.as_ref()).await?))
}
