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
    ("fanout", Kind::Event),
    ("outbox-sweeper", Kind::Event),
    ("authorizer", Kind::Authorizer),
];

use futures::future::BoxFuture;
use realtime_shared::http::{HttpRequest, HttpResponse};
use realtime_shared::lambda::EventError;
use realtime_shared::ws::{WsRequest, WsResponse};
use realtime_shared::Deps;
use serde_json::Value;

/// A function's handler wrapped exactly as its Lambda `main` wraps it.
#[derive(Clone, Copy)]
pub enum Handler {
    Ws(fn(Deps, WsRequest) -> BoxFuture<'static, WsResponse>),
    Http(fn(Deps, HttpRequest) -> BoxFuture<'static, HttpResponse>),
    Event(fn(Deps, Value) -> BoxFuture<'static, Result<(), EventError>>),
    /// The answer, or the error message the invocation failed with (API Gateway reads it).
    Authorizer(fn(Deps, Value) -> BoxFuture<'static, Result<Value, String>>),
}

impl Handler {
    pub fn kind(&self) -> Kind {
        match self {
            Handler::Ws(_) => Kind::Ws,
            Handler::Http(_) => Kind::Http,
            Handler::Event(_) => Kind::Event,
            Handler::Authorizer(_) => Kind::Authorizer,
        }
    }
}

macro_rules! ws {
    ($c:ident) => {
        Handler::Ws(|d, r| Box::pin(realtime_shared::ws::serve($c::handle, d, r)))
    };
}
macro_rules! http {
    ($c:ident) => {
        Handler::Http(|d, r| Box::pin(realtime_shared::http::serve($c::handle, d, r)))
    };
}
macro_rules! event {
    ($c:ident) => {
        Handler::Event(|d, e| Box::pin(realtime_shared::lambda::serve_event($c::handle, d, e)))
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
        "fanout" => event!(fanout),
        "outbox-sweeper" => event!(outbox_sweeper),
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
