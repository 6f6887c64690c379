//! The functions the local stack can run, by their binary name (the crate name).

/// How a function is triggered, which decides the event type its handler takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An API Gateway WebSocket route (`ApiGatewayWebsocketProxyRequest`).
    Ws,
    /// An HTTP API route (`ApiGatewayV2httpRequest`).
    Http,
    /// An EventBridge rule or schedule target.
    Event,
    /// A Lambda authorizer, invoked by API Gateway before the routes it guards (JSON in, JSON out).
    Authorizer,
    /// A function URL with response streaming (`InvokeMode: RESPONSE_STREAM`): an HTTP request
    /// (payload 2.0) in, a streamed body out (server-sent events).
    Stream,
}

/// Every function crate under `functions/`, by binary name, with its kind.
pub const FUNCTIONS: &[(&str, Kind)] = &[
    ("ws-connect", Kind::Ws),
    ("ws-disconnect", Kind::Ws),
    ("ws-subscribe", Kind::Ws),
    ("ws-unsubscribe", Kind::Ws),
    ("ws-ping", Kind::Ws),
    ("ws-resume", Kind::Ws),
    ("ws-default", Kind::Ws),
    ("chat-create", Kind::Http),
    ("chat-join", Kind::Http),
    ("chat-send-message", Kind::Http),
    ("chat-history", Kind::Http),
    ("chat-state", Kind::Http),
    ("chat-typing", Kind::Http),
    ("chat-complete", Kind::Http),
    ("chat-settings", Kind::Http),
    ("chat-analytics", Kind::Http),
    ("ws-typing", Kind::Ws),
    ("chat-assistant", Kind::Event),
    ("ext-analytics", Kind::Event),
    ("fanout", Kind::Event),
    ("log-relay", Kind::Event),
    ("authorizer", Kind::Authorizer),
    ("trip-create", Kind::Http),
    ("trip-get", Kind::Http),
    ("booking-create", Kind::Http),
    ("booking-cancel", Kind::Http),
    ("driver-accept-trip", Kind::Http),
    ("driver-update-status", Kind::Http),
    ("events-stats", Kind::Http),
    ("websocket-stats", Kind::Http),
    ("websocket-health", Kind::Http),
    ("ws-passenger-subscribe", Kind::Ws),
    ("ws-driver-subscribe", Kind::Ws),
    ("trip-status-stream", Kind::Stream),
];

use futures::future::BoxFuture;
use realtime_domain::Deps;
use realtime_edge::http::{HttpRequest, HttpResponse};
use realtime_edge::lambda::EventError;
use realtime_edge::ws::{WsRequest, WsResponse};
use serde_json::Value;

/// A function's handler wrapped exactly as its Lambda `main` wraps it.
#[derive(Clone, Copy)]
pub enum Handler {
    Ws(fn(Deps, WsRequest) -> BoxFuture<'static, WsResponse>),
    Http(fn(Deps, HttpRequest) -> BoxFuture<'static, HttpResponse>),
    Event(fn(Deps, Value) -> BoxFuture<'static, Result<(), EventError>>),
    /// The answer, or the error message the invocation failed with (API Gateway reads it).
    Authorizer(fn(Deps, Value) -> BoxFuture<'static, Result<Value, String>>),
    /// The status, headers and streamed body (errors are already JSON answers).
    Stream(fn(Deps, HttpRequest) -> BoxFuture<'static, realtime_edge::stream::StreamResponse>),
}

impl Handler {
    pub fn kind(&self) -> Kind {
        match self {
            Handler::Ws(_) => Kind::Ws,
            Handler::Http(_) => Kind::Http,
            Handler::Event(_) => Kind::Event,
            Handler::Authorizer(_) => Kind::Authorizer,
            Handler::Stream(_) => Kind::Stream,
        }
    }
}

macro_rules! ws {
    ($c:ident) => {
        Handler::Ws(|d, r| Box::pin(realtime_edge::ws::serve($c::handle, d, r)))
    };
}
macro_rules! http {
    ($c:ident) => {
        Handler::Http(|d, r| Box::pin(realtime_edge::http::serve($c::handle, d, r)))
    };
}
macro_rules! stream {
    ($c:ident) => {
        Handler::Stream(|d, r| Box::pin(realtime_edge::stream::serve($c::handle, d, r)))
    };
}
macro_rules! event {
    ($c:ident) => {
        Handler::Event(|d, e| Box::pin(realtime_edge::lambda::serve_event($c::handle, d, e)))
    };
}

/// The handler of a function, by binary name.
pub fn handler(binary: &str) -> Option<Handler> {
    Some(match binary {
        "ws-connect" => ws!(ws_connect),
        "ws-disconnect" => ws!(ws_disconnect),
        "ws-subscribe" => ws!(ws_subscribe),
        "ws-unsubscribe" => ws!(ws_unsubscribe),
        "ws-ping" => ws!(ws_ping),
        "ws-resume" => ws!(ws_resume),
        "ws-default" => ws!(ws_default),
        "chat-create" => http!(chat_create),
        "chat-join" => http!(chat_join),
        "chat-send-message" => http!(chat_send_message),
        "chat-history" => http!(chat_history),
        "chat-state" => http!(chat_state),
        "chat-typing" => http!(chat_typing),
        "chat-complete" => http!(chat_complete),
        "chat-settings" => http!(chat_settings),
        "chat-analytics" => http!(chat_analytics),
        "ws-typing" => ws!(ws_typing),
        "chat-assistant" => event!(chat_assistant),
        "ext-analytics" => event!(ext_analytics),
        "fanout" => event!(fanout),
        "log-relay" => event!(log_relay),
        "trip-create" => http!(trip_create),
        "trip-get" => http!(trip_get),
        "booking-create" => http!(booking_create),
        "booking-cancel" => http!(booking_cancel),
        "driver-accept-trip" => http!(driver_accept_trip),
        "driver-update-status" => http!(driver_update_status),
        "events-stats" => http!(events_stats),
        "websocket-stats" => http!(websocket_stats),
        "websocket-health" => http!(websocket_health),
        "ws-passenger-subscribe" => ws!(ws_passenger_subscribe),
        "ws-driver-subscribe" => ws!(ws_driver_subscribe),
        "trip-status-stream" => stream!(trip_status_stream),
        "authorizer" => Handler::Authorizer(|d, e| Box::pin(async move { authorizer::handle(d, e).await.map_err(|e| e.to_string()) })),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_function_has_a_handler_of_its_kind() {
        for (name, kind) in FUNCTIONS {
            let h = handler(name).unwrap_or_else(|| panic!("{name} has no handler"));
            assert_eq!(h.kind(), *kind, "{name}");
        }
    }
}
