//! The HTTP API: routes of `template.yaml` (payload 2.0, through their Lambda authorizers),
//! and the streaming function URL.

use super::*;

pub(super) async fn http_api(
    State(stack): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let path = uri.path();
    // A route of the HTTP API, or else the function URL of a streaming function.
    let target = match stack.template.match_http(method.as_str(), path) {
        Some(route) => Ok(route),
        None => match stack.template.match_stream(path) {
            Some((url, _)) => Err(url.function.clone()),
            None => return json_error(StatusCode::NOT_FOUND, "not_found", &format!("no route for {method} {path}")),
        },
    };
    let body = match body_within(body, MAX_BODY_BYTES) {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    let request = Request {
        peer,
        method: &method,
        uri: &uri,
        headers: &headers,
        body: &body,
    };
    let (route, params) = match target {
        Ok(route) => route,
        Err(function) => return function_url(&stack, &function, &request).await,
    };
    let Some(Handler::Http(f)) = stack.handler(&route.function) else {
        return json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "route has no HTTP handler");
    };
    let route_key = format!("{} {}", route.method, route.path);
    let mut event = payload_v2(&request, &route_key, "000000000000", Some(params));
    if let Some(name) = &route.authorizer {
        // The 2.0 authorizer payload: the request without its body, plus what API Gateway adds.
        let mut auth_event = event.clone();
        if let Some(e) = auth_event.as_object_mut() {
            e.remove("body");
            e.remove("isBase64Encoded");
        }
        let arn = format!("{ARN_PREFIX}/$default/{}{path}", method.as_str());
        match authorize(&stack, name, auth_event, &arn, &headers, uri.query()).await {
            Ok(context) => event["requestContext"]["authorizer"] = json!({"lambda": context}),
            Err(refused) => return refused,
        }
    }
    if let (Some(remote), Some(binary)) = (&stack.remote, stack.template.binary_of(&route.function)) {
        return match remote.invoke(binary, &event).await {
            Ok(answer) => lambda_http_answer(&answer),
            Err(e) => {
                tracing::error!(function = binary, error = %e, "HTTP route function failed");
                // What API Gateway answers when the integration fails.
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    axum::Json(json!({"message": "Internal Server Error"})),
                )
                    .into_response()
            }
        };
    }
    let req = match serde_json::from_value(event) {
        Ok(r) => r,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, "bad_request", &e.to_string()),
    };
    let resp = f(stack.deps.clone(), req).await;
    let mut out = Response::builder().status(StatusCode::from_u16(resp.status_code as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for (k, v) in resp.headers.iter() {
        out = out.header(k, v);
    }
    let body = match resp.body {
        Some(aws_lambda_events::encodings::Body::Text(t)) => Body::from(t),
        Some(aws_lambda_events::encodings::Body::Binary(b)) => Body::from(b),
        _ => Body::empty(),
    };
    out.body(body).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A function's payload 2.0 answer (`statusCode`, `headers`, `body`, `isBase64Encoded`) as
/// the HTTP response API Gateway makes of it.
pub(super) fn lambda_http_answer(answer: &Value) -> Response {
    let status = answer["statusCode"].as_u64().and_then(|s| StatusCode::from_u16(s as u16).ok());
    let mut out = Response::builder().status(status.unwrap_or(StatusCode::OK));
    if let Some(headers) = answer["headers"].as_object() {
        for (k, v) in headers {
            if let Some(v) = v.as_str() {
                out = out.header(k.as_str(), v);
            }
        }
    }
    let body = answer["body"].as_str().unwrap_or_default();
    let body = if answer["isBase64Encoded"] == true {
        Body::from(base64::engine::general_purpose::STANDARD.decode(body).unwrap_or_default())
    } else {
        Body::from(body.to_owned())
    };
    out.body(body).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A streaming function URL (`InvokeMode: RESPONSE_STREAM`): the request as a function URL
/// sends it (payload 2.0, route `$default`, no path parameters, no authorizer: the function
/// checks the caller), the answer streamed to the client as the function produces it.
pub(super) async fn function_url(stack: &Stack, function: &str, request: &Request<'_>) -> Response {
    let Some(Handler::Stream(f)) = stack.handler(function) else {
        return json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "function URL has no streaming handler",
        );
    };
    // A function URL: route `$default`, no path parameters, an anonymous caller.
    let event = payload_v2(request, "$default", "anonymous", None);
    let req = match serde_json::from_value(event) {
        Ok(r) => r,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, "bad_request", &e.to_string()),
    };
    let resp = f(stack.deps.clone(), req).await;
    let mut out = Response::builder().status(StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for (k, v) in &resp.headers {
        out = out.header(k.as_str(), v.as_str());
    }
    let body = resp.body.take_until(stack.streams_ended());
    out.body(Body::from_stream(body.map(Ok::<Bytes, std::convert::Infallible>)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// What an HTTP request brings to its payload.
pub(super) struct Request<'a> {
    pub peer: SocketAddr,
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// The Lambda event (payload format 2.0) that API Gateway's HTTP API, or a function URL,
/// makes of a request. A body that is not UTF-8 goes base64-encoded.
pub(super) fn payload_v2(r: &Request<'_>, route_key: &str, account_id: &str, path_params: Option<Vec<(String, String)>>) -> Value {
    let (body, b64) = match std::str::from_utf8(r.body) {
        Ok(s) => (s.to_string(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(r.body), true),
    };
    let header = |name: &str| r.headers.get(name).and_then(|h| h.to_str().ok());
    let path = r.uri.path();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": r.uri.query().unwrap_or_default(),
        "headers": headers_json(r.headers),
        "queryStringParameters": query_json(r.uri.query()),
        "requestContext": {
            "accountId": account_id, "apiId": "local", "domainName": header("host").unwrap_or("localhost"),
            "http": {"method": r.method.as_str(), "path": path, "protocol": "HTTP/1.1", "sourceIp": r.peer.ip().to_string(),
                     "userAgent": header("user-agent").unwrap_or_default()},
            "requestId": ulid::Ulid::new().to_string(), "routeKey": route_key, "stage": "$default",
            "time": chrono::Utc::now().to_rfc2822(), "timeEpoch": now_ms()
        },
        "body": body,
        "isBase64Encoded": b64,
    });
    if let Some(params) = path_params {
        event["pathParameters"] = Value::Object(params.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
    }
    event
}
