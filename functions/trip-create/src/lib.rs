//! `POST /api/trips`: creates a trip (`trip.created`; a private, published trip is also offered to drivers: `trip.offer.created`).

use realtime_domain::trips::trip;
use realtime_domain::Deps;
use realtime_edge::http::{self, HttpRequest, HttpResult};

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    let body = http::json_body(&req)?;
    let created = trip::create(&deps, &user, body, &http::cause(&req, &user)).await?;
    let view = trip::get(&deps, &user, &created.trip_id).await?;
    Ok(http::json(201, &view))
}
