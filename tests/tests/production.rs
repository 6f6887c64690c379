//! The embedded default, safe to run for real: the development stack stays on loopback,
//! `--production` shuts its open doors (dev routes, unsigned management API and PutEvents,
//! any WebSocket origin), and every resource has a bound (socket queues, request read
//! times, connections, replays). Clients are the ones people use: the AWS SDK for Rust,
//! the AWS CLI, raw HTTP.

use realtime_domain::auth::{self, Claims};
use realtime_domain::ports::{ConnectionPusher, PushError};
use realtime_local::sigv4::Credentials;
use realtime_local::stack::{Options, Production, SocketLimits};
use realtime_tests::client::{Http, TokenIn, WsClient};
use realtime_tests::procs::tools_dir;
use realtime_tests::{start_stack_with, TEST_SECRET};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const KEY: &str = "AKIDREALTIMETEST";
const SECRET: &str = "realtime-test-secret-access-key-0123";

fn production() -> Options {
    Options {
        production: Some(Production {
            credentials: Credentials {
                access_key_id: KEY.into(),
                secret_access_key: SECRET.into(),
            },
            allowed_origins: vec!["https://app.example".into()],
        }),
        ..Default::default()
    }
}

fn token(sub: &str, exp_in_secs: i64) -> String {
    let claims = Claims {
        sub: sub.into(),
        roles: vec![],
        name: None,
        exp: chrono::Utc::now().timestamp() + exp_in_secs,
    };
    auth::mint(TEST_SECRET, &claims)
}

/// One raw HTTP/1.1 exchange (`Connection: close`): the status line and headers, the body.
async fn raw(addr: SocketAddr, request: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("an answer")
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_string(), body.to_string())
}

fn eventbridge(url: &str, key: &str, secret: &str) -> aws_sdk_eventbridge::Client {
    let conf = aws_sdk_eventbridge::Config::builder()
        .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
        .region(aws_sdk_eventbridge::config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_eventbridge::config::Credentials::new(key, secret, None, None, "test"))
        .endpoint_url(url)
        .retry_config(aws_sdk_eventbridge::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_eventbridge::Client::from_conf(conf)
}

fn management(url: &str, key: &str, secret: &str) -> aws_sdk_apigatewaymanagement::Client {
    use aws_sdk_apigatewaymanagement::config;
    let conf = config::Config::builder()
        .behavior_version(config::BehaviorVersion::latest())
        .region(config::Region::new("eu-west-1"))
        .credentials_provider(config::Credentials::new(key, secret, None, None, "test"))
        .endpoint_url(url)
        .retry_config(config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(conf)
}

#[tokio::test]
async fn the_development_stack_refuses_a_network_address_and_production_wants_its_secret() {
    let dev = Options {
        data_dir: std::env::temp_dir().join(format!("realtime-test-{}", ulid::Ulid::new())),
        jwt_secret: Some(TEST_SECRET.into()),
        ..Default::default()
    };
    let err = realtime_local::start("0.0.0.0:0".parse().unwrap(), &dev)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("--production"), "{err}");
    // Production takes only JWT_SECRET, of at least 32 bytes, never a generated file.
    let mut prod = production();
    prod.data_dir = dev.data_dir.clone();
    let err = realtime_local::start("127.0.0.1:0".parse().unwrap(), &prod)
        .await
        .err()
        .expect("no secret");
    assert!(err.to_string().contains("JWT_SECRET"), "{err}");
    prod.jwt_secret = Some("short".into());
    assert!(realtime_local::start("127.0.0.1:0".parse().unwrap(), &prod).await.is_err());
    // With its secret it starts (on loopback here: test servers stay on 127.0.0.1; the
    // refusal above is the only check of the address, and production skips it).
    prod.jwt_secret = Some(TEST_SECRET.into());
    let running = realtime_local::start("127.0.0.1:0".parse().unwrap(), &prod).await.unwrap();
    running.stop().await;
    let _ = std::fs::remove_dir_all(&dev.data_dir);
}

#[tokio::test]
async fn the_generated_jwt_secret_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("realtime-test-{}", ulid::Ulid::new()));
    let opts = Options {
        data_dir: dir.clone(),
        ..Default::default()
    };
    let running = realtime_local::start("127.0.0.1:0".parse().unwrap(), &opts).await.unwrap();
    running.stop().await;
    let mode = std::fs::metadata(dir.join("jwt-secret")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the data dir it creates is its owner's");
    // An older, world-readable file is tightened on the next start.
    std::fs::set_permissions(dir.join("jwt-secret"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let running = realtime_local::start("127.0.0.1:0".parse().unwrap(), &opts).await.unwrap();
    running.stop().await;
    let mode = std::fs::metadata(dir.join("jwt-secret")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_shuts_the_dev_routes_and_takes_only_signed_aws_calls() {
    let stack = start_stack_with(production()).await.unwrap();
    let url = stack.http_url();
    let http = Http::new(&url);
    let (status, _) = http
        .post("/api/dev/token", None, &json!({"sub": "mallory", "roles": ["admin"]}))
        .await
        .unwrap();
    assert_eq!(status, 404, "no dev tokens in production");
    let (status, _) = http.post("/api/dev/drop", None, &json!({"userId": "alice"})).await.unwrap();
    assert_eq!(status, 404);

    // PutEvents: signed with the configured credentials it goes through; otherwise AWS's answers.
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .source("partner.test")
        .detail_type("chat.message.stored")
        .detail(r#"{"chatId":"C1","id":"forged"}"#)
        .event_bus_name("realtime-events")
        .build();
    let ok = eventbridge(&url, KEY, SECRET)
        .put_events()
        .entries(entry.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.failed_entry_count(), 0);
    let code = |e: &dyn aws_sdk_eventbridge::error::ProvideErrorMetadata| e.code().unwrap_or_default().to_string();
    let bad_secret = eventbridge(&url, KEY, "wrong")
        .put_events()
        .entries(entry.clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad_secret), "InvalidSignatureException", "{bad_secret:?}");
    let bad_key = eventbridge(&url, "AKIDOTHER", SECRET)
        .put_events()
        .entries(entry)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&bad_key), "UnrecognizedClientException", "{bad_key:?}");
    let body = r#"{"Entries":[{"Source":"x","DetailType":"chat.message.stored","Detail":"{}"}]}"#;
    let (head, answer) = raw(
        stack.addr,
        &format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nX-Amz-Target: AWSEvents.PutEvents\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            stack.addr,
            body.len()
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert_eq!(
        serde_json::from_str::<Value>(&answer).unwrap()["__type"],
        "MissingAuthenticationTokenException"
    );

    // The management API: the same, as API Gateway answers (403).
    let alice = token("alice", 3600);
    let _ws = WsClient::connect(&stack.ws_url(), Some(&alice), TokenIn::Subprotocol)
        .await
        .unwrap();
    let id = stack.stack.hub.ids().pop().unwrap();
    let info = management(&url, KEY, SECRET)
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    assert!(info.connected_at().is_some());
    let err = management(&url, KEY, "wrong")
        .post_to_connection()
        .connection_id(&id)
        .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(b"{}".to_vec()))
        .send()
        .await
        .unwrap_err();
    let meta = aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata::code(&err);
    assert_eq!(meta, Some("InvalidSignatureException"), "{err:?}");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403));
    for req in [
        format!("DELETE /@connections/{id} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        format!("POST /@connections/{id} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"),
        format!("GET /@connections/{id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {alice}\r\nConnection: close\r\n\r\n"),
    ] {
        let (head, _) = raw(stack.addr, &req).await;
        assert!(head.starts_with("HTTP/1.1 403"), "{req}: {head}");
    }
    assert_eq!(stack.stack.hub.ids(), vec![id.clone()], "the socket is still there");
    // The signed delete closes it.
    management(&url, KEY, SECRET)
        .delete_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    assert!(stack.stack.hub.ids().is_empty());

    // And the AWS CLI, with the credentials in its environment.
    let cli = tools_dir().join("venv/bin/aws");
    assert!(cli.exists(), "{} is missing: run bash infra/setup.sh", cli.display());
    let url = url.clone();
    let run = move |secret: &str| {
        let out = Command::new(&cli)
            .args(["events", "put-events", "--entries"])
            .arg(r#"[{"Source":"partner.test","DetailType":"chat.typing.user","Detail":"{}","EventBusName":"realtime-events"}]"#)
            .args(["--endpoint-url", &url, "--region", "eu-west-1", "--output", "json"])
            .env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_MAX_ATTEMPTS", "1")
            .output()
            .expect("the aws CLI runs");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, err) = tokio::task::spawn_blocking({
        let run = run.clone();
        move || run(SECRET)
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    let (ok, err) = tokio::task::spawn_blocking(move || run("wrong")).await.unwrap();
    assert!(!ok && err.contains("InvalidSignatureException"), "{err}");
    stack.stop().await;
}

/// A WebSocket upgrade with these headers: its HTTP status (101 when it opened).
async fn upgrade_status(url: &str, token: &str, origin: Option<&str>) -> u16 {
    let mut req = url.into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert("sec-websocket-protocol", format!("realtime.v1, bearer.{token}").parse().unwrap());
    if let Some(o) = origin {
        h.insert("origin", o.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((_, resp)) => resp.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_origins_tokens_and_connection_caps() {
    let mut opts = production();
    opts.socket_limits = Some(SocketLimits { total: 5, per_user: 3 });
    let stack = start_stack_with(opts).await.unwrap();
    let ws = stack.ws_url();
    let alice = token("alice", 3600);
    assert_eq!(upgrade_status(&ws, &alice, Some("https://evil.example")).await, 403);
    assert_eq!(upgrade_status(&ws, &alice, Some("https://app.example")).await, 101);
    assert_eq!(upgrade_status(&ws, &alice, None).await, 101, "not a browser: no Origin to check");
    // A token whose nbf is a day ahead is refused at the door.
    let claims = json!({"sub": "alice", "exp": chrono::Utc::now().timestamp() + 7200, "nbf": chrono::Utc::now().timestamp() + 86_400});
    let early = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let input = format!(
            "{}.{}",
            b64.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
            b64.encode(claims.to_string())
        );
        use hmac::Mac;
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(TEST_SECRET.as_bytes()).unwrap();
        m.update(input.as_bytes());
        format!("{input}.{}", b64.encode(m.finalize().into_bytes()))
    };
    // The authorizer denies it, as it denies an expired or forged one: 403.
    assert_eq!(upgrade_status(&ws, &early, None).await, 403);

    // Three sockets per user, five in all.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(WsClient::connect(&ws, Some(&alice), TokenIn::Subprotocol).await.unwrap());
    }
    assert_eq!(upgrade_status(&ws, &alice, None).await, 429, "a fourth for alice");
    let bob = token("bob", 3600);
    held.push(WsClient::connect(&ws, Some(&bob), TokenIn::Subprotocol).await.unwrap());
    held.push(WsClient::connect(&ws, Some(&bob), TokenIn::Subprotocol).await.unwrap());
    assert_eq!(upgrade_status(&ws, &token("carol", 3600), None).await, 429, "a sixth in all");
    // A closed socket frees its place.
    held.pop().unwrap().close().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if upgrade_status(&ws, &token("carol", 3600), None).await == 101 {
            break;
        }
        assert!(Instant::now() < deadline, "the place was never freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for c in held {
        c.close().await;
    }

    // An expired token ends the socket's rights: no new subscribe.
    let short = token("dora", 2);
    let mut c = WsClient::connect(&ws, Some(&short), TokenIn::Subprotocol).await.unwrap();
    let ack = c.subscribe("s1", "user:dora", &[]).await.unwrap();
    assert_eq!(ack["type"], "subscribed", "{ack}");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let refused = c.subscribe("s2", "user:dora", &[]).await.unwrap();
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "unauthorized", "{refused}");
    // Nor any other action that acts for the user.
    for (id, frame) in [
        ("t1", json!({"action": "typing", "id": "t1", "chatId": "C1", "isTyping": true})),
        ("p1", json!({"action": "passenger:subscribe", "id": "p1", "tripIds": ["T1"]})),
        (
            "r1",
            json!({"action": "resume", "id": "r1", "channel": "user:dora", "epoch": "E", "after": 0}),
        ),
    ] {
        c.send(&frame).await.unwrap();
        let answer = c.next_where(Duration::from_secs(5), |f| f["id"] == id).await.unwrap();
        assert_eq!(answer["code"], "unauthorized", "{id}: {answer}");
    }
    c.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_events_takes_at_most_256_kb_as_eventbridge_counts_it() {
    let stack = start_stack_with(Options::default()).await.unwrap();
    let client = eventbridge(&stack.http_url(), "local", "local");
    let entry = |kb: usize| {
        let detail = json!({"pad": "x".repeat(kb * 1024 - 12)}).to_string();
        aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source("partner.test")
            .detail_type("t")
            .detail(detail)
            .build()
    };
    let code = |e: &dyn aws_sdk_eventbridge::error::ProvideErrorMetadata| e.code().unwrap_or_default().to_string();
    let err = client.put_events().entries(entry(300)).send().await.unwrap_err();
    assert_eq!(code(&err), "ValidationException", "one entry of 300 KB: {err:?}");
    let err = client
        .put_events()
        .entries(entry(150))
        .entries(entry(150))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException", "two of 150 KB: {err:?}");
    let ok = client.put_events().entries(entry(120)).entries(entry(120)).send().await.unwrap();
    assert_eq!(ok.failed_entry_count(), 0, "two of 120 KB fit");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_follows_the_template() {
    let stack = start_stack_with(Options::default()).await.unwrap();
    let (head, _) = raw(
        stack.addr,
        "OPTIONS /api/chat HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization\r\nConnection: close\r\n\r\n",
    )
    .await;
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 204"), "{head}");
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    assert!(
        head.contains("access-control-allow-methods: get,post,put,patch,delete,options"),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-headers: authorization,content-type,idempotency-key"),
        "{head}"
    );
    assert!(head.contains("access-control-max-age: 600"), "{head}");
    // An answer to a request with an Origin carries the header; the authorizer still runs.
    let (head, _) = raw(
        stack.addr,
        "GET /api/chat/C1/state HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    // The SSE function URL has its own setting.
    let (head, _) = raw(
        stack.addr,
        "OPTIONS /api/realtime/trip-status/T1 HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\nAccess-Control-Request-Method: GET\r\nConnection: close\r\n\r\n",
    )
    .await;
    let head = head.to_ascii_lowercase();
    assert!(head.contains("access-control-allow-headers: authorization,last-event-id"), "{head}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_time_out() {
    let opts = Options {
        header_read_timeout: Some(Duration::from_millis(500)),
        body_read_timeout: Some(Duration::from_millis(500)),
        ..Default::default()
    };
    let stack = start_stack_with(opts).await.unwrap();
    // Half the headers, then nothing: the connection is closed.
    let mut s = tokio::net::TcpStream::connect(stack.addr).await.unwrap();
    s.write_all(b"GET /api/websocket/health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("closed by the server");
    assert!(
        n.is_err() || String::from_utf8_lossy(&buf).contains("408") || buf.is_empty(),
        "{buf:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    // The headers, then half the body: 408.
    let mut s = tokio::net::TcpStream::connect(stack.addr).await.unwrap();
    s.write_all(b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"title\":")
        .await
        .unwrap();
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    // A body over the stack's 1 MB: 413, as JSON.
    let big = "x".repeat(2 * 1024 * 1024);
    let (head, body) = raw(
        stack.addr,
        &format!(
            "POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{big}",
            big.len()
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(body.contains("payload_too_large"), "{body}");
    stack.stop().await;
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_that_never_read_are_cut_at_their_byte_budget() {
    const SOCKETS: usize = 100;
    let stack = start_stack_with(Options {
        socket_limits: Some(SocketLimits {
            total: 1000,
            per_user: 1000,
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let t = token("slow", 3600);
    // Connected, and never read from again.
    let mut idle = Vec::new();
    for _ in 0..SOCKETS {
        let mut req = stack.ws_url().into_client_request().unwrap();
        req.headers_mut()
            .insert("sec-websocket-protocol", format!("realtime.v1, bearer.{t}").parse().unwrap());
        idle.push(tokio_tungstenite::connect_async(req).await.unwrap().0);
    }
    let ids = stack.stack.hub.ids();
    assert_eq!(ids.len(), SOCKETS);
    let before = rss_bytes();
    // 100 KB frames to every socket until each is cut (or 10 MB went to it).
    let frame = format!("{{\"type\":\"event\",\"pad\":\"{}\"}}", "x".repeat(100 * 1024));
    let mut accepted = vec![0usize; SOCKETS];
    let mut cut = 0;
    let mut peak = before;
    for (i, id) in ids.iter().enumerate() {
        for _ in 0..100 {
            match stack.stack.hub.post(id, frame.as_bytes()).await {
                Ok(()) => accepted[i] += frame.len(),
                Err(PushError::Gone) => {
                    cut += 1;
                    break;
                }
                Err(e) => panic!("{e}"),
            }
            // The writer moves what the kernel takes off the queue.
            tokio::task::yield_now().await;
        }
        peak = peak.max(rss_bytes());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_bytes();
    let grew = after.saturating_sub(before);
    let mean = accepted.iter().sum::<usize>() / SOCKETS;
    println!(
        "{SOCKETS} sockets that never read: {cut} cut; {} KB taken per socket on average before the cut; RSS {} MB, peak {} MB, after {} MB (+{} MB)",
        mean / 1024,
        before >> 20,
        peak >> 20,
        after >> 20,
        grew >> 20
    );
    assert!(
        peak.saturating_sub(before) < 400 << 20,
        "RSS peaked {} MB above the start",
        (peak - before) >> 20
    );
    assert_eq!(cut, SOCKETS, "every socket was cut at its budget");
    assert!(grew < 400 << 20, "RSS grew {} MB", grew >> 20);
    // The cut sockets are gone from the hub, and their clients see the connection end.
    assert!(stack.stack.hub.is_empty());
    drop(idle);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_cost_rate_limit_tokens_by_what_they_send() {
    let stack = start_stack_with(Options::default()).await.unwrap();
    let http = Http::new(stack.http_url());
    let alice = http.dev_token("alice", &[]).await.unwrap();
    let (status, chat) = http.post("/api/chat", Some(&alice), &json!({"title": "replay"})).await.unwrap();
    assert_eq!(status, 201, "{chat}");
    let chat_id = chat["chatId"].as_str().unwrap().to_string();
    // 200 events in the log.
    for i in 0..100 {
        let body = json!({"content": format!("m{i}"), "clientMessageId": format!("m{i}")});
        let (status, _) = http
            .post(&format!("/api/chat/{chat_id}/messages"), Some(&alice), &body)
            .await
            .unwrap();
        assert!(status == 201 || status == 200);
    }
    let mut c = WsClient::connect(&stack.ws_url(), Some(&alice), TokenIn::Subprotocol)
        .await
        .unwrap();
    let ack = c.subscribe("s", &format!("chat:{chat_id}"), &[]).await.unwrap();
    let epoch = ack["epoch"].as_str().unwrap().to_string();
    // Resume from 0 again and again: each replays the whole log.
    let mut answered = 0;
    let mut limited = 0;
    for i in 0..20 {
        let id = format!("r{i}");
        c.send(&json!({"action": "resume", "id": id, "channel": format!("chat:{chat_id}"), "epoch": epoch, "after": 0}))
            .await
            .unwrap();
        let answer = c.next_where(Duration::from_secs(10), |f| f["id"] == id.as_str()).await.unwrap();
        match answer["type"].as_str() {
            Some("resumed") => answered += 1,
            Some("error") if answer["code"] == "rate_limited" => limited += 1,
            _ => panic!("{answer}"),
        }
    }
    let replayed = stack.stack.deps.table.as_ref();
    let head = realtime_domain::log::head(replayed, &format!("chat:{chat_id}").parse().unwrap())
        .await
        .unwrap()
        .seq;
    // Without the charge all 20 pass (the burst is 20, and 10 a second come back); with it
    // (one token per 50 events replayed) the bucket runs dry after a handful.
    println!("20 resumes of the whole log ({head} events) at once: {answered} answered, {limited} rate limited");
    assert!(head >= 100, "{head}");
    assert!(answered <= 10, "{answered} replays answered");
    assert!(limited >= 10);
    c.close().await;
    stack.stop().await;
}
