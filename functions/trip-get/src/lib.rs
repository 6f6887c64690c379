//! `GET /api/trips/{tripId}`: the trip (with its status log and bookings for its parties).

use realtime_shared::http::{self, HttpRequest, HttpResult};
use realtime_shared::trips::trip;
use realtime_shared::Deps;

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    let trip_id = http::path_param(&req, "tripId")?;
    let view = trip::get(&deps, &user, trip_id).await?;
    Ok(http::json(200, &view))
}
