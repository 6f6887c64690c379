//! Bad input at the edge, against the local stack: malformed HTTP bodies, paths and
//! headers get a 4xx with `{"error":{"code","message"}}` (never a 5xx, never a hang);
//! malformed WebSocket frames get an `error` frame with a client error code (a frame
//! over the 128 KB message limit closes the connection); a flood of frames is rate
//! limited. The server answers a ping afterwards. Failures name their cases.

use futures::{SinkExt, StreamExt};
use realtime_domain::auth::{self, Claims};
use realtime_domain::frames::{request_id, MAX_FRAME_BYTES};
use realtime_tests::client::{Http, TokenIn, WsClient};
use realtime_tests::start_stack;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(5);

/// The Authorization header a case sends.
#[derive(Clone)]
enum Auth {
    /// A valid token of the chat's organizer.
    Valid,
    None,
    Raw(Vec<u8>),
}

struct HttpCase {
    name: String,
    method: reqwest::Method,
    path: String,
    auth: Auth,
    body: Vec<u8>,
    /// The statuses the contract allows, when it fixes them; else any 4xx.
    status: &'static [u16],
    /// The server refuses this body unread and closes the connection: its answer may be
    /// lost to a TCP reset while the client still writes (not to a timeout).
    may_reset: bool,
}

fn case(name: impl Into<String>, path: &str, body: impl Into<Vec<u8>>) -> HttpCase {
    HttpCase {
        name: name.into(),
        method: reqwest::Method::POST,
        path: path.to_string(),
        auth: Auth::Valid,
        body: body.into(),
        status: &[],
        may_reset: false,
    }
}

impl HttpCase {
    fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }
    fn status(mut self, status: &'static [u16]) -> Self {
        self.status = status;
        self
    }
    fn may_reset(mut self) -> Self {
        self.may_reset = true;
        self
    }
    fn method(mut self, method: reqwest::Method) -> Self {
        self.method = method;
        self
    }
}

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Checks one answer; the problem, if any.
fn judge(c: &HttpCase, status: u16, body: &[u8]) -> Option<String> {
    let shape = serde_json::from_slice::<Value>(body)
        .ok()
        .filter(|v| v["error"]["code"].as_str().is_some_and(|s| !s.is_empty()) && v["error"]["message"].as_str().is_some());
    let wrong_status = match c.status {
        [] => !(400..500).contains(&status),
        allowed => !allowed.contains(&status),
    };
    (wrong_status || shape.is_none()).then(|| {
        let shown: String = String::from_utf8_lossy(body).chars().take(160).collect();
        let want = if c.status.is_empty() {
            "4xx".to_string()
        } else {
            format!("{:?}", c.status)
        };
        format!("{}: want {want} + error JSON, got {status} {shown}", c.name)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http_requests_get_a_4xx_json_error() {
    let stack = start_stack().await.unwrap();
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &["organizer"]).await.unwrap();
    let (status, chat) = http.post("/api/chat", Some(&alice), &json!({"title": "bad input"})).await.unwrap();
    assert_eq!(status, 201, "{chat}");
    let id = chat["chatId"].as_str().unwrap().to_string();
    let secret = stack.stack.deps.config.jwt_secret.expose().to_string();
    let token = |exp: i64| {
        let claims = Claims {
            sub: "alice".into(),
            roles: vec![],
            name: None,
            exp,
        };
        auth::mint(&secret, &claims)
    };
    let now = chrono::Utc::now().timestamp();

    let create = "/api/chat";
    let join = format!("/api/chat/{id}/participants");
    let send = format!("/api/chat/{id}/messages");
    let dev = "/api/dev/token";
    let routes = [
        ("create", create),
        ("join", join.as_str()),
        ("send", send.as_str()),
        ("dev token", dev),
    ];
    let field = |route: &str| match route {
        "create" => "title",
        "join" => "displayName",
        "send" => "content",
        _ => "sub",
    };

    let mut cases = Vec::new();
    // The same malformed bodies on every route that takes one.
    for (route, path) in routes {
        let f = field(route);
        // Valid JSON but for its size (the dev token's `name` has no limit of its own).
        let big_field = if route == "dev token" {
            r#""sub":"a","name""#
        } else {
            &format!(r#""{f}""#)
        };
        let big = format!(r#"{{{big_field}:"{}"}}"#, "x".repeat(130 * 1024));
        let generic: Vec<(&str, Vec<u8>)> = vec![
            ("empty body", vec![]),
            ("not JSON", b"hello".to_vec()),
            ("truncated JSON", b"{\"a\":".to_vec()),
            ("JSON array", b"[]".to_vec()),
            ("JSON number", b"42".to_vec()),
            ("JSON string", b"\"x\"".to_vec()),
            ("JSON null", b"null".to_vec()),
            ("missing fields", b"{}".to_vec()),
            ("raw NUL bytes", b"\0\0\0".to_vec()),
            ("NUL byte inside a string", format!("{{\"{f}\":\"a\0b\"}}").into_bytes()),
            ("invalid UTF-8", b"\xff\xfe\xfd".to_vec()),
            (
                "invalid UTF-8 in a string",
                [format!("{{\"{f}\":\"").as_bytes(), b"\xc0\xaf\xff", b"\"}"].concat(),
            ),
            ("lone surrogate escape", format!(r#"{{"{f}":"\ud800"}}"#).into_bytes()),
            ("10,000 nested arrays", nested(10_000).into_bytes()),
            (
                "10,000 nested arrays in a field",
                format!(r#"{{"{f}":{}}}"#, nested(10_000)).into_bytes(),
            ),
            ("duplicate field", format!(r#"{{"{f}":"a","{f}":"b"}}"#).into_bytes()),
            ("trailing garbage", format!(r#"{{"{f}":"a"}} x"#).into_bytes()),
            ("number out of range", format!(r#"{{"{f}":1e400}}"#).into_bytes()),
            ("field is a number", format!(r#"{{"{f}":5}}"#).into_bytes()),
            ("field is null", format!(r#"{{"{f}":null}}"#).into_bytes()),
            ("field is an object", format!(r#"{{"{f}":{{}}}}"#).into_bytes()),
            ("unknown field", format!(r#"{{"{f}":"a","isAdmin":true}}"#).into_bytes()),
        ];
        for (name, body) in generic {
            cases.push(case(format!("{route}: {name}"), path, body));
        }
        cases.push(case(format!("{route}: body over 128 KB"), path, big).status(&[413]));
        cases.push(
            case(format!("{route}: body of 3 MB"), path, vec![b' '; 3 << 20])
                .status(&[413])
                .may_reset(),
        );
    }

    // Route-specific fields and limits.
    let t201 = format!(r#"{{"title":"{}"}}"#, "t".repeat(201));
    let n81 = format!(r#"{{"displayName":"{}"}}"#, "n".repeat(81));
    let c4001 = format!(r#"{{"content":"{}"}}"#, "c".repeat(4001));
    let c100k = format!(r#"{{"content":"{}"}}"#, "c".repeat(100 * 1024));
    let cmid = |v: &str| format!(r#"{{"content":"hi","clientMessageId":{v}}}"#);
    let long_id = format!("\"{}\"", "m".repeat(65));
    cases.extend([
        case("create: title too long", create, t201),
        case("create: title blank", create, r#"{"title":"   "}"#),
        case("create: title an array", create, r#"{"title":["x"]}"#),
        case("create: settings a string", create, r#"{"title":"x","settings":"free"}"#),
        case(
            "create: unknown turn mode",
            create,
            r#"{"title":"x","settings":{"turnMode":"anarchy"}}"#,
        ),
        case(
            "create: extensions a number",
            create,
            r#"{"title":"x","settings":{"extensions":5}}"#,
        ),
        case("join: display name too long", &join, n81),
        case("join: display name a bool", &join, r#"{"displayName":true}"#),
        case("join: role smuggled in", &join, r#"{"displayName":"x","role":"organizer"}"#),
        case("send: content too long", &send, c4001),
        case("send: content of 100 KB", &send, c100k),
        case("send: content blank", &send, r#"{"content":"\n\t "}"#),
        case("send: sender smuggled in", &send, r#"{"content":"x","senderId":"bob"}"#),
        case("send: clientMessageId empty", &send, cmid("\"\"")),
        case("send: clientMessageId with a space", &send, cmid("\"a b\"")),
        case("send: clientMessageId 65 chars", &send, cmid(&long_id)),
        case("send: clientMessageId a path", &send, cmid("\"../x\"")),
        case("send: clientMessageId unicode", &send, cmid("\"é\"")),
        case("send: clientMessageId NUL", &send, cmid(r#""a\u0000b""#)),
        case("send: clientMessageId a number", &send, cmid("5")),
        case("dev token: invalid sub", dev, r#"{"sub":"a b"}"#),
        case("dev token: unknown role", dev, r#"{"sub":"a","roles":["root"]}"#),
        case("dev token: roles a string", dev, r#"{"sub":"a","roles":"admin"}"#),
        case("dev token: exp smuggled in", dev, r#"{"sub":"a","exp":99999999999}"#),
        case("wrong method", create, r#"{"title":"x"}"#).method(reqwest::Method::PUT),
        case("unknown route", "/api/nope", r#"{}"#),
    ]);

    // Invalid path ids, on both routes that take one.
    let bad_ids = [
        ("dot dot slash", "..%2Fx".to_string()),
        ("65 chars", "i".repeat(65)),
        ("5,000 chars", "i".repeat(5000)),
        ("unicode", "ch%C3%A4t".to_string()),
        ("NUL", "%00".to_string()),
        ("space", "a%20b".to_string()),
        ("hash", "a%23b".to_string()),
        ("dot", "a.b".to_string()),
    ];
    for (name, bad) in bad_ids {
        cases.push(case(
            format!("join: chat id {name}"),
            &format!("/api/chat/{bad}/participants"),
            r#"{"displayName":"x"}"#,
        ));
        cases.push(case(
            format!("send: chat id {name}"),
            &format!("/api/chat/{bad}/messages"),
            r#"{"content":"x"}"#,
        ));
    }
    cases.push(case(
        "send: path traversal",
        &format!("/api/chat/{id}/../../dev/x"),
        r#"{"content":"x"}"#,
    ));
    cases.push(case(
        "join: a chat that does not exist",
        "/api/chat/nope/participants",
        r#"{"displayName":"x"}"#,
    ));
    cases.push(case(
        "send: a chat that does not exist",
        "/api/chat/nope/messages",
        r#"{"content":"x"}"#,
    ));

    // Bad Authorization headers, on every authenticated route. No usable header is a 401
    // (API Gateway answers it itself); a refused token a 401 or, from the authorizer's
    // simple response, a 403.
    const MISSING: &[u16] = &[401];
    const REFUSED: &[u16] = &[401, 403];
    let bad_auth: Vec<(&str, Auth, &'static [u16])> = vec![
        ("no header", Auth::None, MISSING),
        ("non-ASCII bytes", Auth::Raw(b"Bearer \xff\xfe".to_vec()), MISSING),
        ("Bearer alone", Auth::Raw(b"Bearer".to_vec()), REFUSED),
        ("Bearer and a space", Auth::Raw(b"Bearer ".to_vec()), REFUSED),
        ("Basic", Auth::Raw(b"Basic YWxpY2U6cHc=".to_vec()), REFUSED),
        ("garbage", Auth::Raw(b"!!garbage!!".to_vec()), REFUSED),
        ("three dots", Auth::Raw(b"Bearer a.b.c".to_vec()), REFUSED),
        (
            "tampered token",
            Auth::Raw(format!("Bearer {}x", token(now + 3600)).into_bytes()),
            REFUSED,
        ),
        (
            "expired token",
            Auth::Raw(format!("Bearer {}", token(now - 1)).into_bytes()),
            REFUSED,
        ),
        (
            "two tokens",
            Auth::Raw(format!("Bearer {0} {0}", token(now + 3600)).into_bytes()),
            REFUSED,
        ),
        (
            "8 KB token",
            Auth::Raw(format!("Bearer {}", "A".repeat(8 * 1024)).into_bytes()),
            REFUSED,
        ),
    ];
    for (name, a, status) in bad_auth {
        for (route, path, body) in [
            ("create", create, r#"{"title":"x"}"#),
            ("join", join.as_str(), r#"{"displayName":"x"}"#),
            ("send", send.as_str(), r#"{"content":"x"}"#),
        ] {
            cases.push(case(format!("{route}: auth {name}"), path, body).auth(a.clone()).status(status));
        }
    }

    // No pooled connections: the server may close one after refusing a body unread.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut failures = Vec::new();
    for c in &cases {
        let mut req = client
            .request(c.method.clone(), format!("{}{}", stack.http_url(), c.path))
            .header("content-type", "application/json")
            .body(c.body.clone());
        match &c.auth {
            Auth::Valid => req = req.bearer_auth(&alice),
            Auth::None => {}
            Auth::Raw(v) => req = req.header(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap()),
        }
        let problem = match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(body) => judge(c, status, &body),
                    Err(e) => Some(format!("{}: body not read: {e}", c.name)),
                }
            }
            Err(e) if c.may_reset && !e.is_timeout() => None,
            Err(e) => Some(format!("{}: no answer: {e}", c.name)),
        };
        failures.extend(problem);
    }
    // Still alive, and still serving good requests.
    let (status, _) = http.post("/api/chat", Some(&alice), &json!({"title": "after"})).await.unwrap();
    failures.extend((status != 201).then(|| format!("a valid create after the cases: {status}")));
    assert!(
        failures.is_empty(),
        "{} of {} HTTP cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    stack.stop().await;
}

/// A WebSocket case: a text frame, or raw bytes sent as a binary frame.
enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

/// A raw socket, for what `WsClient` does not send (binary frames, > 128 KB).
async fn raw_socket(
    url: &str,
    token: &str,
) -> anyhow::Result<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>> {
    Ok(tokio_tungstenite::connect_async(format!("{url}?token={token}")).await?.0)
}

/// Sends one malformed frame on a fresh connection (each case gets a full rate-limit
/// bucket) and checks the answer: an `error` frame with a client error code, echoing
/// the frame's `id` when it has one.
async fn ws_case(url: &str, token: &str, name: &str, frame: Frame) -> Option<String> {
    let (answer, id) = match frame {
        Frame::Text(text) => {
            let mut c = match WsClient::connect(url, Some(token), TokenIn::Subprotocol).await {
                Ok(c) => c,
                Err(e) => return Some(format!("{name}: connect failed: {e}")),
            };
            if let Err(e) = c.send_raw(&text).await {
                return Some(format!("{name}: send failed: {e}"));
            }
            let answer = c.next(WAIT).await;
            c.close().await;
            let id = (text.len() <= MAX_FRAME_BYTES).then(|| request_id(&text)).flatten();
            (answer, id)
        }
        Frame::Binary(bytes) => {
            let mut ws = match raw_socket(url, token).await {
                Ok(ws) => ws,
                Err(e) => return Some(format!("{name}: connect failed: {e}")),
            };
            if let Err(e) = ws.send(Message::Binary(bytes.into())).await {
                return Some(format!("{name}: send failed: {e}"));
            }
            let answer = match tokio::time::timeout(WAIT, ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str(&t).ok(),
                _ => None,
            };
            let _ = ws.close(None).await;
            (answer, None)
        }
    };
    let Some(f) = answer else {
        return Some(format!("{name}: no answer within {WAIT:?}"));
    };
    let code = f["code"].as_str().unwrap_or_default();
    let ok = f["type"] == "error" && !code.is_empty() && !matches!(code, "internal" | "unavailable") && f["id"].as_str() == id.as_deref();
    (!ok).then(|| format!("{name}: want an error frame with a client code and id {id:?}, got {f}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_websocket_frames_get_an_error_frame() {
    let stack = start_stack().await.unwrap();
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &["organizer"]).await.unwrap();
    let url = stack.ws_url();

    let sub = |extra: Value| {
        let mut f = json!({"action": "subscribe", "id": "s1", "channel": "user:alice"});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            f[k] = v;
        }
        f.to_string()
    };
    let text = |s: &str| Frame::Text(s.to_string());
    let cases: Vec<(&str, Frame)> = vec![
        ("not JSON", text("not json")),
        ("empty frame", text("")),
        ("whitespace", text("   ")),
        ("truncated JSON", text(r#"{"action":"ping","id":"t1""#)),
        ("JSON array", text("[]")),
        ("JSON null", text("null")),
        ("JSON number", text("42")),
        ("JSON string", text(r#""ping""#)),
        ("missing action", text(r#"{"id":"m1"}"#)),
        ("empty object", text("{}")),
        ("action a number", text(r#"{"action":5,"id":"a1"}"#)),
        ("action null", text(r#"{"action":null,"id":"a2"}"#)),
        ("action an array", text(r#"{"action":["ping"],"id":"a3"}"#)),
        ("action an object", text(r#"{"action":{"ping":1},"id":"a4"}"#)),
        ("unknown action", text(r#"{"action":"dance","id":"a5"}"#)),
        ("empty action", text(r#"{"action":"","id":"a6"}"#)),
        ("action in capitals", text(r#"{"action":"PING","id":"a7"}"#)),
        (
            "action of 1000 chars",
            Frame::Text(json!({"action": "x".repeat(1000), "id": "a8"}).to_string()),
        ),
        ("action with a NUL", text(r#"{"action":"ping\u0000","id":"a9"}"#)),
        ("duplicate action", text(r#"{"action":"ping","action":"subscribe","id":"a10"}"#)),
        ("raw NUL bytes", text("\0\0\0")),
        ("ping with an unknown field", text(r#"{"action":"ping","id":"p1","x":1}"#)),
        ("ping id a number", text(r#"{"action":"ping","id":5}"#)),
        ("subscribe without channel", text(r#"{"action":"subscribe","id":"s1"}"#)),
        ("subscribe to chat:", Frame::Text(sub(json!({"channel": "chat:"})))),
        ("subscribe to chat:a b", Frame::Text(sub(json!({"channel": "chat:a b"})))),
        ("subscribe to nope:1", Frame::Text(sub(json!({"channel": "nope:1"})))),
        ("subscribe to a path", Frame::Text(sub(json!({"channel": "chat:../x"})))),
        ("subscribe to a NUL", Frame::Text(sub(json!({"channel": "chat:\u{0}"})))),
        (
            "subscribe to 1000 chars",
            Frame::Text(sub(json!({"channel": format!("chat:{}", "c".repeat(1000))}))),
        ),
        ("channel a number", Frame::Text(sub(json!({"channel": 5})))),
        ("channel null", Frame::Text(sub(json!({"channel": null})))),
        ("events a string", Frame::Text(sub(json!({"events": "chat.*"})))),
        ("events with a number", Frame::Text(sub(json!({"events": [5]})))),
        ("events in capitals", Frame::Text(sub(json!({"events": ["Chat.*"]})))),
        ("events with an empty segment", Frame::Text(sub(json!({"events": ["chat..x"]})))),
        ("events empty pattern", Frame::Text(sub(json!({"events": [""]})))),
        ("events of 200 chars", Frame::Text(sub(json!({"events": ["a".repeat(200)]})))),
        ("21 event patterns", Frame::Text(sub(json!({"events": vec!["chat.*"; 21]})))),
        ("filter a string", Frame::Text(sub(json!({"filter": "x"})))),
        ("filter an array", Frame::Text(sub(json!({"filter": [1]})))),
        ("filter not a list", Frame::Text(sub(json!({"filter": {"a": "not-a-list"}})))),
        (
            "filter bad numeric",
            Frame::Text(sub(json!({"filter": {"a": [{"numeric": ["<"]}]}}))),
        ),
        (
            "filter unknown operator",
            Frame::Text(sub(json!({"filter": {"a": [{"bogus": 1}]}}))),
        ),
        ("resume a string", Frame::Text(sub(json!({"resume": "x"})))),
        (
            "resume wrong types",
            Frame::Text(sub(json!({"resume": {"epoch": 5, "after": "x"}}))),
        ),
        ("resume negative", Frame::Text(sub(json!({"resume": {"epoch": "E", "after": -1}})))),
        ("subscribe with an unknown field", Frame::Text(sub(json!({"admin": true})))),
        ("unsubscribe without channel", text(r#"{"action":"unsubscribe","id":"u1"}"#)),
        (
            "unsubscribe a bad channel",
            text(r#"{"action":"unsubscribe","id":"u2","channel":"x:"}"#),
        ),
        ("resume without fields", text(r#"{"action":"resume","id":"r1"}"#)),
        (
            "resume wrong field types",
            text(r#"{"action":"resume","id":"r2","channel":"user:alice","epoch":1,"after":"a"}"#),
        ),
        (
            "resume after out of range",
            text(r#"{"action":"resume","id":"r3","channel":"user:alice","epoch":"E","after":1e30}"#),
        ),
        (
            "resume a bad channel",
            text(r#"{"action":"resume","id":"r4","channel":"chat:","epoch":"E","after":1}"#),
        ),
        ("10,000 nested arrays", Frame::Text(nested(10_000))),
        (
            "10,000 nested arrays in a filter",
            Frame::Text(format!(
                r#"{{"action":"subscribe","id":"n1","channel":"user:alice","filter":{}}}"#,
                nested(10_000)
            )),
        ),
        ("binary garbage", Frame::Binary(vec![0xff, 0xfe, 0x00, 0x80, 0xc0, 0xaf])),
        ("binary empty", Frame::Binary(vec![])),
    ];

    let mut failures = Vec::new();
    let count = cases.len();
    for (name, frame) in cases {
        failures.extend(ws_case(&url, &alice, name, frame).await);
    }

    // Over API Gateway's limits (a 33 KB frame, a 130 KB message): closed with 1009, promptly.
    for (name, kb) in [("a 33 KB frame", 33), ("a 130 KB message", 130)] {
        let mut ws = raw_socket(&url, &alice).await.expect("connect");
        let big = json!({"action": "ping", "id": "big", "pad": "p".repeat(kb * 1024)}).to_string();
        let _ = ws.send(Message::Text(big.into())).await;
        let closed = tokio::time::timeout(WAIT, async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
                    Some(Err(_)) | None => return None,
                    Some(Ok(Message::Text(t))) if t.contains("pong") => return Some(0),
                    Some(Ok(_)) => continue,
                }
            }
        })
        .await;
        failures.extend((closed != Ok(Some(1009))).then(|| format!("{name}: want a close with 1009, got {closed:?}")));
    }

    // The server is still there.
    let mut c = WsClient::connect(&url, Some(&alice), TokenIn::Subprotocol).await.unwrap();
    c.send(&json!({"action": "ping", "id": "alive"})).await.unwrap();
    let pong = c.next(WAIT).await;
    failures.extend((pong != Some(json!({"type": "pong", "id": "alive"}))).then(|| format!("ping after the cases: {pong:?}")));
    c.close().await;
    assert!(
        failures.is_empty(),
        "{} of {} WebSocket cases failed:\n{}",
        failures.len(),
        count + 2,
        failures.join("\n")
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_frames_is_rate_limited_and_the_connection_recovers() {
    let stack = start_stack().await.unwrap();
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &[]).await.unwrap();
    let mut c = WsClient::connect(&stack.ws_url(), Some(&alice), TokenIn::Subprotocol)
        .await
        .unwrap();
    let n = 3 * realtime_domain::ratelimit::BURST;
    for i in 0..n {
        c.send(&json!({"action": "ping", "id": format!("f{i}")})).await.unwrap();
    }
    let (mut pongs, mut limited) = (0, 0);
    for _ in 0..n {
        let f = c.next(WAIT).await.expect("every frame is answered");
        match (f["type"].as_str(), f["code"].as_str()) {
            (Some("pong"), _) => pongs += 1,
            (Some("error"), Some("rate_limited")) => limited += 1,
            _ => panic!("unexpected answer {f}"),
        }
    }
    assert!(pongs >= realtime_domain::ratelimit::BURST, "the burst passes: {pongs} pongs");
    assert!(limited >= 1, "the flood is limited: {pongs} pongs, {limited} refused");
    // The bucket refills: after a pause the connection works again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.send(&json!({"action": "ping", "id": "later"})).await.unwrap();
    assert_eq!(c.next(WAIT).await, Some(json!({"type": "pong", "id": "later"})));
    c.close().await;
    stack.stop().await;
}
