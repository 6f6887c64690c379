//! The local stack: every function in-process behind an API Gateway-like WebSocket
//! server, the HTTP API, the `@connections` management API and EventBridge
//! `PutEvents`, routed by the rules and routes it reads from `template.yaml`.

pub mod registry;
pub mod template;
