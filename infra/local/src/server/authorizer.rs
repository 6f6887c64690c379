//! Lambda authorizers as API Gateway runs them (request authorizers, identity sources,
//! the policy or simple answer), and the dev token route.

use super::*;

/// The execute-api ARN of the local APIs, before `/{stage}/...`.
pub(super) const ARN_PREFIX: &str = "arn:aws:execute-api:local:000000000000:local";

/// Runs an authorizer as API Gateway does before a route: 401 without invoking it when an
/// identity source is missing; then 401 when it fails with `Unauthorized`, 500 when it fails
/// otherwise, 403 when its answer does not allow `arn`; else the context it passes on.
pub(super) async fn authorize(
    stack: &Stack,
    name: &str,
    mut event: Value,
    arn: &str,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Map<String, Value>, Response> {
    let internal = || json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal Server Error");
    let unauthorized = || json_error(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized");
    let Some(authorizer) = stack.template.authorizer(name) else {
        return Err(internal());
    };
    let Some(Handler::Authorizer(f)) = stack.handler(&authorizer.function) else {
        return Err(internal());
    };
    let query = query_json(query);
    let mut identity = Vec::new();
    for source in &authorizer.identity_sources {
        let value = match source {
            IdentitySource::Header(h) => headers.get(h.as_str()).and_then(|v| v.to_str().ok()),
            IdentitySource::Query(q) => query.get(q).and_then(Value::as_str),
        };
        match value.filter(|v| !v.is_empty()) {
            Some(v) => identity.push(Value::String(v.to_string())),
            None => return Err(unauthorized()),
        }
    }
    event["type"] = "REQUEST".into();
    match authorizer.kind {
        AuthorizerKind::WebSocket => event["methodArn"] = arn.into(),
        AuthorizerKind::Http { .. } => {
            event["routeArn"] = arn.into();
            event["identitySource"] = identity.into();
        }
    }
    let answered = match (&stack.remote, stack.template.binary_of(&authorizer.function)) {
        (Some(remote), Some(binary)) => remote.invoke(binary, &event).await,
        _ => f(stack.deps.clone(), event).await,
    };
    let answer = match answered {
        Ok(answer) => answer,
        Err(message) if message == "Unauthorized" => return Err(unauthorized()),
        Err(message) => {
            tracing::warn!(authorizer = %name, error = %message, "authorizer failed");
            return Err(internal());
        }
    };
    let allowed = match authorizer.kind {
        AuthorizerKind::Http { simple_responses: true } => answer.get("isAuthorized") == Some(&Value::Bool(true)),
        _ => policy_allows(&answer["policyDocument"], arn),
    };
    if !allowed {
        return Err(json_error(StatusCode::FORBIDDEN, "forbidden", "Forbidden"));
    }
    let mut context = answer.get("context").and_then(Value::as_object).cloned().unwrap_or_default();
    if authorizer.kind == AuthorizerKind::WebSocket {
        if let Some(principal) = answer.get("principalId") {
            context.insert("principalId".into(), principal.clone());
        }
    }
    Ok(context)
}

/// Whether an authorizer's IAM policy lets `arn` be invoked: an Allow statement covers it and no
/// Deny statement does.
pub(super) fn policy_allows(policy: &Value, arn: &str) -> bool {
    fn strings(v: Option<&Value>) -> Vec<&str> {
        match v {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }
    let statements: Vec<&Value> = match policy.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
        None => Vec::new(),
    };
    let covers = |effect: &str| {
        statements.iter().any(|s| {
            s.get("Effect").and_then(Value::as_str) == Some(effect)
                && strings(s.get("Action"))
                    .iter()
                    .any(|a| wildcard_match(&a.to_ascii_lowercase(), "execute-api:invoke"))
                && strings(s.get("Resource")).iter().any(|r| wildcard_match(r, arn))
        })
    };
    covers("Allow") && !covers("Deny")
}

/// IAM wildcards: `*` matches any run of characters, `?` one character.
pub(super) fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Local only: mints a token so a newcomer can try the API (API.md "Auth").
pub(super) async fn dev_token(State(stack): Shared, body: Result<Bytes, axum::extract::rejection::BytesRejection>) -> Response {
    let body = match body_within(body, 4 * 1024) {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Req {
        sub: String,
        #[serde(default)]
        roles: Vec<Role>,
        #[serde(default)]
        name: Option<String>,
    }
    let req: Req = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, "invalid_json", &e.to_string()),
    };
    if !realtime_domain::ids::valid_id(&req.sub) {
        return json_error(StatusCode::BAD_REQUEST, "bad_request", "sub must be 1-64 letters, digits, - or _");
    }
    let claims = Claims {
        sub: req.sub,
        roles: req.roles,
        name: req.name,
        exp: chrono::Utc::now().timestamp() + 24 * 3600,
    };
    let token = auth::mint(stack.deps.config.jwt_secret.expose(), &claims);
    axum::Json(json!({"token": token, "claims": claims})).into_response()
}
