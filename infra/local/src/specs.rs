//! The public specs, generated from the Rust types (never written by hand twice):
//! JSON Schema for the envelope, every event and every frame, an AsyncAPI 3 document
//! for the WebSocket API and its events, and an OpenAPI 3.1 document for the HTTP
//! API whose paths come from `template.yaml`. `cargo run -p realtime-local --bin
//! realtime-specs` writes them to `specs/`; a test fails when the committed files drift.

use crate::template::Template;
use realtime_domain::chat::{self, settings::SettingsPatch, typing::SetTyping};
use realtime_domain::events::{Envelope, Event};
use realtime_domain::frames::{ClientFrame, ServerFrame};
use realtime_domain::trips::sse::TripStatusMessage;
use realtime_domain::trips::{booking, driver, trip};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

fn generator(definitions: &'static str) -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = definitions.into())
        .into_generator()
}

fn standalone<T: JsonSchema>() -> Value {
    serde_json::to_value(generator("#/$defs/").into_root_schema_for::<T>()).unwrap_or_default()
}

/// The request body type of each HTTP function, by binary name.
fn request_schema(binary: &str, g: &mut SchemaGenerator) -> Option<Value> {
    let s = match binary {
        "chat-create" => g.subschema_for::<chat::CreateChat>(),
        "chat-join" => g.subschema_for::<chat::JoinChat>(),
        "chat-send-message" => g.subschema_for::<chat::SendMessage>(),
        "chat-settings" => g.subschema_for::<SettingsPatch>(),
        "chat-typing" => g.subschema_for::<SetTyping>(),
        "trip-create" => g.subschema_for::<trip::CreateTrip>(),
        "booking-create" => g.subschema_for::<booking::CreateBooking>(),
        "booking-cancel" => g.subschema_for::<booking::PatchBooking>(),
        "driver-update-status" => g.subschema_for::<driver::UpdateStatus>(),
        _ => return None,
    };
    serde_json::to_value(s).ok()
}

fn error_schema() -> Value {
    json!({"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string", "description": "snake_case code, e.g. not_your_turn"}, "message": {"type": "string"}}}}})
}

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|p| json!({"name": p.trim_end_matches('+'), "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}}))
        .collect()
}

/// A streaming function URL (server-sent events): not behind the HTTP API, so it has its
/// own server (the stack's `TripStatusStreamUrl` output) and checks the token itself.
fn stream_path(path: &str, binary: &str) -> Value {
    let mut params = path_params(path);
    params.push(
        json!({"name": "Last-Event-ID", "in": "header", "required": false, "schema": {"type": "string", "pattern": "^[0-9]{1,20}$"},
        "description": "The last `id` received: the stream first replays every later update from the channel log."}),
    );
    json!({
        "servers": [
            {"url": "http://127.0.0.1:3000", "description": "the local stack"},
            {"url": "{functionUrl}", "description": "the function URL (stack output of this function's URL)",
             "variables": {"functionUrl": {"default": "https://example.lambda-url.us-east-1.on.aws"}}}
        ],
        "get": {
            "operationId": format!("{}_get", binary.replace('-', "_")),
            "summary": format!("GET {path} ({binary}, server-sent events over a streaming function URL)"),
            "parameters": params,
            // The JWT as a bearer header, or as `?token=` for EventSource, which cannot set headers.
            "security": [{"bearer": []}, {"tokenQuery": []}],
            "responses": {
                "200": {"description": "An event stream. Each event's `data` is JSON whose `type` says which: `connected` (with `currentStatus`), \
    `status_update` (its `id` is the channel `seq`; `previousStatus`, `newStatus`, `notes`), `heartbeat`, `resync`.",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                "4XX": {"description": "Refused before the stream starts: no or bad token, not a party of the trip, unknown trip",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        }
    })
}

pub fn openapi(template: &Template) -> Value {
    let mut g = generator("#/components/schemas/");
    let mut paths = Map::new();
    let mut routes = template.http_routes.clone();
    routes.sort_by(|a, b| (&a.path, &a.method).cmp(&(&b.path, &b.method)));
    for r in &routes {
        let binary = template.binary_of(&r.function).unwrap_or_default();
        let params = path_params(&r.path);
        let mut op = json!({
            "operationId": format!("{}_{}", binary.replace('-', "_"), r.method.to_lowercase()),
            "summary": format!("{} {} ({})", r.method, r.path, binary),
            "parameters": params,
            "responses": {
                "2XX": {"description": "Success", "content": {"application/json": {"schema": {"type": "object"}}}},
                "4XX": {"description": "Refused: bad input, unauthorized, forbidden, not found, conflict", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            },
        });
        if let Some(body) = request_schema(binary, &mut g) {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": body}}});
        }
        if r.authorizer.is_some() {
            op["security"] = json!([{"bearer": []}]);
        }
        let item = paths.entry(r.path.clone()).or_insert_with(|| json!({}));
        item[r.method.to_lowercase()] = op;
    }
    for r in &template.stream_routes {
        let binary = template.binary_of(&r.function).unwrap_or_default();
        paths.insert(r.path.clone(), stream_path(&r.path, binary));
    }
    let mut schemas = Map::new();
    for (k, v) in g.take_definitions(true) {
        schemas.insert(k, v);
    }
    schemas.insert("Error".into(), error_schema());
    json!({
        "openapi": "3.1.0",
        "info": {"title": "realtime HTTP API", "version": "1", "description": "Generated from the Rust types and template.yaml by realtime-specs."},
        "servers": [{"url": "http://127.0.0.1:3000", "description": "the local stack"}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "tokenQuery": {"type": "apiKey", "in": "query", "name": "token", "description": "The JWT as a query parameter (server-sent events only)."}
        }},
    })
}

pub fn asyncapi() -> Value {
    let mut g = generator("#/components/schemas/");
    let client = g.subschema_for::<ClientFrame>();
    let server = g.subschema_for::<ServerFrame>();
    let event = g.subschema_for::<Event>();
    let mut schemas = Map::new();
    for (k, v) in g.take_definitions(true) {
        schemas.insert(k, v);
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {"title": "realtime WebSocket API", "version": "1",
                 "description": "Frames routed on `action` (API Gateway's $request.body.action); events pushed in `event` frames. Generated by realtime-specs."},
        "servers": {
            "local": {"host": "127.0.0.1:3000", "pathname": "/ws", "protocol": "ws", "description": "the local stack"},
            "aws": {"host": "{apiId}.execute-api.{region}.amazonaws.com", "pathname": "/{stage}", "protocol": "wss",
                    "variables": {"apiId": {}, "region": {"default": "us-east-1"}, "stage": {"default": "prod"}}}
        },
        "channels": {
            "realtime": {
                "address": "/ws",
                "description": "Token as subprotocol `bearer.<jwt>` (with `realtime.v1`) or `?token=`.",
                "messages": {
                    "clientFrame": {"name": "ClientFrame", "contentType": "application/json", "payload": client},
                    "serverFrame": {"name": "ServerFrame", "contentType": "application/json", "payload": server},
                    "event": {"name": "Event", "title": "A domain event's type and data (inside an `event` frame's envelope)", "contentType": "application/json", "payload": event}
                }
            }
        },
        "operations": {
            "sendFrame": {"action": "send", "channel": {"$ref": "#/channels/realtime"}, "messages": [{"$ref": "#/channels/realtime/messages/clientFrame"}]},
            "receiveFrame": {"action": "receive", "channel": {"$ref": "#/channels/realtime"},
                             "messages": [{"$ref": "#/channels/realtime/messages/serverFrame"}, {"$ref": "#/channels/realtime/messages/event"}]}
        },
        "components": {"schemas": schemas}
    })
}

/// Every spec file by its path under `specs/`.
pub fn generate(template: &Template) -> Vec<(&'static str, String)> {
    let pretty = |v: Value| serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
    vec![
        ("envelope.schema.json", pretty(standalone::<Envelope>())),
        ("events.schema.json", pretty(standalone::<Event>())),
        ("client-frames.schema.json", pretty(standalone::<ClientFrame>())),
        ("server-frames.schema.json", pretty(standalone::<ServerFrame>())),
        ("trip-status.schema.json", pretty(standalone::<TripStatusMessage>())),
        ("asyncapi.json", pretty(asyncapi())),
        ("openapi.json", pretty(openapi(template))),
    ]
}
