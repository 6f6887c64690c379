//! JWT (HS256) as API.md describes: claims `sub`, `roles`, `name`, `exp`.
//! Written on `hmac`/`sha2` directly: a few lines, and small Lambda binaries.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Passenger,
    Driver,
    Organizer,
    Admin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Claims {
    pub sub: String,
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub exp: i64,
}

impl Claims {
    pub fn has_role(&self, r: Role) -> bool {
        self.roles.contains(&r)
    }
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.sub)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("invalid token signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
}

/// Clock skew allowed on `nbf` (RFC 7519 4.1.5 allows "some small leeway").
pub const NBF_LEEWAY_SECS: i64 = 60;

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

fn mac(secret: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length: this cannot fail.
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!())
}

/// Signs claims into a compact JWT.
pub fn mint(secret: &str, claims: &Claims) -> String {
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let signing_input = format!("{}.{}", B64.encode(HEADER), B64.encode(payload));
    let mut m = mac(secret);
    m.update(signing_input.as_bytes());
    format!("{signing_input}.{}", B64.encode(m.finalize().into_bytes()))
}

/// Verifies signature (constant time), algorithm, expiry and `nbf` (when present); returns
/// the claims.
pub fn verify(secret: &str, token: &str, now_epoch_secs: i64) -> Result<Claims, AuthError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(AuthError::Malformed);
    };
    let header: serde_json::Value = B64
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(AuthError::Malformed)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
        return Err(AuthError::Malformed);
    }
    let sig = B64.decode(s).map_err(|_| AuthError::Malformed)?;
    let mut m = mac(secret);
    m.update(h.as_bytes());
    m.update(b".");
    m.update(p.as_bytes());
    m.verify_slice(&sig).map_err(|_| AuthError::BadSignature)?;
    let payload: serde_json::Value = B64
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(AuthError::Malformed)?;
    let nbf = match payload.get("nbf") {
        None => None,
        Some(v) => Some(v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)).ok_or(AuthError::Malformed)?),
    };
    let claims: Claims = serde_json::from_value(payload).map_err(|_| AuthError::Malformed)?;
    if claims.sub.is_empty() {
        return Err(AuthError::Malformed);
    }
    if claims.exp <= now_epoch_secs {
        return Err(AuthError::Expired);
    }
    if nbf.is_some_and(|nbf| nbf > now_epoch_secs.saturating_add(NBF_LEEWAY_SECS)) {
        return Err(AuthError::NotYetValid);
    }
    Ok(claims)
}

/// The token in a `Sec-WebSocket-Protocol` header: `realtime.v1, bearer.<jwt>`.
pub fn token_from_protocols(header: &str) -> Option<&str> {
    header.split(',').map(str::trim).find_map(|p| p.strip_prefix("bearer."))
}

/// The token in an `Authorization: Bearer <jwt>` header.
pub fn token_from_authorization(header: &str) -> Option<&str> {
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
}

/// The claims as the authorizer hands them to API Gateway (`context` of its answer): flat, since
/// context values must be strings, numbers or booleans. `roles` is comma-joined.
pub fn authorizer_context(claims: &Claims) -> Map<String, Value> {
    let roles: Vec<String> = claims
        .roles
        .iter()
        .filter_map(|r| serde_json::to_value(r).ok()?.as_str().map(str::to_string))
        .collect();
    let mut ctx = Map::new();
    ctx.insert("userId".into(), claims.sub.clone().into());
    ctx.insert("roles".into(), roles.join(",").into());
    if let Some(name) = &claims.name {
        ctx.insert("name".into(), name.clone().into());
    }
    ctx.insert("exp".into(), claims.exp.into());
    ctx
}

/// The claims API Gateway passes on from the authorizer (`requestContext.authorizer`, or its
/// `lambda` part on the HTTP API); None when there is no such context, e.g. when a function is
/// invoked directly. The token was verified by the authorizer: nothing is checked again here.
pub fn claims_from_context(ctx: &HashMap<String, Value>) -> Option<Claims> {
    let text = |k: &str| ctx.get(k).and_then(Value::as_str);
    let sub = text("userId").filter(|s| !s.is_empty())?;
    let roles = text("roles")
        .unwrap_or_default()
        .split(',')
        .filter(|r| !r.is_empty())
        .map(|r| serde_json::from_value(Value::String(r.into())).ok())
        .collect::<Option<Vec<Role>>>()?;
    // A number as the authorizer wrote it, or a string should API Gateway stringify it.
    let exp = match ctx.get("exp")? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.parse().ok()?,
        _ => return None,
    };
    Some(Claims {
        sub: sub.into(),
        roles,
        name: text("name").map(str::to_string),
        exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "u1".into(),
            roles: vec![Role::Driver],
            name: Some("Ann".into()),
            exp,
        }
    }

    #[test]
    fn minted_tokens_verify_and_bad_ones_are_refused() {
        let t = mint("secret-secret-secret", &claims(2_000));
        assert_eq!(verify("secret-secret-secret", &t, 1_000), Ok(claims(2_000)));
        assert_eq!(verify("other-secret-secret!", &t, 1_000), Err(AuthError::BadSignature));
        assert_eq!(verify("secret-secret-secret", &t, 2_000), Err(AuthError::Expired));
        assert_eq!(verify("secret-secret-secret", "a.b", 0), Err(AuthError::Malformed));
        assert_eq!(verify("secret-secret-secret", "", 0), Err(AuthError::Malformed));
        // A forged payload with the original signature.
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = B64.encode(r#"{"sub":"admin","roles":["admin"],"exp":9999999999}"#);
        parts[1] = &forged;
        assert_eq!(
            verify("secret-secret-secret", &parts.join("."), 1_000),
            Err(AuthError::BadSignature)
        );
        // alg=none is refused.
        let none = format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none"}"#),
            B64.encode(r#"{"sub":"x","exp":9999999999}"#)
        );
        assert_eq!(verify("secret-secret-secret", &none, 1_000), Err(AuthError::Malformed));
    }

    /// A token signed over any payload (other claims, like `nbf`).
    fn signed(secret: &str, payload: &str) -> String {
        let input = format!("{}.{}", B64.encode(HEADER), B64.encode(payload));
        let mut m = mac(secret);
        m.update(input.as_bytes());
        format!("{input}.{}", B64.encode(m.finalize().into_bytes()))
    }

    #[test]
    fn a_token_not_yet_valid_is_refused_past_the_leeway() {
        let key = "secret-secret-secret";
        let at = |nbf: &str| signed(key, &format!(r#"{{"sub":"u1","exp":100000,"nbf":{nbf}}}"#));
        assert!(verify(key, &at("1000"), 1_000).is_ok());
        assert!(verify(key, &at("1060"), 1_000).is_ok(), "within the leeway");
        assert_eq!(verify(key, &at("1061"), 1_000), Err(AuthError::NotYetValid));
        assert_eq!(verify(key, &at("87400"), 1_000), Err(AuthError::NotYetValid), "a day ahead");
        assert_eq!(verify(key, &at(r#""soon""#), 1_000), Err(AuthError::Malformed));
        assert!(verify(key, &at("999.5"), 1_000).is_ok());
    }

    #[test]
    fn tokens_are_found_in_protocols_and_authorization() {
        assert_eq!(token_from_protocols("realtime.v1, bearer.abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(token_from_protocols("realtime.v1"), None);
        assert_eq!(token_from_authorization("Bearer xyz"), Some("xyz"));
        assert_eq!(token_from_authorization("Basic xyz"), None);
    }

    #[test]
    fn claims_survive_the_authorizer_context() {
        let mut c = claims(2_000);
        c.roles.push(Role::Admin);
        let ctx = authorizer_context(&c);
        assert_eq!(ctx["roles"], "driver,admin");
        let back = |ctx: &Map<String, Value>| claims_from_context(&ctx.clone().into_iter().collect());
        assert_eq!(back(&ctx), Some(c.clone()));
        // API Gateway adds principalId; stringified numbers still parse.
        let mut ctx2 = ctx.clone();
        ctx2.insert("principalId".into(), "u1".into());
        ctx2.insert("exp".into(), "2000".into());
        assert_eq!(back(&ctx2), Some(c));
        let none = Claims {
            name: None,
            roles: vec![],
            ..claims(5)
        };
        assert_eq!(back(&authorizer_context(&none)), Some(none));
        assert_eq!(claims_from_context(&HashMap::new()), None);
        let mut bad = ctx.clone();
        bad.insert("roles".into(), "driver,emperor".into());
        assert_eq!(back(&bad), None);
    }
}
