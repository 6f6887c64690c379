//! Cancels a booking and gives its seats back, exactly once (`booking.cancelled`):
//! `PATCH /api/bookings/{id}` with `{"action":"cancel","reason"?}`, and
//! `POST /api/passengers/bookings/{bookingId}/cancel` with an optional `{"reason"?}`.

use realtime_domain::ids::BookingId;
use realtime_domain::trips::booking::{self, CancelBooking, PatchBooking};
use realtime_domain::{ApiError, Deps};
use realtime_edge::http::{self, HttpRequest, HttpResult};

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    let (booking_id, reason) = if req.path_parameters.contains_key("bookingId") {
        let id: BookingId = http::path_id(&req, "bookingId")?;
        let body = if http::body_bytes(&req)?.iter().all(u8::is_ascii_whitespace) {
            CancelBooking::default()
        } else {
            http::json_body::<CancelBooking>(&req)?
        };
        (id, body.reason)
    } else {
        let id: BookingId = http::path_id(&req, "id")?;
        let body: PatchBooking = http::json_body(&req)?;
        if body.action != "cancel" {
            return Err(ApiError::BadRequest(format!(
                "unknown action {:?}: only \"cancel\"",
                body.action.chars().take(40).collect::<String>()
            )));
        }
        (id, body.reason)
    };
    let answer = booking::cancel(&deps, &user, &booking_id, reason, &http::cause(&req, &user)).await?;
    Ok(http::json(200, &answer))
}
