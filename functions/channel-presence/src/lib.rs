//! `GET /api/channels/{channel}/presence`: a channel's members (users, with their name, role,
//! connection time and number of connections) and occupancy, for whoever may subscribe to it.

use realtime_domain::channels::Channel;
use realtime_domain::{presence, ApiError, Deps};
use realtime_edge::http::{self, HttpRequest, HttpResult};

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    // `chat:C1`, or `chat%3AC1` from a client that encodes the colon.
    let raw = req.path_parameters.get("channel").map(String::as_str).unwrap_or_default();
    let channel: Channel = raw
        .replace("%3A", ":")
        .replace("%3a", ":")
        .parse()
        .map_err(|e: realtime_domain::channels::ChannelError| ApiError::BadRequest(e.to_string()))?;
    let p = presence::read_for_user(deps.table.as_ref(), &user, &channel).await?;
    Ok(http::json(200, &p))
}
