//! WebSocket route handlers: the connection id, the frame parsed into its validated
//! type, replies through the `ConnectionPusher`, and errors as `error` frames.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use realtime_domain::channels::{Channel, ChannelError};
use realtime_domain::connections::Connection;
use realtime_domain::deps::Deps;
use realtime_domain::error::ApiError;
use realtime_domain::frames::{request_id, ServerFrame, MAX_FRAME_BYTES};
use realtime_domain::ratelimit;
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

/// A frame's channel name, parsed (a bad one is a 400).
pub fn channel(name: &str) -> Result<Channel, ApiError> {
    name.parse().map_err(|e: ChannelError| ApiError::BadRequest(e.to_string()))
}

/// The stored connection a frame came on (gone: 401, its rights went with it).
pub async fn connection(deps: &Deps, connection_id: &str) -> Result<Connection, ApiError> {
    realtime_domain::connections::get(deps.table.as_ref(), connection_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("connection is gone".into()))
}

/// Sends one frame to one connection; a gone connection is not the sender's error.
pub async fn reply(deps: &Deps, connection_id: &str, frame: &ServerFrame) -> Result<(), ApiError> {
    Ok(realtime_domain::connections::reply(deps.pusher.as_ref(), connection_id, frame).await?)
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

#[cfg(test)]
mod tests {
    use realtime_domain::ratelimit::BURST;
    use realtime_embedded::testing::{embedded, FIXTURE_SECRET};
    use std::sync::Arc;

    #[tokio::test]
    async fn serve_refuses_messages_beyond_the_burst_with_rate_limited() {
        use crate::ws::{serve, WsRequest, WsResult};
        use realtime_embedded::hub::Outbound;
        let e = embedded(FIXTURE_SECRET);
        let mut rx = e.hub.register("c1", None);
        let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let handler = |_: realtime_domain::Deps, _: WsRequest| {
            let ran = ran.clone();
            async move {
                ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                WsResult::Ok(crate::ws::ok())
            }
        };
        let req = |event_type: &str| {
            let mut r = WsRequest::default();
            r.request_context.connection_id = Some("c1".into());
            r.request_context.event_type = Some(event_type.into());
            r.body = Some(r#"{"action":"ping","id":"p9"}"#.into());
            r
        };
        for _ in 0..BURST {
            serve(handler, e.deps.clone(), req("MESSAGE")).await;
        }
        assert_eq!(serve(handler, e.deps.clone(), req("MESSAGE")).await.status_code, 200);
        let Ok(Some(Outbound::Text(f))) = tokio::time::timeout(std::time::Duration::from_secs(2), rx.recv()).await else {
            panic!("no error frame")
        };
        assert_eq!(
            f,
            r#"{"type":"error","id":"p9","code":"rate_limited","message":"too many requests"}"#
        );
        assert_eq!(
            ran.load(std::sync::atomic::Ordering::SeqCst),
            BURST as usize,
            "the refused action did not run"
        );
        // `$connect` and `$disconnect` spend nothing and are never refused.
        serve(handler, e.deps.clone(), req("CONNECT")).await;
        serve(handler, e.deps.clone(), req("DISCONNECT")).await;
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), BURST as usize + 2);
    }
}
