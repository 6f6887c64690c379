//! `/@connections/{id}` (the API Gateway management API): post, get, delete, signed as
//! AWS signs them in production mode.

use super::*;

pub(super) fn gone() -> Response {
    (
        StatusCode::GONE,
        [("x-amzn-errortype", "GoneException")],
        axum::Json(json!({"message": "Gone"})),
    )
        .into_response()
}

/// In `--production`, the request's SigV4 signature with the configured credentials, or
/// the answer AWS gives to an unsigned or wrongly signed one.
pub(super) fn signed(
    stack: &Stack,
    service: Service,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Box<Response>> {
    let Some(prod) = &stack.production else {
        return Ok(());
    };
    let now = std::time::SystemTime::now();
    sigv4::verify(
        method.as_str(),
        uri.path(),
        uri.query(),
        headers,
        body,
        &prod.credentials,
        service,
        now,
    )
    .map_err(|e| {
        let (status, parts, body) = e.response_parts(service);
        let mut resp = (StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN), body).into_response();
        for (k, v) in parts {
            if let Ok(v) = HeaderValue::from_str(&v) {
                resp.headers_mut().insert(k, v);
            }
        }
        Box::new(resp)
    })
}

pub(super) fn push_error(e: PushError) -> Response {
    match e {
        PushError::Gone => gone(),
        PushError::Throttled => (
            StatusCode::TOO_MANY_REQUESTS,
            [("x-amzn-errortype", "LimitExceededException")],
            axum::Json(json!({"message": "Limit exceeded"})),
        )
            .into_response(),
        PushError::Other(m) => (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"message": m}))).into_response(),
    }
}

pub(super) async fn conn_post(
    State(stack): Shared,
    ConnId(id): ConnId,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = signed(&stack, Service::ExecuteApi, &method, &uri, &headers, &body) {
        return *refused;
    }
    if body.len() > MAX_BODY_BYTES {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            [("x-amzn-errortype", "PayloadTooLargeException")],
            axum::Json(json!({"message": "payload too large"})),
        )
            .into_response();
    }
    match stack.hub.post(&id, &body).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => push_error(e),
    }
}

/// The `{id}` of `/@connections/{id}` and of `/{stage}/@connections/{id}` (the form of the
/// template's `ManagementEndpoint`, which the SDKs call under the stage).
pub(super) struct ConnId(String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ConnId {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Response> {
        let Path(mut params) = Path::<std::collections::HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        params.remove("id").map(ConnId).ok_or_else(gone)
    }
}

pub(super) async fn conn_get(State(stack): Shared, ConnId(id): ConnId, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if let Err(refused) = signed(&stack, Service::ExecuteApi, &method, &uri, &headers, b"") {
        return *refused;
    }
    match stack.hub.info(&id).await {
        Ok(info) => axum::Json(json!({
            // The wire names of the management API (its model's jsonName), ISO 8601 times.
            "connectedAt": info.connected_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "lastActiveAt": info.last_active_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "identity": {"sourceIp": info.source_ip.unwrap_or_default(), "userAgent": info.user_agent.unwrap_or_default()}
        }))
        .into_response(),
        Err(e) => push_error(e),
    }
}

pub(super) async fn conn_delete(State(stack): Shared, ConnId(id): ConnId, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if let Err(refused) = signed(&stack, Service::ExecuteApi, &method, &uri, &headers, b"") {
        return *refused;
    }
    match stack.hub.close(&id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => push_error(e),
    }
}
