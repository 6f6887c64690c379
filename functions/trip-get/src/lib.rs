//! `GET /api/trips/{tripId}`: the trip (with its status log and bookings for its parties).

use realtime_domain::ids::TripId;
use realtime_domain::trips::trip;
use realtime_domain::Deps;
use realtime_edge::http::{self, HttpRequest, HttpResult};

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    let trip_id: TripId = http::path_id(&req, "tripId")?;
    let view = trip::get(&deps, &user, &trip_id).await?;
    Ok(http::json(200, &view))
}
