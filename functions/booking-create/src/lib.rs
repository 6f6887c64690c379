//! `POST /api/bookings`: books seats in one transaction (never overbooks: 409 `not_enough_seats`),
//! honouring `Idempotency-Key` (the first answer, success or refusal, is replayed); announces
//! `booking.confirmed`.

use realtime_domain::idempotency::Key;
use realtime_domain::trips::booking;
use realtime_domain::Deps;
use realtime_edge::http::{self, HttpRequest, HttpResult};

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    let body: booking::CreateBooking = http::json_body(&req)?;
    let raw = http::body_bytes(&req)?;
    let idem = Key::from_header(&format!("booking:{}", user.sub), http::header(&req, "idempotency-key"), &raw)?;
    let (status, answer) = booking::create(&deps, &user, body, idem, &http::cause(&req, &user)).await?;
    Ok(http::json(status, &answer))
}
