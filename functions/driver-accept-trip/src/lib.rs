//! `POST /api/drivers/trips/accept/{tripId}`: a driver takes a published trip; exactly one of
//! racing drivers wins (the others: 409 `already_accepted`); pending bookings are confirmed and
//! the trip goes IN_PROGRESS (`trip.status.updated`).

use realtime_domain::ids::TripId;
use realtime_domain::trips::{driver, trip};
use realtime_domain::Deps;
use realtime_edge::http::{self, HttpRequest, HttpResult};

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    let trip_id: TripId = http::path_id(&req, "tripId")?;
    driver::accept(&deps, &user, &trip_id, &http::cause(&req, &user)).await?;
    Ok(http::json(200, &trip::get(&deps, &user, &trip_id).await?))
}
