//! `GET /api/events/stats` (admins): emissions in total, per transport (WebSocket, SSE) and per
//! event type, from the counters the fan-out keeps (`realtime_shared::stats`).

use realtime_shared::auth::Role;
use realtime_shared::http::{self, HttpRequest, HttpResult};
use realtime_shared::{stats, ApiError, Deps};

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    if !user.has_role(Role::Admin) {
        return Err(ApiError::Forbidden("admins only".into()));
    }
    Ok(http::json(200, &stats::events_stats(deps.table.as_ref()).await?))
}
