//! `POST /api/drivers/trips/accept/{tripId}`: a driver takes a published trip; exactly one of
//! racing drivers wins (the others: 409 `already_accepted`); pending bookings are confirmed and
//! the trip goes IN_PROGRESS (`trip.status.updated`).

use realtime_shared::http::{self, HttpRequest, HttpResult};
use realtime_shared::trips::{driver, trip};
use realtime_shared::Deps;

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    let trip_id = http::path_param(&req, "tripId")?;
    driver::accept(&deps, &user, trip_id, &http::cause(&req, &user)).await?;
    Ok(http::json(200, &trip::get(&deps, &user, trip_id).await?))
}
