//! `GET /api/realtime/trip-status/{tripId}`: the trip's status as server-sent events
//! (`connected`, `status_update`, `heartbeat`; `Last-Event-ID` honoured), see
//! `realtime_domain::trips::sse`. In AWS a function URL with `InvokeMode: RESPONSE_STREAM`
//! invokes it (no API Gateway authorizer there: it checks the token itself, from
//! `Authorization: Bearer` or `?token=` since EventSource cannot set headers); the local
//! stack serves the same handler on the same path.

use realtime_domain::ids::TripId;
use realtime_domain::{auth, trips, ApiError, Deps};
use realtime_edge::http::{self, HttpRequest};
use realtime_edge::stream::{self, StreamResponse, StreamResult};

/// The path the function answers (a function URL passes every path to the function).
pub const PATH_PREFIX: &str = "/api/realtime/trip-status/";

fn trip_id(req: &HttpRequest) -> Result<TripId, ApiError> {
    if req.path_parameters.contains_key("tripId") {
        return http::path_id(req, "tripId");
    }
    let path = req
        .raw_path
        .as_deref()
        .or(req.request_context.http.path.as_deref())
        .unwrap_or_default();
    match path.strip_prefix(PATH_PREFIX) {
        Some(id) => TripId::parse(id).map_err(|e| ApiError::BadRequest(e.to_string())),
        None => Err(ApiError::NotFound(format!(
            "no stream at {}",
            path.chars().take(80).collect::<String>()
        ))),
    }
}

pub async fn handle(deps: Deps, req: HttpRequest) -> StreamResult {
    if req.request_context.http.method.as_str() != "GET" {
        return Err(ApiError::NotFound("the trip-status stream answers GET only".into()));
    }
    let trip_id = trip_id(&req)?;
    let user = match http::query_param(&req, "token") {
        Some(token) => auth::verify(deps.config.jwt_secret.expose(), token, chrono::Utc::now().timestamp())
            .map_err(|e| ApiError::Unauthorized(e.to_string()))?,
        None => http::authenticate(&deps, &req)?,
    };
    let last = http::header(&req, "last-event-id").or_else(|| http::query_param(&req, "lastEventId"));
    let feed = trips::sse::open(&deps, &user, &trip_id, last).await?;
    Ok(StreamResponse::event_stream(stream::trip_status_body(&deps, &trip_id, feed).await))
}
