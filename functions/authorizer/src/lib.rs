//! The Lambda authorizer of both APIs: verifies the JWT once, at the edge (API.md "Auth"), and
//! hands its claims to the functions as the authorizer context (`auth::authorizer_context`).
//!
//! * WebSocket `$connect` (REQUEST authorizer, `methodArn`): the token is the `bearer.<jwt>`
//!   subprotocol or `?token=`. No token: the invocation fails with `Unauthorized`, which API
//!   Gateway turns into a 401; a bad token: a Deny policy (403); a good one: Allow, with context.
//! * HTTP API (payload format 2.0 with simple responses, `routeArn`): `Authorization: Bearer`;
//!   the answer is `{"isAuthorized", "context"}`. API Gateway answers 401 itself, without invoking
//!   this function, when the `Authorization` identity source is missing, and 403 when
//!   `isAuthorized` is false: a simple response cannot ask for a 401.
//!
//! So on both APIs a missing token is a 401 and a refused one a 403. Tokens never reach the logs:
//! only why one was refused.

use realtime_domain::auth::{self, AuthError, Claims};
use realtime_domain::Deps;
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum AuthorizerError {
    /// API Gateway answers 401 when an authorizer fails with exactly this message.
    #[error("Unauthorized")]
    Unauthorized,
    /// Neither authorizer event this function serves (API Gateway answers 500).
    #[error("not a WebSocket REQUEST or HTTP API 2.0 authorizer event")]
    UnknownEvent,
}

pub async fn handle(deps: Deps, event: Value) -> Result<Value, AuthorizerError> {
    let verify = |token: &str| auth::verify(deps.config.jwt_secret.expose(), token, realtime_domain::ports::table::now_epoch());
    let text = |k: &str| event.get(k).and_then(Value::as_str);
    if let (Some("2.0"), Some(_)) = (text("version"), text("routeArn")) {
        let claims = header(&event, "authorization")
            .and_then(auth::token_from_authorization)
            .ok_or(AuthError::Missing)
            .and_then(verify);
        return Ok(match claims {
            Ok(user) => json!({"isAuthorized": true, "context": auth::authorizer_context(&user)}),
            Err(e) => {
                tracing::info!(api = "http", reason = %e, "token refused");
                json!({"isAuthorized": false})
            }
        });
    }
    let method_arn = text("methodArn").ok_or(AuthorizerError::UnknownEvent)?;
    let token = header(&event, "sec-websocket-protocol")
        .and_then(auth::token_from_protocols)
        .or_else(|| event.get("queryStringParameters")?.get("token")?.as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            tracing::info!(api = "websocket", "no token");
            AuthorizerError::Unauthorized
        })?;
    Ok(match verify(token) {
        Ok(user) => policy("Allow", method_arn, Some(&user)),
        Err(e) => {
            tracing::info!(api = "websocket", reason = %e, "token refused");
            policy("Deny", method_arn, None)
        }
    })
}

/// A header of the event, by case-insensitive name (WebSocket events keep the client's case).
fn header<'a>(event: &'a Value, name: &str) -> Option<&'a str> {
    let headers = event.get("headers")?.as_object()?;
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))?.1.as_str()
}

/// The IAM policy answer of a REQUEST authorizer, for the one resource asked about.
fn policy(effect: &str, resource: &str, user: Option<&Claims>) -> Value {
    let mut answer = json!({
        "principalId": user.map_or("anonymous", |u| u.sub.as_str()),
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}]
        }
    });
    if let Some(u) = user {
        answer["context"] = auth::authorizer_context(u).into();
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;
    use realtime_domain::auth::Role;
    use realtime_domain::ports::table::now_epoch;
    use realtime_embedded::testing::{embedded, FIXTURE_SECRET};

    const WS: &str = include_str!("../../../tests/fixtures/authorizer-ws-request.json");
    const HTTP: &str = include_str!("../../../tests/fixtures/authorizer-http-request.json");
    const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/$connect";

    fn token(secret: &str, exp: i64) -> String {
        let claims = Claims {
            sub: "alice".into(),
            roles: vec![Role::Organizer],
            name: Some("Alice".into()),
            exp,
        };
        auth::mint(secret, &claims)
    }

    /// Tokens that must be refused, by why.
    fn bad_tokens() -> Vec<(&'static str, String)> {
        let good = token(FIXTURE_SECRET, now_epoch() + 3600);
        let parts: Vec<&str> = good.split('.').collect();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            B64.encode(r#"{"sub":"mallory","roles":["admin"],"exp":4102444800}"#),
            parts[2]
        );
        let alg_none = format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            B64.encode(r#"{"sub":"alice","exp":4102444800}"#)
        );
        vec![
            ("expired", token(FIXTURE_SECRET, now_epoch() - 1)),
            ("forged", token("another-secret-another-secret-0123", now_epoch() + 3600)),
            ("tampered", tampered),
            ("alg=none", alg_none),
            ("garbage", "not-a-jwt".into()),
        ]
    }

    async fn run(event: Value) -> Result<Value, AuthorizerError> {
        handle(embedded(FIXTURE_SECRET).deps, event).await
    }

    fn ws_with_protocols(protocols: &str) -> Value {
        let mut ev: Value = serde_json::from_str(WS).unwrap();
        ev["headers"]["Sec-WebSocket-Protocol"] = protocols.into();
        ev
    }

    #[tokio::test]
    async fn websocket_valid_tokens_get_an_allow_policy_with_the_claims() {
        let expect_allow = |answer: Value| {
            assert_eq!(answer["principalId"], "alice");
            let statement = &answer["policyDocument"]["Statement"][0];
            assert_eq!(
                (&statement["Effect"], &statement["Resource"], &statement["Action"]),
                (&json!("Allow"), &json!(ARN), &json!("execute-api:Invoke"))
            );
            assert_eq!(answer["context"]["userId"], "alice");
            assert_eq!(answer["context"]["roles"], "organizer");
            assert_eq!(answer["context"]["name"], "Alice");
        };
        // The fixture: a subprotocol token.
        expect_allow(run(serde_json::from_str(WS).unwrap()).await.unwrap());
        // The query parameter.
        let mut ev = ws_with_protocols("realtime.v1");
        ev["queryStringParameters"] = json!({"token": token(FIXTURE_SECRET, now_epoch() + 60)});
        expect_allow(run(ev).await.unwrap());
    }

    #[tokio::test]
    async fn websocket_missing_tokens_fail_unauthorized_and_bad_ones_are_denied() {
        for ev in [ws_with_protocols("realtime.v1"), ws_with_protocols("realtime.v1, bearer.")] {
            let err = run(ev).await.unwrap_err();
            assert!(matches!(err, AuthorizerError::Unauthorized));
            // API Gateway matches the message exactly.
            assert_eq!(err.to_string(), "Unauthorized");
        }
        let mut no_headers: Value = serde_json::from_str(WS).unwrap();
        no_headers.as_object_mut().unwrap().remove("headers");
        assert!(matches!(run(no_headers).await, Err(AuthorizerError::Unauthorized)));
        for (why, t) in bad_tokens() {
            let answer = run(ws_with_protocols(&format!("realtime.v1, bearer.{t}"))).await.unwrap();
            let statement = &answer["policyDocument"]["Statement"][0];
            assert_eq!(
                (&statement["Effect"], &statement["Resource"]),
                (&json!("Deny"), &json!(ARN)),
                "{why}"
            );
            assert!(answer.get("context").is_none(), "{why}");
        }
    }

    #[tokio::test]
    async fn http_answers_simple_responses() {
        let answer = run(serde_json::from_str(HTTP).unwrap()).await.unwrap();
        assert_eq!(answer["isAuthorized"], true);
        assert_eq!(answer["context"]["userId"], "alice");
        assert_eq!(answer["context"]["roles"], "organizer");
        let with = |authorization: Option<String>| {
            let mut ev: Value = serde_json::from_str(HTTP).unwrap();
            let headers = ev["headers"].as_object_mut().unwrap();
            headers.remove("authorization");
            if let Some(a) = authorization {
                headers.insert("authorization".into(), a.into());
            }
            ev
        };
        let mut refused = vec![("missing", None), ("basic", Some("Basic YWxpY2U6eA==".to_string()))];
        refused.extend(bad_tokens().into_iter().map(|(why, t)| (why, Some(format!("Bearer {t}")))));
        for (why, authorization) in refused {
            assert_eq!(run(with(authorization)).await.unwrap(), json!({"isAuthorized": false}), "{why}");
        }
    }

    #[tokio::test]
    async fn other_events_are_not_served() {
        assert!(matches!(
            run(json!({"source": "aws.events"})).await,
            Err(AuthorizerError::UnknownEvent)
        ));
    }
}
