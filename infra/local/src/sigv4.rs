//! AWS Signature Version 4 *verification* of incoming requests, for `--production`: the
//! management API (`/@connections/{id}`, signing name `execute-api`) and EventBridge
//! `PutEvents` (`events`) then take only requests signed with the configured credentials,
//! so the AWS SDKs and CLI work unchanged, and answer anything else as AWS does.
//!
//! The canonical request is built as the signers build it (checked in the tests against
//! the `aws-sigv4` crate the Rust SDK signs with, and against Python botocore, the AWS
//! CLI's signer):
//!
//! - canonical URI: the raw path as received (empty is `/`), dot segments and empty
//!   segments removed as both signers do, then every byte but `A-Za-z0-9-._~` and `/`
//!   percent-encoded *again* (the non-S3 "double encoding"): a request sent as
//!   `/@connections/AbC%3D` is signed as `/%40connections/AbC%253D`;
//! - canonical query: each `k=v` pair percent-decoded (`+` is a space, as the
//!   `form_urlencoded` parsing `aws-sigv4` uses), encoded again with the same set, sorted;
//!   in the presigned form without `X-Amz-Signature`;
//! - canonical headers: the `SignedHeaders` names, lowercased and sorted, each with its
//!   values (several are joined by `,`) trimmed of spaces and inner runs of spaces
//!   collapsed (spaces only, as `aws-sigv4`), as raw bytes (a value need not be UTF-8);
//! - payload hash: the `x-amz-content-sha256` header when present, else the hex SHA-256
//!   of the body. When the header is present it must also *be* the body's hash
//!   (`UNSIGNED-PAYLOAD` included is refused): otherwise a signed header would vouch for
//!   any body. Neither the Rust SDK nor botocore sends it for these two services.
//!
//! The checks run in the order AWS's front ends run them (as recorded by dynalite, a
//! DynamoDB emulator that mirrors the real service's answers, in its `index.js`:
//! <https://github.com/mhart/dynalite>), each with AWS's own message:
//!
//! 1. both an `Authorization` header and an `X-Amz-Algorithm` query parameter:
//!    `InvalidSignatureException` "Found both 'X-Amz-Algorithm' as a query-string param
//!    and 'Authorization' as HTTP header.";
//! 2. neither: `MissingAuthenticationTokenException` "Missing Authentication Token";
//! 3. missing parts: `IncompleteSignatureException`, e.g. "Authorization header requires
//!    'Credential' parameter. ... Authorization=<the header>" (a JWT or SigV2 header in
//!    `Authorization` lands here too, as on API Gateway and SSM), a token without `=`,
//!    "'<token>' not a valid key=value pair (missing equal-sign) in Authorization header:
//!    '<the header>'."; presigned: "AWS query-string parameters must include '<name>'.
//!    ... Re-examine the query-string parameters.";
//! 4. the date: "Date must be in ISO-8601 'basic format'. Got '<x>'. ..."
//!    (`IncompleteSignatureException`), then the clock skew (below);
//! 5. `host` not signed: `InvalidSignatureException` "'Host' must be a 'SignedHeader' in
//!    the AWS Authorization.";
//! 6. the algorithm is not `AWS4-HMAC-SHA256`: `IncompleteSignatureException`;
//! 7. the credential is not `key/date/region/service/aws4_request`: "Credential must have
//!    exactly 5 slash-delimited elements, ..." (`IncompleteSignatureException`), then its
//!    scope (`InvalidSignatureException`: "Credential should be scoped to correct service:
//!    'events'. ", the terminator, and the scope date against the request date). Any
//!    non-empty region is accepted;
//! 8. the access key is not the configured one: `UnrecognizedClientException` "The
//!    security token included in the request is invalid.";
//! 9. the signature (constant-time compare): `InvalidSignatureException` "The request
//!    signature we calculated does not match ..." followed, as AWS does, by the canonical
//!    string and string to sign it expected (neither holds a secret);
//! 10. a session token (`X-Amz-Security-Token`): the configured credentials have none, so
//!     `UnrecognizedClientException` as AWS answers an invalid token;
//! 11. `x-amz-content-sha256` not the body's hash: `InvalidSignatureException` with S3's
//!     message for it ("The provided 'x-amz-content-sha256' header does not match what was
//!     computed.").
//!
//! Clock skew: EventBridge takes a request dated within 15 minutes of now ("Signature
//! expired: 20140325T143453Z is now earlier than 20140325T143751Z (20140325T145251Z - 15
//! min.)", answered with 400 by the JSON 1.1 services: aws/aws-sdk-js#254,
//! upmc-enterprises/registry-creds#24); API Gateway, the management API included, allows 5
//! minutes ("Signature expired: 20240425T100521Z is now earlier than 20240425T101638Z
//! (20240425T102138Z - 5 min.)" with 403 from `PostToConnection`:
//! cognitect-labs/aws-api#255; mhart/aws4#118 for an IAM-authorized REST API). The future
//! side is "Signature not yet current: <date> is still later than <now + skew> (<now> + N
//! min.)" (s12v/awsbeats#48). A presigned request is good until `X-Amz-Date +
//! X-Amz-Expires` (at most 7 days); its expiry message uses the same words with "N sec."
//! (not confirmed against AWS). A `Date` header stands in for a missing `X-Amz-Date` (RFC
//! 2822 form), as AWS allows.
//!
//! The answers ([`SigV4Error::response_parts`]):
//!
//! - EventBridge (awsJson1_1): status 400, `content-type: application/x-amz-json-1.1`,
//!   `x-amzn-errortype: <Code>`, body `{"__type": "<Code>", "message": "..."}`. Confirmed
//!   400 for `IncompleteSignatureException` (iann0036/cloud9-sync#10),
//!   `InvalidSignatureException` (above; samcday/logstash-output-kinesis#8 for the
//!   canonical-string suffix) and `UnrecognizedClientException` (CloudWatch Logs, Cognito,
//!   Kinesis: maxbanton/cwh#119, ArranJacques/laravel-aws-cognito-auth#25,
//!   ekristen/aws-nuke#774) on the JSON 1.x services; `MissingAuthenticationTokenException`
//!   could not be confirmed for EventBridge itself: 400 as dynalite records for DynamoDB
//!   (whose text is "Request is missing Authentication Token"; EventBridge's is taken as
//!   "Missing Authentication Token"). AWS's generic "Common Errors" pages list 403 for the
//!   Query-protocol `MissingAuthenticationToken`, not for the JSON services.
//! - API Gateway (execute-api, REST-JSON): status 403 for every one of them,
//!   `content-type: application/json`, `x-amzn-errortype: <Code>`, body `{"message":
//!   "..."}`. Confirmed: `MissingAuthenticationTokenException` (aws/chalice#12, full
//!   response), `IncompleteSignatureException` (aws-amplify/amplify-flutter#1539, full
//!   response), `InvalidSignatureException` (rpgreen/apigateway-generic-java-sdk#11,
//!   cognitect-labs/aws-api#255 from `PostToConnection`), "Credential should be scoped to
//!   correct service: 'execute-api'. " (aws/aws-sdk-js-v3#1831), and the
//!   `UnrecognizedClientException` text (kndt84/aws-api-gateway-client#31; 403 by the same
//!   rule). The canonical path `/production/%40connections/e_d2EewNLPECIGw%253D` in
//!   aws/aws-sdk-go-v2#889 shows the `@` and double encoding for the management API.
//!
//! Header names come back lowercase (`x-amzn-errortype`, HTTP header names are
//! case-insensitive and hyper writes them lowercase anyway), so they can go through
//! `HeaderName::from_static`.
//!
//! Nothing here panics on input: invalid UTF-8, oversized or missing parts all end in an
//! error answer.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use std::time::{SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const TERMINATOR: &str = "aws4_request";
const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";
/// The longest a presigned request may live (SigV4: 7 days).
const MAX_PRESIGNED_EXPIRES: u64 = 604_800;

const MSG_FOUND_BOTH: &str = "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.";
const MSG_HOST_NOT_SIGNED: &str = "'Host' must be a 'SignedHeader' in the AWS Authorization.";
const MSG_CONTENT_SHA256: &str = "The provided 'x-amz-content-sha256' header does not match what was computed.";

/// The one access key the stack accepts, and its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .finish()
    }
}

/// Which AWS service a request is for: its signing name, clock skew and error protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// EventBridge (`PutEvents`), signing name `events`, JSON 1.1 protocol.
    Events,
    /// The API Gateway management API (`/@connections`), signing name `execute-api`.
    ExecuteApi,
}

impl Service {
    /// The name the credential scope must carry.
    pub const fn signing_name(self) -> &'static str {
        match self {
            Service::Events => "events",
            Service::ExecuteApi => "execute-api",
        }
    }

    /// How far `X-Amz-Date` may be from now, either way, in minutes (see the module doc).
    pub const fn clock_skew_minutes(self) -> i64 {
        match self {
            Service::Events => 15,
            Service::ExecuteApi => 5,
        }
    }
}

/// Why a request was refused. `Display` is the message AWS sends; [`Self::code`] its code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No `Authorization` header and no `X-Amz-Algorithm` query parameter.
    #[error("Missing Authentication Token")]
    Missing,
    /// The signature's parts are missing or malformed (AWS's message).
    #[error("{0}")]
    Incomplete(String),
    /// The access key is not the configured one (or a session token came along).
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    /// `X-Amz-Date` is older than the allowed skew (or a presigned request has expired).
    #[error("Signature expired: {date} is now earlier than {earliest} ({now} - {window}.)")]
    Expired {
        date: String,
        earliest: String,
        now: String,
        /// `15 min`, `5 min`, or for a presigned request `<X-Amz-Expires> sec`.
        window: String,
    },
    /// `X-Amz-Date` is further in the future than the allowed skew.
    #[error("Signature not yet current: {date} is still later than {latest} ({now} + {window}.)")]
    NotYetCurrent {
        date: String,
        latest: String,
        now: String,
        window: String,
    },
    /// The credential scope names another service, terminator or date (AWS's message).
    #[error("{0}")]
    Scope(String),
    /// Another `InvalidSignatureException` (`host` not signed, both signature forms, a
    /// wrong `x-amz-content-sha256`), with AWS's message.
    #[error("{0}")]
    Invalid(String),
    /// The signature is not the one the configured secret gives for this request.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and \
         signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have \
         been\n'{canonical_request}'\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n"
    )]
    Mismatch { canonical_request: String, string_to_sign: String },
}

impl SigV4Error {
    /// AWS's error code: what `__type` / `x-amzn-ErrorType` carry.
    pub fn code(&self) -> &'static str {
        match self {
            SigV4Error::Missing => "MissingAuthenticationTokenException",
            SigV4Error::Incomplete(_) => "IncompleteSignatureException",
            SigV4Error::UnknownKey => "UnrecognizedClientException",
            SigV4Error::Expired { .. }
            | SigV4Error::NotYetCurrent { .. }
            | SigV4Error::Scope(_)
            | SigV4Error::Invalid(_)
            | SigV4Error::Mismatch { .. } => "InvalidSignatureException",
        }
    }

    /// The answer AWS gives, per service: (HTTP status, headers, JSON body). EventBridge:
    /// 400, `application/x-amz-json-1.1`, `{"__type", "message"}`; the management API: 403,
    /// `application/json`, `{"message"}`; both with `x-amzn-errortype: <code>`.
    pub fn response_parts(&self, service: Service) -> (u16, Vec<(&'static str, String)>, String) {
        let code = self.code();
        let message = self.to_string();
        match service {
            Service::Events => (
                400,
                vec![
                    ("content-type", "application/x-amz-json-1.1".to_string()),
                    ("x-amzn-errortype", code.to_string()),
                ],
                serde_json::json!({ "__type": code, "message": message }).to_string(),
            ),
            Service::ExecuteApi => (
                403,
                vec![
                    ("content-type", "application/json".to_string()),
                    ("x-amzn-errortype", code.to_string()),
                ],
                serde_json::json!({ "message": message }).to_string(),
            ),
        }
    }
}

/// The signature's parts, from the `Authorization` header or the presigned query.
struct AuthParts {
    algorithm: String,
    credential: String,
    signed_headers: String,
    signature: String,
    /// `X-Amz-Date` as sent (or the `Date` header, parsed), unparsed.
    date: RawDate,
    /// `X-Amz-Expires`, presigned only.
    expires: Option<u64>,
    presigned: bool,
}

enum RawDate {
    AmzDate(String),
    HttpDate(String),
}

/// Verifies the request's SigV4 signature: the `Authorization` header, or the presigned
/// query form (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-SignedHeaders`,
/// `X-Amz-Signature`, optional `X-Amz-Expires`). `raw_path` and `raw_query` are as received
/// (still percent-encoded: `uri.path()`, `uri.query()`); `headers` must hold `host` (hyper
/// keeps it for HTTP/1.1; over HTTP/2 put the `:authority` there first).
#[allow(clippy::too_many_arguments)]
pub fn verify(
    method: &str,
    raw_path: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    creds: &Credentials,
    service: Service,
    now: SystemTime,
) -> Result<(), SigV4Error> {
    let query = parse_query(raw_query.unwrap_or_default());
    let authorization = headers
        .get(http::header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .filter(|v| !v.trim().is_empty());
    let presigned = query.iter().any(|(k, _)| k == "X-Amz-Algorithm");
    let parts = match (authorization, presigned) {
        (Some(_), true) => return Err(SigV4Error::Invalid(MSG_FOUND_BOTH.to_string())),
        (Some(header), false) => parse_authorization(&header, headers)?,
        (None, true) => parse_presigned(&query)?,
        (None, false) => return Err(SigV4Error::Missing),
    };

    // The date, then the clock.
    let (date, amz_date) = match &parts.date {
        RawDate::AmzDate(s) => (parse_amz_date(s).ok_or_else(|| bad_date(s))?, s.clone()),
        RawDate::HttpDate(s) => {
            let d = DateTime::parse_from_rfc2822(s.trim()).map_err(|_| bad_date(s))?.with_timezone(&Utc);
            (d, d.format(AMZ_DATE_FORMAT).to_string())
        }
    };
    check_clock(&amz_date, date, to_utc(now), service, parts.expires)?;

    let signed_headers = signed_header_names(&parts.signed_headers);
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(SigV4Error::Invalid(MSG_HOST_NOT_SIGNED.to_string()));
    }
    if parts.algorithm != ALGORITHM {
        return Err(SigV4Error::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{}' (only {ALGORITHM} for now). ",
            parts.algorithm
        )));
    }

    // The credential: key/date/region/service/aws4_request (trailing slashes ignored).
    let scope: Vec<&str> = parts.credential.trim_end_matches('/').split('/').collect();
    let [key, scope_date, region, scope_service, terminator] = scope[..] else {
        return Err(SigV4Error::Incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{}'",
            parts.credential
        )));
    };
    let mut scope_errors = String::new();
    if region.is_empty() {
        scope_errors.push_str("Credential should be scoped to a valid region, not ''. ");
    }
    if scope_service != service.signing_name() {
        scope_errors.push_str(&format!(
            "Credential should be scoped to correct service: '{}'. ",
            service.signing_name()
        ));
    }
    if terminator != TERMINATOR {
        scope_errors.push_str(&format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'. "
        ));
    }
    let request_day = amz_date.get(..8).unwrap_or_default();
    if scope_date != request_day {
        scope_errors.push_str(&format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != \
             '{request_day}', from '{amz_date}'."
        ));
    }
    if !scope_errors.is_empty() {
        return Err(SigV4Error::Scope(scope_errors));
    }
    if !constant_time_eq(key.as_bytes(), creds.access_key_id.as_bytes()) {
        return Err(SigV4Error::UnknownKey);
    }

    // The signature.
    let body_hash = hex(&Sha256::digest(body));
    let content_sha256 = headers
        .get("x-amz-content-sha256")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let payload_hash = content_sha256.clone().unwrap_or_else(|| body_hash.clone());
    let canonical_request = canonical_request(method, raw_path, &query, parts.presigned, headers, &signed_headers, &payload_hash);
    let credential_scope = format!("{scope_date}/{region}/{scope_service}/{TERMINATOR}");
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{credential_scope}\n{}",
        hex(&Sha256::digest(&canonical_request))
    );
    let mut k = hmac(format!("AWS4{}", creds.secret_access_key).as_bytes(), scope_date.as_bytes());
    for part in [region, scope_service, TERMINATOR] {
        k = hmac(&k, part.as_bytes());
    }
    let mut mac = new_mac(&k);
    mac.update(string_to_sign.as_bytes());
    let good = match unhex(parts.signature.trim()) {
        Some(provided) if provided.len() == 32 => mac.verify_slice(&provided).is_ok(),
        _ => false,
    };
    if !good {
        return Err(SigV4Error::Mismatch {
            canonical_request: String::from_utf8_lossy(&canonical_request).into_owned(),
            string_to_sign,
        });
    }

    // What the signature does not cover by itself.
    let has_token = if parts.presigned {
        query.iter().any(|(k, _)| k == "X-Amz-Security-Token")
    } else {
        headers.contains_key("x-amz-security-token")
    };
    if has_token {
        return Err(SigV4Error::UnknownKey);
    }
    if let Some(declared) = content_sha256 {
        if !declared.eq_ignore_ascii_case(&body_hash) {
            return Err(SigV4Error::Invalid(MSG_CONTENT_SHA256.to_string()));
        }
    }
    Ok(())
}

fn bad_date(got: &str) -> SigV4Error {
    SigV4Error::Incomplete(format!(
        "Date must be in ISO-8601 'basic format'. Got '{got}'. See http://en.wikipedia.org/wiki/ISO_8601"
    ))
}

/// The `Authorization` header: `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
fn parse_authorization(header: &str, headers: &HeaderMap) -> Result<AuthParts, SigV4Error> {
    let trimmed = header.trim();
    let (algorithm, rest) = trimmed.split_once(|c: char| c.is_ascii_whitespace()).unwrap_or((trimmed, ""));
    let (mut credential, mut signed_headers, mut signature) = (String::new(), String::new(), String::new());
    // Only a SigV4 header is taken apart; anything else (a JWT, SigV2's `AWS key:sig`) is
    // answered as one with no parameters, as AWS does.
    if algorithm.starts_with("AWS4-") {
        for token in rest.split(|c: char| c == ',' || c.is_ascii_whitespace()).filter(|t| !t.is_empty()) {
            let Some((name, value)) = token.split_once('=') else {
                return Err(SigV4Error::Incomplete(format!(
                    "'{token}' not a valid key=value pair (missing equal-sign) in Authorization header: '{header}'."
                )));
            };
            match name {
                "Credential" => credential = value.to_string(),
                "SignedHeaders" => signed_headers = value.to_string(),
                "Signature" => signature = value.to_string(),
                _ => {}
            }
        }
    }
    let date = match (headers.get("x-amz-date"), headers.get(http::header::DATE)) {
        (Some(v), _) => Some(RawDate::AmzDate(String::from_utf8_lossy(v.as_bytes()).into_owned())),
        (None, Some(v)) => Some(RawDate::HttpDate(String::from_utf8_lossy(v.as_bytes()).into_owned())),
        (None, None) => None,
    };
    let mut missing = String::new();
    for (name, value) in [
        ("Credential", &credential),
        ("Signature", &signature),
        ("SignedHeaders", &signed_headers),
    ] {
        if value.is_empty() {
            missing.push_str(&format!("Authorization header requires '{name}' parameter. "));
        }
    }
    if date.is_none() {
        missing.push_str("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ");
    }
    match date {
        Some(date) if missing.is_empty() => Ok(AuthParts {
            algorithm: algorithm.to_string(),
            credential,
            signed_headers,
            signature,
            date,
            expires: None,
            presigned: false,
        }),
        _ => Err(SigV4Error::Incomplete(format!("{missing}Authorization={header}"))),
    }
}

/// The presigned form's query parameters.
fn parse_presigned(query: &[(String, String)]) -> Result<AuthParts, SigV4Error> {
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    let names = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-SignedHeaders",
        "X-Amz-Date",
    ];
    let mut missing = String::new();
    for name in names {
        if param(name).is_empty() {
            missing.push_str(&format!("AWS query-string parameters must include '{name}'. "));
        }
    }
    if !missing.is_empty() {
        return Err(SigV4Error::Incomplete(format!("{missing}Re-examine the query-string parameters.")));
    }
    let expires = match query.iter().find(|(k, _)| k == "X-Amz-Expires") {
        None => None,
        Some((_, v)) => match v.parse::<u64>() {
            Ok(n) if n <= MAX_PRESIGNED_EXPIRES => Some(n),
            _ => {
                return Err(SigV4Error::Incomplete(format!(
                    "X-Amz-Expires must be a whole number of seconds from 0 to {MAX_PRESIGNED_EXPIRES}, got '{v}'."
                )))
            }
        },
    };
    Ok(AuthParts {
        algorithm: param("X-Amz-Algorithm"),
        credential: param("X-Amz-Credential"),
        signed_headers: param("X-Amz-SignedHeaders"),
        signature: param("X-Amz-Signature"),
        date: RawDate::AmzDate(param("X-Amz-Date")),
        expires,
        presigned: true,
    })
}

/// `YYYYMMDDTHHMMSSZ`, strictly.
fn parse_amz_date(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let shape = b.len() == 16
        && b.iter().enumerate().all(|(i, c)| match i {
            8 => *c == b'T',
            15 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<u32>().ok());
    let day = NaiveDate::from_ymd_opt(n(0..4)? as i32, n(4..6)?, n(6..8)?)?;
    Some(day.and_hms_opt(n(9..11)?, n(11..13)?, n(13..15)?)?.and_utc())
}

fn to_utc(t: SystemTime) -> DateTime<Utc> {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::UNIX_EPOCH)
}

fn fmt_date(t: DateTime<Utc>) -> String {
    t.format(AMZ_DATE_FORMAT).to_string()
}

fn check_clock(amz_date: &str, date: DateTime<Utc>, now: DateTime<Utc>, service: Service, expires: Option<u64>) -> Result<(), SigV4Error> {
    let minutes = service.clock_skew_minutes();
    let skew = TimeDelta::minutes(minutes);
    let (window, lifetime) = match expires {
        Some(secs) => (format!("{secs} sec"), TimeDelta::seconds(secs as i64)),
        None => (format!("{minutes} min"), skew),
    };
    let earliest = now.checked_sub_signed(lifetime).unwrap_or(now);
    if date < earliest {
        return Err(SigV4Error::Expired {
            date: amz_date.to_string(),
            earliest: fmt_date(earliest),
            now: fmt_date(now),
            window,
        });
    }
    let latest = now.checked_add_signed(skew).unwrap_or(now);
    if date > latest {
        return Err(SigV4Error::NotYetCurrent {
            date: amz_date.to_string(),
            latest: fmt_date(latest),
            now: fmt_date(now),
            window: format!("{minutes} min"),
        });
    }
    Ok(())
}

/// `SignedHeaders` as canonical names: lowercased, sorted, without duplicates or empties.
fn signed_header_names(list: &str) -> Vec<String> {
    let mut names: Vec<String> = list
        .split(';')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    names.sort();
    names.dedup();
    names
}

fn canonical_request(
    method: &str,
    raw_path: &str,
    query: &[(String, String)],
    presigned: bool,
    headers: &HeaderMap,
    signed_headers: &[String],
    payload_hash: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(raw_path).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(query, presigned).as_bytes());
    out.push(b'\n');
    for name in signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (i, value) in headers.get_all(name.as_str()).iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&trim_all(value.as_bytes()));
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers.join(";").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

/// Trims spaces at both ends and collapses inner runs of spaces to one (spaces only).
fn trim_all(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    for &b in value {
        if b == b' ' && (out.is_empty() || out.last() == Some(&b' ')) {
            continue;
        }
        out.push(b);
    }
    if out.last() == Some(&b' ') {
        out.pop();
    }
    out
}

/// The canonical URI of a raw (still encoded) path: dot and empty segments removed as the
/// signers do, then encoded again (`%` becomes `%25`, `@` `%40`).
pub(crate) fn canonical_uri(raw_path: &str) -> String {
    let path = if raw_path.starts_with('/') {
        raw_path.to_string()
    } else {
        format!("/{raw_path}")
    };
    let path = if path.contains('.') || path.contains("//") {
        normalize_path(&path)
    } else {
        path
    };
    let mut out = String::with_capacity(path.len() + 16);
    for &b in path.as_bytes() {
        if b == b'/' {
            out.push('/');
        } else {
            push_encoded(&mut out, b);
        }
    }
    out
}

/// RFC 3986 5.2.4 on an absolute path, dropping empty segments too; keeps a trailing `/`.
fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = format!("/{}", segments.join("/"));
    let trailing = ["/", "/.", "/./", "/..", "/../"].iter().any(|s| path.ends_with(s));
    if trailing && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// The query's pairs, percent-decoded (`+` as a space, invalid escapes kept, invalid
/// UTF-8 replaced, as `form_urlencoded` does for `aws-sigv4`).
fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push((hi << 4) | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_query(query: &[(String, String)], presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| !(presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        push_encoded(&mut out, b);
    }
    out
}

fn push_encoded(out: &mut String, b: u8) {
    if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
        out.push(b as char);
    } else {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        out.push('%');
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0xf) as usize] as char);
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0xf) as usize] as char);
    }
    out
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks(2).map(|pair| Some((hex_val(pair[0])? << 4) | hex_val(pair[1])?)).collect()
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length: this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts any key length")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = new_mac(key);
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Equal without an early exit (the lengths are not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sigv4::http_request::{sign, PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings};
    use aws_smithy_runtime_api::client::identity::Identity;
    use std::time::Duration;

    const HOST: &str = "127.0.0.1:4010";
    const KEY: &str = "AKIDLOCALSTACK000001";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYLOCALSECRET";

    fn creds() -> Credentials {
        Credentials {
            access_key_id: KEY.to_string(),
            secret_access_key: SECRET.to_string(),
        }
    }

    /// 2024-05-01T12:00:00Z.
    fn t0() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_714_564_800)
    }

    /// A request as the server sees it.
    #[derive(Clone, Debug)]
    struct Req {
        method: String,
        path: String,
        query: Option<String>,
        headers: HeaderMap,
        body: Vec<u8>,
    }

    impl Req {
        fn verify(&self, creds: &Credentials, service: Service, now: SystemTime) -> Result<(), SigV4Error> {
            verify(
                &self.method,
                &self.path,
                self.query.as_deref(),
                &self.headers,
                &self.body,
                creds,
                service,
                now,
            )
        }
        fn set(&mut self, name: &'static str, value: &str) {
            self.headers.insert(name, http::HeaderValue::from_str(value).unwrap());
        }
    }

    struct Sign<'a> {
        method: &'a str,
        /// Path and query, as sent.
        target: &'a str,
        headers: &'a [(&'a str, &'a str)],
        body: &'a [u8],
        key: &'a str,
        secret: &'a str,
        name: &'a str,
        time: SystemTime,
        settings: SigningSettings,
        /// Sign `UNSIGNED-PAYLOAD` instead of the body's hash.
        unsigned_payload: bool,
    }

    impl Default for Sign<'_> {
        fn default() -> Self {
            Sign {
                method: "POST",
                target: "/",
                headers: &[],
                body: b"",
                key: KEY,
                secret: SECRET,
                name: "events",
                time: t0(),
                settings: SigningSettings::default(),
                unsigned_payload: false,
            }
        }
    }

    /// Signs with the `aws-sigv4` crate (what the Rust SDK signs with), with the SDK's
    /// default settings unless told otherwise, and returns the request as received.
    fn sign_sdk(s: Sign<'_>) -> Req {
        let identity: Identity = aws_credential_types::Credentials::new(s.key, s.secret, None, None, "test").into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-1")
            .name(s.name)
            .time(s.time)
            .settings(s.settings)
            .build()
            .unwrap()
            .into();
        let url = format!("http://{HOST}{}", s.target);
        let mut all: Vec<(&str, &str)> = vec![("host", HOST)];
        all.extend_from_slice(s.headers);
        let payload = if s.unsigned_payload {
            SignableBody::UnsignedPayload
        } else {
            SignableBody::Bytes(s.body)
        };
        let signable = SignableRequest::new(s.method, url.as_str(), all.iter().copied(), payload).unwrap();
        let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();
        let mut builder = http::Request::builder().method(s.method).uri(url.as_str());
        for (k, v) in &all {
            builder = builder.header(*k, *v);
        }
        let mut request = builder.body(s.body.to_vec()).unwrap();
        instructions.apply_to_request_http1x(&mut request);
        let (parts, body) = request.into_parts();
        Req {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().map(str::to_string),
            headers: parts.headers,
            body,
        }
    }

    const EVENTS_BODY: &[u8] = br#"{"Entries":[{"Source":"chat","DetailType":"message.sent","Detail":"{\"text\":\"h\u00e9\"}"}]}"#;
    const EVENTS_HEADERS: &[(&str, &str)] = &[
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "AWSEvents.PutEvents"),
        ("x-amz-user-agent", "aws-sdk-rust/1.0  os/linux"),
    ];

    fn put_events() -> Req {
        sign_sdk(Sign {
            headers: EVENTS_HEADERS,
            body: EVENTS_BODY,
            ..Sign::default()
        })
    }

    fn post_to_connection() -> Req {
        sign_sdk(Sign {
            target: "/@connections/AbC%3D?trace=a%2Fb&x=1+2&empty",
            headers: &[("content-type", "application/octet-stream")],
            body: b"{\"type\":\"message\"}",
            name: "execute-api",
            ..Sign::default()
        })
    }

    fn assert_answer(err: &SigV4Error, service: Service, status: u16, code: &str, message_starts: &str) {
        assert_eq!(err.code(), code, "{err:?}");
        let (got_status, headers, body) = err.response_parts(service);
        assert_eq!(got_status, status);
        assert!(headers.contains(&("x-amzn-errortype", code.to_string())), "{headers:?}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with(message_starts),
            "{message:?} should start with {message_starts:?}"
        );
        match service {
            Service::Events => {
                assert_eq!(body["__type"], code);
                assert!(headers.contains(&("content-type", "application/x-amz-json-1.1".to_string())));
            }
            Service::ExecuteApi => {
                assert!(body.get("__type").is_none());
                assert!(headers.contains(&("content-type", "application/json".to_string())));
            }
        }
    }

    #[test]
    fn canonical_uri_double_encodes_like_the_signers() {
        // What aws-sdk-go-v2#889 logged for PostToConnection: '@' is encoded, '%' again.
        assert_eq!(
            canonical_uri("/production/@connections/e_d2EewNLPECIGw%3D"),
            "/production/%40connections/e_d2EewNLPECIGw%253D"
        );
        assert_eq!(canonical_uri("/@connections/AbC%3D"), "/%40connections/AbC%253D");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/a/./b/../c//d/"), "/a/c/d/");
        assert_eq!(canonical_uri("/~a-b_c.d"), "/~a-b_c.d");
    }

    #[test]
    fn aws_sigv4_signed_requests_verify() {
        let creds = creds();
        put_events().verify(&creds, Service::Events, t0()).unwrap();
        post_to_connection().verify(&creds, Service::ExecuteApi, t0()).unwrap();
        // The other management calls, without a body, a stage in the path, odd characters.
        for (method, target) in [
            ("GET", "/@connections/AbC%3D"),
            ("DELETE", "/@connections/AbC%3D"),
            ("POST", "/prod/@connections/x%2By%2Fz%20w"),
            ("GET", "/@connections/%E2%9C%93?b=2&a=3&a=1&c=%7E%21"),
        ] {
            let req = sign_sdk(Sign {
                method,
                target,
                name: "execute-api",
                ..Sign::default()
            });
            req.verify(&creds, Service::ExecuteApi, t0())
                .unwrap_or_else(|e| panic!("{method} {target}: {e}"));
        }
        // Within the clock skew on either side.
        put_events()
            .verify(&creds, Service::Events, t0() + Duration::from_secs(14 * 60))
            .unwrap();
        put_events()
            .verify(&creds, Service::Events, t0() - Duration::from_secs(14 * 60))
            .unwrap();
        post_to_connection()
            .verify(&creds, Service::ExecuteApi, t0() + Duration::from_secs(4 * 60))
            .unwrap();
        // With the x-amz-content-sha256 header signed (as S3 clients do).
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let req = sign_sdk(Sign {
            headers: EVENTS_HEADERS,
            body: EVENTS_BODY,
            settings,
            ..Sign::default()
        });
        assert!(req.headers.contains_key("x-amz-content-sha256"));
        req.verify(&creds, Service::Events, t0()).unwrap();
    }

    #[test]
    fn tampered_requests_get_aws_answers() {
        let creds = creds();
        let mismatch = "The request signature we calculated does not match the signature you provided.";
        for (service, original) in [(Service::Events, put_events()), (Service::ExecuteApi, post_to_connection())] {
            let status = if service == Service::Events { 400 } else { 403 };
            let check = |req: &Req, code: &str, starts: &str| {
                let err = req.verify(&creds, service, t0()).expect_err(starts);
                assert_answer(&err, service, status, code, starts);
                err
            };

            let mut req = original.clone();
            req.body.push(b' ');
            let err = check(&req, "InvalidSignatureException", mismatch);
            let SigV4Error::Mismatch {
                canonical_request,
                string_to_sign,
            } = &err
            else {
                panic!("{err:?}")
            };
            assert!(string_to_sign.starts_with("AWS4-HMAC-SHA256\n20240501T120000Z\n20240501/eu-west-1/"));
            assert!(canonical_request.starts_with(&format!("POST\n{}\n", canonical_uri(&original.path))));
            assert!(err
                .to_string()
                .contains("\n\nThe Canonical String for this request should have been\n'POST\n"));

            let mut req = original.clone();
            req.set("content-type", "text/plain");
            check(&req, "InvalidSignatureException", mismatch);

            let mut req = original.clone();
            req.path = if service == Service::Events {
                "/x".into()
            } else {
                "/@connections/AbD%3D".into()
            };
            check(&req, "InvalidSignatureException", mismatch);

            let mut req = original.clone();
            req.query = Some("tampered=1".into());
            check(&req, "InvalidSignatureException", mismatch);

            let wrong_secret = Credentials {
                secret_access_key: format!("{SECRET}x"),
                ..creds.clone()
            };
            let err = original.verify(&wrong_secret, service, t0()).unwrap_err();
            assert_answer(&err, service, status, "InvalidSignatureException", mismatch);

            let other_key = Credentials {
                access_key_id: "AKIDSOMEONEELSE00001".into(),
                ..creds.clone()
            };
            let err = original.verify(&other_key, service, t0()).unwrap_err();
            assert_eq!(err, SigV4Error::UnknownKey);
            assert_answer(
                &err,
                service,
                status,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            );

            // 16 minutes old: over both services' skew.
            let late = t0() + Duration::from_secs(16 * 60);
            let err = original.verify(&creds, service, late).unwrap_err();
            let minutes = service.clock_skew_minutes();
            let earliest = fmt_date(to_utc(late) - TimeDelta::minutes(minutes));
            let expected =
                format!("Signature expired: 20240501T120000Z is now earlier than {earliest} (20240501T121600Z - {minutes} min.)");
            assert_eq!(err.to_string(), expected);
            assert_answer(&err, service, status, "InvalidSignatureException", &expected);

            let early = t0() - Duration::from_secs(16 * 60);
            let err = original.verify(&creds, service, early).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("Signature not yet current: 20240501T120000Z is still later than "),
                "{err}"
            );
            assert_answer(&err, service, status, "InvalidSignatureException", "Signature not yet current");

            // Signed for the other service.
            let other = if service == Service::Events {
                Service::ExecuteApi
            } else {
                Service::Events
            };
            let err = original.verify(&creds, other, t0()).unwrap_err();
            let expected = format!("Credential should be scoped to correct service: '{}'. ", other.signing_name());
            assert_eq!(err, SigV4Error::Scope(expected.clone()));
            assert_answer(
                &err,
                other,
                if other == Service::Events { 400 } else { 403 },
                "InvalidSignatureException",
                &expected,
            );

            // The date header moved by a second: the scope still matches, the signature does not.
            let mut req = original.clone();
            req.set("x-amz-date", "20240501T120001Z");
            check(&req, "InvalidSignatureException", mismatch);
            // ... moved to another day: the scope says so.
            let mut req = original.clone();
            req.set("x-amz-date", "20240502T000000Z");
            let err = req
                .verify(&creds, service, UNIX_EPOCH + Duration::from_secs(1_714_608_000))
                .unwrap_err();
            assert!(
                err.to_string().starts_with("Date in Credential scope does not match YYYYMMDD"),
                "{err}"
            );

            // A session token along with the configured key.
            let mut req = original.clone();
            req.set("x-amz-security-token", "FwoGZXIvYXdzEBYaD");
            check(
                &req,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            );
        }
        // In Events a 14-minute-old request is fine, in execute-api 6 minutes is too old.
        let err = post_to_connection()
            .verify(&creds, Service::ExecuteApi, t0() + Duration::from_secs(6 * 60))
            .unwrap_err();
        assert!(
            matches!(err, SigV4Error::Expired { ref window, .. } if window == "5 min"),
            "{err:?}"
        );
    }

    #[test]
    fn content_sha256_must_be_the_bodys() {
        let creds = creds();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let mut req = sign_sdk(Sign {
            headers: EVENTS_HEADERS,
            body: EVENTS_BODY,
            settings,
            ..Sign::default()
        });
        // The header is signed, so the signature holds; the body does not match it.
        req.body = b"{\"Entries\":[]}".to_vec();
        let err = req.verify(&creds, Service::Events, t0()).unwrap_err();
        assert_answer(&err, Service::Events, 400, "InvalidSignatureException", MSG_CONTENT_SHA256);
        // UNSIGNED-PAYLOAD is not taken either (the signature itself is good).
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let req = sign_sdk(Sign {
            body: b"x",
            settings,
            unsigned_payload: true,
            ..Sign::default()
        });
        assert_eq!(req.headers["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
        assert_eq!(
            req.verify(&creds, Service::Events, t0()),
            Err(SigV4Error::Invalid(MSG_CONTENT_SHA256.into()))
        );
    }

    #[test]
    fn presigned_query_form() {
        let creds = creds();
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(300));
        let req = sign_sdk(Sign {
            method: "GET",
            target: "/@connections/AbC%3D?a=1",
            name: "execute-api",
            settings,
            ..Sign::default()
        });
        assert!(!req.headers.contains_key("authorization"));
        assert!(req.query.as_deref().unwrap().contains("X-Amz-Signature="), "{:?}", req.query);
        req.verify(&creds, Service::ExecuteApi, t0() + Duration::from_secs(299)).unwrap();
        let err = req
            .verify(&creds, Service::ExecuteApi, t0() + Duration::from_secs(301))
            .unwrap_err();
        assert!(err.to_string().ends_with("(20240501T120501Z - 300 sec.)"), "{err}");
        assert_eq!(err.code(), "InvalidSignatureException");

        let mut tampered = req.clone();
        tampered.query = Some(req.query.clone().unwrap().replace("a=1", "a=2"));
        assert!(matches!(
            tampered.verify(&creds, Service::ExecuteApi, t0()),
            Err(SigV4Error::Mismatch { .. })
        ));

        let mut both = req.clone();
        both.set("authorization", "AWS4-HMAC-SHA256 Credential=x");
        assert_eq!(
            both.verify(&creds, Service::ExecuteApi, t0()),
            Err(SigV4Error::Invalid(MSG_FOUND_BOTH.into()))
        );

        let mut incomplete = req.clone();
        incomplete.query = Some("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20240501T120000Z".into());
        let err = incomplete.verify(&creds, Service::ExecuteApi, t0()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include \
             'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. Re-examine the query-string \
             parameters."
        );
        assert_answer(
            &err,
            Service::ExecuteApi,
            403,
            "IncompleteSignatureException",
            "AWS query-string parameters",
        );
    }

    #[test]
    fn unsigned_and_malformed_requests() {
        let creds = creds();
        let good = put_events();
        let check = |mutate: &dyn Fn(&mut Req), code: &str, message: &str| {
            let mut req = good.clone();
            mutate(&mut req);
            for service in [Service::Events, Service::ExecuteApi] {
                let err = req.verify(&creds, service, t0()).unwrap_err();
                assert_eq!(err.code(), code, "{err:?}");
                assert_eq!(err.to_string(), message);
                assert_answer(&err, service, if service == Service::Events { 400 } else { 403 }, code, message);
            }
        };
        check(
            &|r| drop(r.headers.remove("authorization")),
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        );
        check(
            &|r| r.set("authorization", "   "),
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        );
        check(
            &|r| r.set("authorization", "Bearer eyJhbGciOi.x.y"),
            "IncompleteSignatureException",
            "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. \
             Authorization header requires 'SignedHeaders' parameter. Authorization=Bearer eyJhbGciOi.x.y",
        );
        check(
            &|r| {
                r.set("authorization", "AWS4-HMAC-SHA256 Credential=a/b");
                r.headers.remove("x-amz-date");
            },
            "IncompleteSignatureException",
            "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
             Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
             Authorization=AWS4-HMAC-SHA256 Credential=a/b",
        );
        check(
            &|r| {
                r.set(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential= AKID/20240501/eu-west-1/events/aws4_request, SignedHeaders=host, Signature=00",
                )
            },
            "IncompleteSignatureException",
            "'AKID/20240501/eu-west-1/events/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: \
             'AWS4-HMAC-SHA256 Credential= AKID/20240501/eu-west-1/events/aws4_request, SignedHeaders=host, Signature=00'.",
        );
        check(
            &|r| r.set("x-amz-date", "2024-05-01T12:00:00Z"),
            "IncompleteSignatureException",
            "Date must be in ISO-8601 'basic format'. Got '2024-05-01T12:00:00Z'. See http://en.wikipedia.org/wiki/ISO_8601",
        );
        check(
            &|r| {
                r.set(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=a/b/c/d, SignedHeaders=x-amz-date, Signature=00",
                )
            },
            "InvalidSignatureException",
            MSG_HOST_NOT_SIGNED,
        );
        check(
            &|r| {
                r.set(
                    "authorization",
                    "AWS4-HMAC-SHA512 Credential=a/b/c/d, SignedHeaders=host, Signature=00",
                )
            },
            "IncompleteSignatureException",
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now). ",
        );
        check(
            &|r| {
                r.set(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=a/b/c/d/, SignedHeaders=host, Signature=00",
                )
            },
            "IncompleteSignatureException",
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'a/b/c/d/'",
        );
        // Invalid UTF-8 and a huge header: answers, not panics.
        check(
            &|r| {
                r.headers.insert(
                    "authorization",
                    http::HeaderValue::from_bytes(b"AWS4-HMAC-SHA256 Credential=\xff\xfe").unwrap(),
                );
            },
            "IncompleteSignatureException",
            "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
             Authorization=AWS4-HMAC-SHA256 Credential=\u{fffd}\u{fffd}",
        );
        let mut req = good.clone();
        req.headers
            .insert("x-amz-date", http::HeaderValue::from_bytes(b"2024\xff0501T120000Z").unwrap());
        assert_eq!(
            req.verify(&creds, Service::Events, t0()).unwrap_err().code(),
            "IncompleteSignatureException"
        );
        let mut req = good.clone();
        let huge = format!(
            "AWS4-HMAC-SHA256 Credential={}, SignedHeaders=host, Signature=00",
            "A".repeat(1 << 20)
        );
        req.set("authorization", &huge);
        assert_eq!(
            req.verify(&creds, Service::Events, t0()).unwrap_err().code(),
            "IncompleteSignatureException"
        );
        // A signed header that is not valid UTF-8 is signed as its bytes.
        let mut req = good.clone();
        req.headers
            .insert("x-amz-user-agent", http::HeaderValue::from_bytes(b"agent \xe9").unwrap());
        assert!(matches!(
            req.verify(&creds, Service::Events, t0()),
            Err(SigV4Error::Mismatch { .. })
        ));
    }

    #[test]
    fn a_date_header_stands_in_for_x_amz_date() {
        // Sign by hand with the Date header (no SDK does this any more), to the spec.
        let creds = creds();
        let date = "Wed, 01 May 2024 12:00:00 GMT";
        let mut headers = HeaderMap::new();
        headers.insert("host", HOST.parse().unwrap());
        headers.insert("date", date.parse().unwrap());
        let creq = format!(
            "GET\n/%40connections/a\n\ndate:{date}\nhost:{HOST}\n\ndate;host\n{}",
            hex(&Sha256::digest(b""))
        );
        let sts = format!(
            "AWS4-HMAC-SHA256\n20240501T120000Z\n20240501/us-east-1/execute-api/aws4_request\n{}",
            hex(&Sha256::digest(creq.as_bytes()))
        );
        let mut k = hmac(format!("AWS4{SECRET}").as_bytes(), b"20240501");
        for part in ["us-east-1", "execute-api", "aws4_request"] {
            k = hmac(&k, part.as_bytes());
        }
        let signature = hex(&hmac(&k, sts.as_bytes()));
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={KEY}/20240501/us-east-1/execute-api/aws4_request, SignedHeaders=date;host, Signature={signature}"
        );
        headers.insert("authorization", auth.parse().unwrap());
        verify("GET", "/@connections/a", None, &headers, b"", &creds, Service::ExecuteApi, t0()).unwrap();
    }

    #[test]
    fn never_panics_on_garbage() {
        // A small deterministic fuzz over the parts a client controls.
        let creds = creds();
        let pieces = [
            "",
            " ",
            "=",
            ",",
            "/",
            "%",
            "%zz",
            "%E2%9C",
            "+",
            "..",
            "//",
            "AWS4-HMAC-SHA256",
            "AWS4-",
            "Credential=",
            "Signature=",
            "SignedHeaders=",
            "host",
            ";",
            "aws4_request",
            "20240501T120000Z",
            "99999999T999999Z",
            "\u{e9}",
            "a/b/c/d/e",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let mut pick = |n: usize| (0..n).map(|_| pieces[(next() % pieces.len() as u64) as usize]).collect::<String>();
            let mut headers = HeaderMap::new();
            for (name, text) in [
                ("authorization", pick(6)),
                ("x-amz-date", pick(1)),
                ("host", pick(1)),
                ("date", pick(2)),
            ] {
                if let Ok(v) = http::HeaderValue::from_str(&text) {
                    headers.insert(name, v);
                }
            }
            let path = pick(3);
            let query = pick(4);
            let result = std::panic::catch_unwind(|| {
                verify(
                    "POST",
                    &path,
                    Some(&query),
                    &headers,
                    query.as_bytes(),
                    &creds,
                    Service::Events,
                    t0(),
                )
            });
            let err = result.unwrap_or_else(|_| panic!("panicked on path {path:?} query {query:?} headers {headers:?}"));
            assert!(err.is_err());
        }
    }

    // ---------- the real clients, against a verifying server ----------

    /// Serves `verify` at `/` (Events) and `/@connections/...` (execute-api), answering
    /// successes as the services do.
    async fn verifying_server(creds: Credentials) -> (String, tokio::task::JoinHandle<()>) {
        use axum::response::IntoResponse;
        let creds = std::sync::Arc::new(creds);
        let app = axum::Router::new().fallback(
            move |method: http::Method, uri: http::Uri, headers: HeaderMap, body: bytes::Bytes| {
                let creds = creds.clone();
                async move {
                    let service = if uri.path().contains("/@connections/") {
                        Service::ExecuteApi
                    } else {
                        Service::Events
                    };
                    match verify(
                        method.as_str(),
                        uri.path(),
                        uri.query(),
                        &headers,
                        &body,
                        &creds,
                        service,
                        SystemTime::now(),
                    ) {
                        Ok(()) if service == Service::Events => (
                            [("content-type", "application/x-amz-json-1.1")],
                            r#"{"FailedEntryCount":0,"Entries":[{"EventId":"e-1"}]}"#,
                        )
                            .into_response(),
                        Ok(()) => http::StatusCode::OK.into_response(),
                        Err(e) => {
                            let (status, headers, body) = e.response_parts(service);
                            let mut response = (http::StatusCode::from_u16(status).unwrap(), body).into_response();
                            for (k, v) in headers {
                                response.headers_mut().insert(http::HeaderName::from_static(k), v.parse().unwrap());
                            }
                            response
                        }
                    }
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (url, task)
    }

    #[tokio::test]
    async fn rust_sdk_clients_work_against_a_verifying_server() {
        use aws_sdk_eventbridge::error::ProvideErrorMetadata;
        let (url, server) = verifying_server(creds()).await;
        let events = |key: &str, secret: &str| {
            let conf = aws_sdk_eventbridge::Config::builder()
                .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
                .region(aws_sdk_eventbridge::config::Region::new("eu-west-1"))
                .credentials_provider(aws_sdk_eventbridge::config::Credentials::new(key, secret, None, None, "test"))
                .endpoint_url(&url)
                .retry_config(aws_sdk_eventbridge::config::retry::RetryConfig::disabled())
                .build();
            aws_sdk_eventbridge::Client::from_conf(conf)
        };
        let management = |key: &str, secret: &str| {
            let conf = aws_sdk_apigatewaymanagement::Config::builder()
                .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
                .region(aws_sdk_apigatewaymanagement::config::Region::new("eu-west-1"))
                .credentials_provider(aws_sdk_apigatewaymanagement::config::Credentials::new(
                    key, secret, None, None, "test",
                ))
                .endpoint_url(&url)
                .retry_config(aws_sdk_apigatewaymanagement::config::retry::RetryConfig::disabled())
                .build();
            aws_sdk_apigatewaymanagement::Client::from_conf(conf)
        };
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source("chat")
            .detail_type("message.sent")
            .detail(r#"{"text":"h\u00e9 + /"}"#)
            .build();
        let put = |client: aws_sdk_eventbridge::Client| {
            let entry = entry.clone();
            async move { client.put_events().entries(entry).send().await }
        };
        let post = |client: aws_sdk_apigatewaymanagement::Client| async move {
            client
                .post_to_connection()
                .connection_id("AbC=")
                .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(b"hello".to_vec()))
                .send()
                .await
        };

        let out = put(events(KEY, SECRET)).await.unwrap();
        assert_eq!(out.failed_entry_count(), 0);
        post(management(KEY, SECRET)).await.unwrap();
        management(KEY, SECRET)
            .delete_connection()
            .connection_id("a/b c")
            .send()
            .await
            .unwrap();

        let e = put(events(KEY, "wrong")).await.unwrap_err();
        assert_eq!(e.code(), Some("InvalidSignatureException"), "{e:?}");
        assert_eq!(e.raw_response().unwrap().status().as_u16(), 400);
        let e = post(management(KEY, "wrong")).await.unwrap_err();
        assert_eq!(ProvideErrorMetadata::code(&e), Some("InvalidSignatureException"), "{e:?}");
        assert_eq!(e.raw_response().unwrap().status().as_u16(), 403);
        let e = put(events("AKIDOTHER", SECRET)).await.unwrap_err();
        assert_eq!(e.code(), Some("UnrecognizedClientException"));
        assert_eq!(e.message(), Some("The security token included in the request is invalid."));
        let e = post(management("AKIDOTHER", SECRET)).await.unwrap_err();
        assert_eq!(ProvideErrorMetadata::code(&e), Some("UnrecognizedClientException"));
        server.abort();
    }

    /// A Python that has botocore: the tools venv `infra/setup.sh` makes (where
    /// `REALTIME_TOOLS_DIR` says, else `.tools/`), else `python3` on the PATH.
    fn botocore_python() -> Option<std::path::PathBuf> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let tools = std::env::var_os("REALTIME_TOOLS_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| root.join(".tools"));
        [tools.join("venv/bin/python3"), std::path::PathBuf::from("python3")]
            .into_iter()
            .find(|py| {
                std::process::Command::new(py)
                    .args(["-c", "import botocore"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
    }

    const BOTOCORE_SCRIPT: &str = r#"
import json, sys
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError
url, key, secret = sys.argv[1:4]
session = botocore.session.get_session()
config = Config(retries={"total_max_attempts": 1})
out = {}
def run(name, call):
    try:
        call()
        out[name] = "ok"
    except ClientError as e:
        out[name] = "%s %d %s" % (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"].get("Message", ""))
for label, k, s in (("good", key, secret), ("badsecret", key, secret + "x"), ("badkey", "AKIDOTHER", secret)):
    client = lambda name: session.create_client(name, region_name="eu-west-1", endpoint_url=url,
        aws_access_key_id=k, aws_secret_access_key=s, config=config)
    events = client("events")
    run(label + " events", lambda: events.put_events(Entries=[{"Source": "chat", "DetailType": "message.sent", "Detail": json.dumps({"text": "h\u00e9 + /"})}]))
    apigw = client("apigatewaymanagementapi")
    run(label + " post", lambda: apigw.post_to_connection(ConnectionId="AbC=", Data=b"hello"))
    run(label + " delete", lambda: apigw.delete_connection(ConnectionId="a/b c"))
print(json.dumps(out, sort_keys=True))
"#;

    /// botocore (the AWS CLI's signer) as a second, independent client.
    #[tokio::test]
    async fn botocore_clients_work_against_a_verifying_server() {
        let Some(python) = botocore_python() else {
            println!("skipping botocore_clients_work_against_a_verifying_server: no python3 with botocore (run infra/setup.sh)");
            return;
        };
        let (url, server) = verifying_server(creds()).await;
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(python)
                .args(["-c", BOTOCORE_SCRIPT, &url, KEY, SECRET])
                .env("NO_PROXY", "127.0.0.1,localhost")
                .env("no_proxy", "127.0.0.1,localhost")
                .env("AWS_CONFIG_FILE", "/dev/null")
                .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        server.abort();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let results: std::collections::BTreeMap<String, String> = serde_json::from_slice(&output.stdout).unwrap();
        let got = |k: &str| results.get(k).map(String::as_str).unwrap_or_default();
        for call in ["events", "post", "delete"] {
            assert_eq!(got(&format!("good {call}")), "ok", "{results:#?}");
        }
        assert!(
            got("badsecret events").starts_with("InvalidSignatureException 400 The request signature we calculated"),
            "{results:#?}"
        );
        assert!(
            got("badsecret post").starts_with("InvalidSignatureException 403 The request signature we calculated"),
            "{results:#?}"
        );
        assert_eq!(
            got("badkey events"),
            "UnrecognizedClientException 400 The security token included in the request is invalid."
        );
        assert_eq!(
            got("badkey delete"),
            "UnrecognizedClientException 403 The security token included in the request is invalid."
        );
    }
}
