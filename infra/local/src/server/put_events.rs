//! EventBridge `PutEvents` on the local bus (only for the template's bus, within 256 KB).

use super::*;

/// Whether an entry's `EventBusName` (a name or an ARN; none is `default`) is `ours`.
pub(super) fn on_our_bus(name: Option<&str>, ours: &str) -> bool {
    let name = name.unwrap_or("default");
    name == ours
        || name
            .strip_suffix(ours)
            .is_some_and(|arn| arn.starts_with("arn:") && arn.ends_with(":event-bus/"))
}

/// What one `PutEvents` call may carry, entries summed by [`entry_size`].
pub(super) const MAX_PUT_EVENTS_BYTES: usize = 256 * 1024;

/// An entry's size as EventBridge counts it: `Time` 14 bytes when set, then the UTF-8
/// bytes of `Source`, `DetailType`, `Detail` and each of `Resources`.
pub(super) fn entry_size(e: &Value) -> usize {
    let s = |k: &str| e.get(k).and_then(Value::as_str).map_or(0, str::len);
    let time = if e.get("Time").is_some_and(|t| !t.is_null()) { 14 } else { 0 };
    let resources: usize = e
        .get("Resources")
        .and_then(Value::as_array)
        .map_or(0, |r| r.iter().filter_map(Value::as_str).map(str::len).sum());
    time + s("Source") + s("DetailType") + s("Detail") + resources
}

pub(super) async fn put_events(State(stack): Shared, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = signed(&stack, Service::Events, &method, &uri, &headers, &body) {
        return *refused;
    }
    let amz_json = |status: StatusCode, v: Value| {
        (
            status,
            [("content-type", HeaderValue::from_static("application/x-amz-json-1.1"))],
            v.to_string(),
        )
            .into_response()
    };
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if target != "AWSEvents.PutEvents" {
        return amz_json(
            StatusCode::BAD_REQUEST,
            json!({"__type": "UnknownOperationException", "message": format!("unsupported operation {target:?}")}),
        );
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return amz_json(
            StatusCode::BAD_REQUEST,
            json!({"__type": "SerializationException", "message": "body is not JSON"}),
        );
    };
    let entries = req.get("Entries").and_then(Value::as_array).cloned().unwrap_or_default();
    if entries.is_empty() || entries.len() > 10 {
        return amz_json(
            StatusCode::BAD_REQUEST,
            json!({"__type": "ValidationException", "message": "Entries must hold 1 to 10 entries"}),
        );
    }
    let total: usize = entries.iter().map(entry_size).sum();
    if total > MAX_PUT_EVENTS_BYTES {
        return amz_json(
            StatusCode::BAD_REQUEST,
            json!({"__type": "ValidationException", "message": "Total size of the entries in the request is over the limit."}),
        );
    }
    let bus = stack.deps.config.event_bus_name.as_str();
    let mut failed = 0;
    let results: Vec<Value> = entries
        .iter()
        .map(|e| {
            let field = |k: &str| e.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
            let detail = field("Detail")
                .and_then(|d| serde_json::from_str::<Value>(d).ok())
                .filter(Value::is_object);
            match (field("Source"), field("DetailType"), detail) {
                // The template's rules live on its bus: an event for the default bus, or for a
                // bus that does not exist, is accepted and reaches nothing, as on AWS.
                (Some(source), Some(detail_type), Some(detail)) if on_our_bus(field("EventBusName"), bus) => {
                    json!({"EventId": stack.bus.put(source, detail_type, detail, field("Time").map(str::to_string))})
                }
                (Some(_), Some(_), Some(_)) => json!({"EventId": ulid::Ulid::new().to_string().to_lowercase()}),
                (_, _, None) if field("Detail").is_some() => {
                    failed += 1;
                    json!({"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."})
                }
                _ => {
                    failed += 1;
                    json!({"ErrorCode": "InvalidArgument", "ErrorMessage": "Parameter(s) Source, DetailType and Detail must be specified."})
                }
            }
        })
        .collect();
    amz_json(StatusCode::OK, json!({"FailedEntryCount": failed, "Entries": results}))
}
