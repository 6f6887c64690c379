//! HTTP API handlers: request parsing into validated types, JSON answers, and the
//! mapping of every error to its status (here and nowhere else).

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use realtime_domain::auth::{self, Claims};
use realtime_domain::deps::Deps;
use realtime_domain::error::ApiError;
use realtime_domain::events::{Actor, Cause};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;

pub type HttpRequest = ApiGatewayV2httpRequest;
pub type HttpResponse = ApiGatewayV2httpResponse;
pub type HttpResult = Result<HttpResponse, ApiError>;

/// API Gateway's payload limit for a message body.
pub const MAX_BODY_BYTES: usize = 128 * 1024;

pub fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

pub fn path_param<'a>(req: &'a HttpRequest, name: &str) -> Result<&'a str, ApiError> {
    let v = req.path_parameters.get(name).map(String::as_str).unwrap_or_default();
    if realtime_domain::ids::valid_id(v) {
        Ok(v)
    } else {
        Err(ApiError::BadRequest(format!(
            "path parameter {name} must be 1-64 letters, digits, - or _"
        )))
    }
}

/// A path parameter parsed into its id type (`ChatId`, `TripId`, `BookingId`): ids are
/// parsed here, once, and the domain takes them as given.
pub fn path_id<T: TryFrom<String, Error = realtime_domain::ids::InvalidId>>(req: &HttpRequest, name: &str) -> Result<T, ApiError> {
    path_param(req, name).and_then(|v| T::try_from(v.to_string()).map_err(|e| ApiError::BadRequest(e.to_string())))
}

pub fn query_param<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.query_string_parameters.first(name)
}

/// The body as bytes (API Gateway base64-encodes binary bodies), size-checked.
pub fn body_bytes(req: &HttpRequest) -> Result<Vec<u8>, ApiError> {
    let raw = req.body.as_deref().unwrap_or_default();
    let bytes = if req.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|_| ApiError::BadRequest("body is not valid base64".into()))?
    } else {
        raw.as_bytes().to_vec()
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge { limit: MAX_BODY_BYTES });
    }
    Ok(bytes)
}

/// The body parsed into `T`; the serde message says what is wrong and where.
pub fn json_body<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    let bytes = body_bytes(req)?;
    if bytes.is_empty() {
        return Err(ApiError::InvalidJson("a JSON body is required".into()));
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::InvalidJson(e.to_string()))
}

/// The caller: the claims the authorizer passed on (behind API Gateway), else those of
/// `Authorization: Bearer <jwt>` (a direct invocation, e.g. `cargo lambda invoke`).
pub fn authenticate(deps: &Deps, req: &HttpRequest) -> Result<Claims, ApiError> {
    if let Some(user) = req
        .request_context
        .authorizer
        .as_ref()
        .and_then(|a| auth::claims_from_context(&a.fields))
    {
        return Ok(user);
    }
    let token = header(req, "authorization")
        .and_then(auth::token_from_authorization)
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
    auth::verify(deps.config.jwt_secret.expose(), token, realtime_domain::ports::table::now_epoch())
        .map_err(|e| ApiError::Unauthorized(e.to_string()))
}

/// The correlation id of a request: the client's `x-correlation-id`, else API Gateway's request id.
pub fn correlation_id(req: &HttpRequest) -> String {
    header(req, "x-correlation-id")
        .filter(|v| realtime_domain::ids::valid_id(v))
        .map(str::to_string)
        .or_else(|| req.request_context.request_id.clone())
        .unwrap_or_else(|| ulid::Ulid::new().to_string())
}

/// The cause of the events a request produces.
pub fn cause(req: &HttpRequest, user: &Claims) -> Cause {
    Cause {
        correlation_id: correlation_id(req),
        causation_id: None,
        actor: Some(Actor {
            user_id: user.sub.clone(),
            role: None,
        }),
    }
}

pub fn json<T: Serialize>(status: u16, body: &T) -> HttpResponse {
    let mut r = HttpResponse::default();
    r.status_code = status.into();
    r.headers
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r.body = Some(Body::Text(serde_json::to_string(body).unwrap_or_default()));
    r
}

/// A text answer of another type (`text/csv; charset=utf-8`, ...).
pub fn text(status: u16, content_type: &'static str, body: String) -> HttpResponse {
    let mut r = HttpResponse::default();
    r.status_code = status.into();
    r.headers
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    r.body = Some(Body::Text(body));
    r
}

pub fn error_response(e: &ApiError) -> HttpResponse {
    json(e.status(), &e.body())
}

/// Runs a handler and turns its error into the answer; 5xx are logged with detail.
pub async fn serve<F, Fut>(handler: F, deps: Deps, req: HttpRequest) -> HttpResponse
where
    F: Fn(Deps, HttpRequest) -> Fut,
    Fut: Future<Output = HttpResult>,
{
    let cid = correlation_id(&req);
    let route = req.route_key.clone().unwrap_or_default();
    let span = tracing::info_span!("http", correlation_id = %cid, route = %route);
    match tracing::Instrument::instrument(handler(deps, req), span.clone()).await {
        Ok(r) => r,
        Err(e) => {
            span.in_scope(|| e.log("request"));
            error_response(&e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: &str) -> HttpRequest {
        let mut r = HttpRequest::default();
        r.body = Some(body.into());
        r
    }

    #[test]
    fn bodies_are_parsed_or_refused_with_4xx() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            a: u32,
        }
        assert_eq!(json_body::<T>(&req(r#"{"a":1}"#)).unwrap().a, 1);
        assert_eq!(json_body::<T>(&req("")).unwrap_err().status(), 400);
        assert_eq!(json_body::<T>(&req("{")).unwrap_err().status(), 400);
        assert_eq!(json_body::<T>(&req(r#"{"a":"x"}"#)).unwrap_err().status(), 400);
        assert_eq!(json_body::<T>(&req(&"x".repeat(MAX_BODY_BYTES + 1))).unwrap_err().status(), 413);
        let mut b = req("!!!");
        b.is_base64_encoded = true;
        assert_eq!(json_body::<T>(&b).unwrap_err().status(), 400);
    }

    #[test]
    fn the_authorizer_context_comes_before_the_token() {
        let deps = realtime_embedded::testing::embedded(realtime_embedded::testing::FIXTURE_SECRET).deps;
        let mut r = req("");
        assert_eq!(authenticate(&deps, &r).unwrap_err().status(), 401);
        let claims = |sub: &str| Claims {
            sub: sub.into(),
            roles: vec![auth::Role::Organizer],
            name: None,
            exp: i64::MAX,
        };
        let token = auth::mint(realtime_embedded::testing::FIXTURE_SECRET, &claims("bob"));
        r.headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        assert_eq!(authenticate(&deps, &r).unwrap().sub, "bob");
        let mut authorizer = aws_lambda_events::apigw::ApiGatewayRequestAuthorizer::default();
        authorizer.fields = auth::authorizer_context(&claims("alice")).into_iter().collect();
        r.request_context.authorizer = Some(authorizer);
        assert_eq!(authenticate(&deps, &r).unwrap(), claims("alice"));
    }
}
