//! `POST /api/trips`: creates a trip (`trip.created`; a private, published trip is also offered to drivers: `trip.offer.created`).

use realtime_shared::http::{self, HttpRequest, HttpResult};
use realtime_shared::trips::trip;
use realtime_shared::Deps;

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    let body = http::json_body(&req)?;
    let created = trip::create(&deps, &user, body, &http::cause(&req, &user)).await?;
    let view = trip::get(&deps, &user, &created.trip_id).await?;
    Ok(http::json(201, &view))
}
