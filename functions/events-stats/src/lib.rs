//! `GET /api/events/stats` (admins): emissions in total, per transport (WebSocket, SSE) and per
//! event type, from the counters the fan-out keeps (`realtime_edge::stats`).

use realtime_domain::auth::Role;
use realtime_domain::{ApiError, Deps};
use realtime_edge::http::{self, HttpRequest, HttpResult};
use realtime_edge::stats;

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    if !user.has_role(Role::Admin) {
        return Err(ApiError::Forbidden("admins only".into()));
    }
    Ok(http::json(200, &stats::events_stats(deps.table.as_ref()).await?))
}
