//! The local stack is as strict as AWS at its edges: API Gateway's WebSocket limits (a
//! frame over 32 KB or a message over 128 KB closes with 1009, 10 minutes idle and 2 hours
//! in all close with 1001, both configurable here), the management API under its stage
//! path with the client's `User-Agent`, and EventBridge's bus scoping (the template's rules
//! are on its bus; other buses take the event and route it nowhere).

use futures::{SinkExt, StreamExt};
use realtime_local::stack::Options;
use realtime_tests::client::{Http, TokenIn, WsClient};
use realtime_tests::start_stack_with;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(url: &str, token: &str, user_agent: &str) -> Socket {
    let mut req = url.into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert("sec-websocket-protocol", format!("realtime.v1, bearer.{token}").parse().unwrap());
    h.insert("user-agent", user_agent.parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

/// Reads until the server's close frame: its code, and when it came.
async fn close_code(ws: &mut Socket, within: Duration) -> (Option<u16>, Instant) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return (frame.map(|f| u16::from(f.code)), Instant::now()),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) => return (None, Instant::now()),
            Err(_) => panic!("no close within {within:?}"),
        }
    }
}

/// The next text frame, as JSON.
async fn next_json(ws: &mut Socket) -> serde_json::Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_and_messages_over_api_gateways_limits_close_with_1009() {
    let stack = start_stack_with(Options::default()).await.unwrap();
    let token = Http::new(stack.http_url()).dev_token("big", &[]).await.unwrap();
    // One 40 KB frame.
    let mut ws = open(&stack.ws_url(), &token, "t").await;
    ws.send(Message::text(format!(
        "{{\"action\":\"ping\",\"pad\":\"{}\"}}",
        "x".repeat(40 * 1024)
    )))
    .await
    .unwrap();
    assert_eq!(close_code(&mut ws, Duration::from_secs(5)).await.0, Some(1009));

    // 150 KB in five frames of 30 KB: the message is over 128 KB.
    let mut ws = open(&stack.ws_url(), &token, "t").await;
    let chunk = vec![b'x'; 30 * 1024];
    for i in 0..5 {
        let op = if i == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        let mut f = Frame::message(chunk.clone(), op, i == 4);
        f.header_mut().is_final = i == 4;
        ws.send(Message::Frame(f)).await.unwrap();
    }
    assert_eq!(close_code(&mut ws, Duration::from_secs(5)).await.0, Some(1009));

    // 90 KB in three frames passes API Gateway; the function refuses it (over its 32 KB) with
    // an error frame, and the socket stays open.
    let mut ws = open(&stack.ws_url(), &token, "t").await;
    let body = format!("{{\"action\":\"ping\",\"id\":\"p1\",\"pad\":\"{}\"}}", "x".repeat(90 * 1024 - 40));
    let bytes = body.into_bytes();
    let parts: Vec<&[u8]> = bytes.chunks(bytes.len().div_ceil(3)).collect();
    for (i, part) in parts.iter().enumerate() {
        let op = if i == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        ws.send(Message::Frame(Frame::message(part.to_vec(), op, i + 1 == parts.len())))
            .await
            .unwrap();
    }
    let answer = next_json(&mut ws).await;
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["code"], "payload_too_large", "{answer}");
    ws.send(Message::text(r#"{"action":"ping","id":"p2"}"#)).await.unwrap();
    let pong = next_json(&mut ws).await;
    assert_eq!(pong["type"], "pong", "the socket is still open: {pong}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_timeout_and_the_connection_cap_close_with_1001() {
    let stack = start_stack_with(Options {
        idle_timeout: Some(Duration::from_millis(800)),
        max_connection_age: Some(Duration::from_millis(2500)),
        ..Default::default()
    })
    .await
    .unwrap();
    let token = Http::new(stack.http_url()).dev_token("idle", &[]).await.unwrap();
    // Silent: closed after the idle timeout.
    let started = Instant::now();
    let mut quiet = open(&stack.ws_url(), &token, "t").await;
    let (code, at) = close_code(&mut quiet, Duration::from_secs(5)).await;
    assert_eq!(code, Some(1001));
    let idle = at - started;
    assert!(idle >= Duration::from_millis(700) && idle < Duration::from_millis(2000), "{idle:?}");

    // Talking every 300 ms keeps it open past the idle timeout, until the cap.
    let started = Instant::now();
    let mut busy = open(&stack.ws_url(), &token, "t").await;
    let code = loop {
        busy.send(Message::text(r#"{"action":"ping"}"#)).await.ok();
        match tokio::time::timeout(Duration::from_millis(300), busy.next()).await {
            Ok(Some(Ok(Message::Close(f)))) => break f.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) | Err(_) => {}
            Ok(_) => break None,
        }
        assert!(started.elapsed() < Duration::from_secs(6), "never capped");
    };
    assert_eq!(code, Some(1001));
    let age = started.elapsed();
    assert!(age >= Duration::from_millis(2300) && age < Duration::from_millis(4000), "{age:?}");
    // Both went through `$disconnect`: their connection items are gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !stack.stack.hub.is_empty() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stack.stop().await;
}

fn management(endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
    use aws_sdk_apigatewaymanagement::config;
    let conf = config::Config::builder()
        .behavior_version(config::BehaviorVersion::latest())
        .region(config::Region::new("us-east-1"))
        .credentials_provider(config::Credentials::new("local", "local", None, None, "test"))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(conf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_api_answers_under_its_stage_with_the_user_agent() {
    let stack = start_stack_with(Options::default()).await.unwrap();
    let token = Http::new(stack.http_url()).dev_token("ua", &[]).await.unwrap();
    let mut ws = open(&stack.ws_url(), &token, "realtime-test/1.0 (edges)").await;
    let id = stack.stack.hub.ids().pop().unwrap();
    // The template's ManagementEndpoint form: https://{api}.execute-api.{region}.amazonaws.com/{stage}
    for endpoint in [format!("{}/prod", stack.http_url()), stack.http_url()] {
        let client = management(&endpoint);
        let info = client.get_connection().connection_id(&id).send().await.unwrap();
        let identity = info.identity().expect("identity");
        assert_eq!(identity.user_agent(), Some("realtime-test/1.0 (edges)"), "{endpoint}");
        assert_eq!(identity.source_ip(), Some("127.0.0.1"));
        client
            .post_to_connection()
            .connection_id(&id)
            .data(aws_sdk_apigatewaymanagement::primitives::Blob::new(br#"{"hello":1}"#.to_vec()))
            .send()
            .await
            .unwrap();
        let got = loop {
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap() {
                Some(Ok(Message::Text(t))) => break t.to_string(),
                Some(Ok(_)) => continue,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(got, r#"{"hello":1}"#);
    }
    let gone = management(&format!("{}/prod", stack.http_url()))
        .get_connection()
        .connection_id("nope")
        .send()
        .await
        .unwrap_err();
    assert!(gone.as_service_error().is_some_and(|e| e.is_gone_exception()), "{gone:?}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_events_for_the_templates_bus_reach_its_rules() {
    let stack = start_stack_with(Options::default()).await.unwrap();
    let http = Http::new(stack.http_url());
    let token = http.dev_token("ops", &["admin"]).await.unwrap();
    let mut c = WsClient::connect(&stack.ws_url(), Some(&token), TokenIn::Subprotocol)
        .await
        .unwrap();
    assert_eq!(c.subscribe("s", "trip:T7", &["trip.**"]).await.unwrap()["type"], "subscribed");
    let conf = aws_sdk_eventbridge::Config::builder()
        .behavior_version(aws_sdk_eventbridge::config::BehaviorVersion::latest())
        .region(aws_sdk_eventbridge::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_eventbridge::config::Credentials::new("local", "local", None, None, "test"))
        .endpoint_url(stack.http_url())
        .build();
    let eb = aws_sdk_eventbridge::Client::from_conf(conf);
    let put = |bus: Option<&str>, status: &str| {
        let envelope = json!({"id": ulid::Ulid::new().to_string(), "type": "trip.status.updated", "version": 1,
            "occurredAt": chrono::Utc::now(), "correlationId": "edges", "priority": "normal", "source": "realtime.trips",
            "tripId": "T7", "data": {"tripId": "T7", "previousStatus": "PUBLISHED", "newStatus": status}});
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source("realtime.trips")
            .detail_type("trip.status.updated")
            .detail(envelope.to_string())
            .set_event_bus_name(bus.map(str::to_string))
            .build();
        let eb = eb.clone();
        async move {
            let out = eb.put_events().entries(entry).send().await.unwrap();
            assert_eq!(out.failed_entry_count(), 0);
            assert!(out.entries()[0].event_id().is_some(), "accepted, as AWS accepts it");
        }
    };
    // An event whose frame API Gateway would refuse (over 128 KB) is neither pushed nor
    // sequenced: nobody waits for a seq that cannot come.
    let big = json!({"id": ulid::Ulid::new().to_string(), "type": "trip.status.updated", "version": 1,
        "occurredAt": chrono::Utc::now(), "correlationId": "edges", "priority": "normal", "source": "realtime.trips",
        "tripId": "T7", "data": {"tripId": "T7", "previousStatus": "PUBLISHED", "newStatus": "IN_PROGRESS", "notes": "x".repeat(200 * 1024)}});
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .source("realtime.trips")
        .detail_type("trip.status.updated")
        .detail(big.to_string())
        .event_bus_name("realtime-events")
        .build();
    assert_eq!(eb.put_events().entries(entry).send().await.unwrap().failed_entry_count(), 0);
    put(None, "IN_PROGRESS").await; // the default bus
    put(Some("default"), "IN_PROGRESS").await;
    put(Some("no-such-bus"), "IN_PROGRESS").await;
    put(Some("realtime-events"), "DEPARTED").await;
    put(Some("arn:aws:events:us-east-1:000000000000:event-bus/realtime-events"), "ARRIVED").await;
    let mut statuses = Vec::new();
    while let Ok(f) = c.next_where(Duration::from_millis(1500), |f| f["type"] == "event").await {
        statuses.push(f["event"]["data"]["newStatus"].as_str().unwrap().to_string());
    }
    // EventBridge gives no order between two PutEvents: compare as sets.
    statuses.sort();
    assert_eq!(statuses, vec!["ARRIVED", "DEPARTED"], "only the template bus's events are routed");
    let head = realtime_domain::log::head(stack.stack.deps.table.as_ref(), &"trip:T7".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(head.seq, 2, "the too-large event took no seq");
    c.close().await;
    stack.stop().await;
}
