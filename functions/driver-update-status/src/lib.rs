//! `PUT /api/drivers/trips/{tripId}/status`: `{status, notes?}` along the legal transitions only
//! (409 `illegal_transition`, nothing sent); each step logged and announced as `trip.status.updated`.

use realtime_domain::ids::TripId;
use realtime_domain::trips::{driver, trip};
use realtime_domain::Deps;
use realtime_edge::http::{self, HttpRequest, HttpResult};

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    let trip_id: TripId = http::path_id(&req, "tripId")?;
    let body = http::json_body(&req)?;
    driver::update_status(&deps, &user, &trip_id, body, &http::cause(&req, &user)).await?;
    Ok(http::json(200, &trip::get(&deps, &user, &trip_id).await?))
}
