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
}

/// Every function crate under `functions/`, by binary name, with its kind.
pub const FUNCTIONS: &[(&str, Kind)] = &[
    ("ws-connect", Kind::Ws),
    ("ws-disconnect", Kind::Ws),
    ("ws-subscribe", Kind::Ws),
    ("ws-unsubscribe", Kind::Ws),
    ("ws-ping", Kind::Ws),
    ("ws-default", Kind::Ws),
    ("chat-create", Kind::Http),
    ("chat-join", Kind::Http),
    ("chat-send-message", Kind::Http),
    ("fanout", Kind::Event),
];
