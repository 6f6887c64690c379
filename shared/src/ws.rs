//! WebSocket route handlers: the connection id, the frame parsed into its validated
//! type, replies through the `ConnectionPusher`, and errors as `error` frames.

use crate::deps::Deps;
use crate::error::ApiError;
use crate::frames::{request_id, ServerFrame, MAX_FRAME_BYTES};
use crate::ratelimit;
use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use serde::de::DeserializeOwned;
use std::future::Future;

pub type WsRequest = ApiGatewayWebsocketProxyRequest;
pub type WsResponse = ApiGatewayProxyResponse;
pub type WsResult = Result<WsResponse, ApiError>;

pub fn connection_id(req: &WsRequest) -> Result<&str, ApiError> {
    req.request_context
        .connection_id
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::BadRequest("no connection id".into()))
}

pub fn header<'a>(req: &'a WsRequest, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The frame parsed into `T` (size-checked; unknown fields refused).
pub fn frame<T: DeserializeOwned>(req: &WsRequest) -> Result<T, ApiError> {
    let body = req.body.as_deref().unwrap_or_default();
    if body.len() > MAX_FRAME_BYTES {
        return Err(ApiError::PayloadTooLarge { limit: MAX_FRAME_BYTES });
    }
    serde_json::from_str(body).map_err(|e| ApiError::InvalidJson(e.to_string()))
}

/// Sends one frame to one connection; a gone connection is not the sender's error.
pub async fn reply(deps: &Deps, connection_id: &str, frame: &ServerFrame) -> Result<(), ApiError> {
    match deps.pusher.post(connection_id, frame.to_json().as_bytes()).await {
        Ok(()) | Err(crate::ports::PushError::Gone) => Ok(()),
        Err(e) => Err(ApiError::Unavailable(e.to_string())),
    }
}

pub fn ok() -> WsResponse {
    status(200)
}

pub fn status(code: u16) -> WsResponse {
    let mut r = WsResponse::default();
    r.status_code = code.into();
    r
}

/// Runs a WebSocket route handler. On `$connect` an error refuses the connection
/// with its status; on a message it becomes an `error` frame to the sender.
pub async fn serve<F, Fut>(handler: F, deps: Deps, req: WsRequest) -> WsResponse
where
    F: Fn(Deps, WsRequest) -> Fut,
    Fut: Future<Output = WsResult>,
{
    let conn = req.request_context.connection_id.clone().unwrap_or_default();
    let route = req.request_context.route_key.clone().unwrap_or_default();
    let is_connect = req.request_context.event_type.as_deref() == Some("CONNECT");
    // Only messages spend tokens: `$connect` and `$disconnect` come once per connection.
    let is_message = req.request_context.event_type.as_deref() == Some("MESSAGE") && !conn.is_empty();
    let id = req.body.as_deref().and_then(request_id);
    let span = tracing::info_span!("ws", connection_id = %conn, route = %route, correlation_id = req.request_context.request_id.as_deref().unwrap_or_default());
    let run = async {
        let now_ms = chrono::Utc::now().timestamp_millis();
        if is_message && !ratelimit::admit(deps.table.as_ref(), &conn, now_ms).await {
            return Err(ApiError::RateLimited);
        }
        handler(deps.clone(), req).await
    };
    let result = tracing::Instrument::instrument(run, span.clone()).await;
    let _g = span.enter();
    match result {
        Ok(r) => r,
        Err(e) => {
            if matches!(e, ApiError::Internal(_) | ApiError::Unavailable(_)) {
                tracing::error!(error = %e, detail = ?e, "ws route failed");
            } else {
                tracing::info!(code = e.code(), "ws request refused");
            }
            if is_connect {
                return status(e.status());
            }
            let frame = ServerFrame::Error {
                id,
                code: e.code().into(),
                message: e.to_string(),
            };
            if let Err(push) = reply(&deps, &conn, &frame).await {
                tracing::warn!(error = %push, "could not send the error frame");
            }
            ok()
        }
    }
}
