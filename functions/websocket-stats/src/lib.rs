//! `GET /api/websocket/stats` (admins): WebSocket connections opened, closed and active, and
//! pushes delivered, stale, throttled and failed, resumes and the events they replayed,
//! and with `?channels=a,b` the subscriptions of each of those channels
//! (`realtime_edge::stats`).

use realtime_domain::auth::Role;
use realtime_domain::channels::Channel;
use realtime_domain::{ApiError, Deps};
use realtime_edge::http::{self, HttpRequest, HttpResult};
use realtime_edge::stats;

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    if !user.has_role(Role::Admin) {
        return Err(ApiError::Forbidden("admins only".into()));
    }
    // API Gateway's payload 2.0 splits a comma-separated value into several values.
    let list = req.query_string_parameters.all("channels").unwrap_or_default().join(",");
    let channels = channels(&list)?;
    Ok(http::json(200, &stats::websocket_stats(deps.table.as_ref(), &channels).await?))
}

/// `?channels=chat:A,trip:B`: the channels to count the subscriptions of.
fn channels(list: &str) -> Result<Vec<Channel>, ApiError> {
    let names: Vec<&str> = list.split(',').map(str::trim).filter(|c| !c.is_empty()).collect();
    if names.len() > stats::MAX_COUNTED_CHANNELS {
        return Err(ApiError::BadRequest(format!(
            "at most {} channels per request",
            stats::MAX_COUNTED_CHANNELS
        )));
    }
    names
        .into_iter()
        .map(|c| {
            c.parse::<Channel>()
                .map_err(|_| ApiError::BadRequest(format!("not a channel: {:?}", c.chars().take(80).collect::<String>())))
        })
        .collect()
}
