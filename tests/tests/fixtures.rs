//! The event fixtures under `tests/fixtures/` (the ones `cargo lambda invoke
//! --data-file` sends) parse into the functions' event types, and each function's
//! handler, wrapped exactly as in Lambda, does what it should with them.

use aws_lambda_events::encodings::Body;
use realtime_domain::keys;
use realtime_domain::ports::Item;
use realtime_edge::ws::WsResponse;
use realtime_embedded::hub::Outbound;
use realtime_embedded::testing::{embedded, FIXTURE_SECRET};
use realtime_local::registry::{handler, Handler};
use serde_json::Value;
use std::time::Duration;

const CONN: &str = "Fx3dZc1-IAMCJRg=";

fn fixture(name: &str) -> Value {
    let path = realtime_tests::procs::workspace_root().join("tests/fixtures").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

async fn ws(binary: &str, deps: &realtime_domain::Deps, name: &str) -> WsResponse {
    let Some(Handler::Ws(f)) = handler(binary) else {
        panic!("{binary} is not a ws function")
    };
    f(deps.clone(), serde_json::from_value(fixture(name)).unwrap()).await
}

async fn http(binary: &str, deps: &realtime_domain::Deps, name: &str) -> (i64, Value) {
    let Some(Handler::Http(f)) = handler(binary) else {
        panic!("{binary} is not an http function")
    };
    let r = f(deps.clone(), serde_json::from_value(fixture(name)).unwrap()).await;
    let body = match r.body {
        Some(Body::Text(t)) => serde_json::from_str(&t).unwrap(),
        _ => Value::Null,
    };
    (r.status_code, body)
}

async fn frame(rx: &mut realtime_embedded::hub::Outgoing) -> Value {
    match tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
        Ok(Some(Outbound::Text(t))) => serde_json::from_str(&t).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[tokio::test]
async fn websocket_fixtures_drive_the_connection_lifecycle() {
    let e = embedded(FIXTURE_SECRET);
    let mut rx = e.hub.register(CONN, None);
    let r = ws("ws-connect", &e.deps, "ws-connect.json").await;
    assert_eq!(r.status_code, 200);
    assert_eq!(
        r.headers.get("sec-websocket-protocol").and_then(|v| v.to_str().ok()),
        Some("realtime.v1")
    );
    assert!(e.deps.table.get(&keys::conn(CONN), keys::META).await.unwrap().is_some());

    assert_eq!(ws("ws-subscribe", &e.deps, "ws-subscribe.json").await.status_code, 200);
    let f = frame(&mut rx).await;
    assert_eq!(
        (f["type"].as_str(), f["channel"].as_str(), f["id"].as_str()),
        (Some("subscribed"), Some("user:alice"), Some("r1"))
    );
    ws("ws-ping", &e.deps, "ws-ping.json").await;
    assert_eq!(frame(&mut rx).await, serde_json::json!({"type": "pong", "id": "r4"}));
    ws("ws-unsubscribe", &e.deps, "ws-unsubscribe.json").await;
    assert_eq!(frame(&mut rx).await["type"], "unsubscribed");
    ws("ws-default", &e.deps, "ws-default.json").await;
    assert_eq!(frame(&mut rx).await["code"], "unknown_action");
    assert_eq!(ws("ws-disconnect", &e.deps, "ws-disconnect.json").await.status_code, 200);
    assert!(e.deps.table.get(&keys::conn(CONN), keys::META).await.unwrap().is_none());
}

#[tokio::test]
async fn http_fixtures_create_join_and_send() {
    let e = embedded(FIXTURE_SECRET);
    let (status, chat) = http("chat-create", &e.deps, "http-chat-create.json").await;
    assert_eq!((status, chat["title"].as_str()), (201, Some("Fixture chat")));
    // The join and send fixtures name chat C1: create it.
    e.deps
        .table
        .put(
            Item::new(keys::chat("C1"), keys::CHAT_META)
                .with("chatId", "C1")
                .with("title", "C1"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(http("chat-join", &e.deps, "http-chat-join.json").await.0, 200);
    let (status, msg) = http("chat-send-message", &e.deps, "http-chat-send-message.json").await;
    assert_eq!((status, msg["content"].as_str()), (201, Some("hello")));
    let (status, again) = http("chat-send-message", &e.deps, "http-chat-send-message.json").await;
    assert_eq!((status, &again["id"]), (200, &msg["id"]));
}

async fn authorize(deps: &realtime_domain::Deps, name: &str) -> Value {
    let Some(Handler::Authorizer(f)) = handler("authorizer") else {
        panic!("authorizer is not an authorizer function")
    };
    f(deps.clone(), fixture(name)).await.unwrap()
}

#[tokio::test]
async fn authorizer_fixtures_are_allowed_and_the_context_reaches_the_functions() {
    let e = embedded(FIXTURE_SECRET);
    let ws_answer = authorize(&e.deps, "authorizer-ws-request.json").await;
    let statement = &ws_answer["policyDocument"]["Statement"][0];
    assert_eq!(
        (statement["Effect"].as_str(), ws_answer["principalId"].as_str()),
        (Some("Allow"), Some("alice"))
    );
    let http_answer = authorize(&e.deps, "authorizer-http-request.json").await;
    assert_eq!(http_answer["isAuthorized"], true);
    assert_eq!(http_answer["context"], ws_answer["context"]);

    // `$connect` as API Gateway invokes it after the authorizer: the context, and the token
    // header still there but not needed (drop it to be sure it is not read).
    let mut connect = fixture("ws-connect.json");
    connect["headers"]["Sec-WebSocket-Protocol"] = "realtime.v1".into();
    let mut context = ws_answer["context"].clone();
    context["principalId"] = ws_answer["principalId"].clone();
    connect["requestContext"]["authorizer"] = context;
    let Some(Handler::Ws(f)) = handler("ws-connect") else { panic!() };
    let _rx = e.hub.register(CONN, None);
    assert_eq!(f(e.deps.clone(), serde_json::from_value(connect).unwrap()).await.status_code, 200);
    let conn = e.deps.table.get(&keys::conn(CONN), keys::META).await.unwrap().unwrap();
    assert_eq!((conn.str("userId"), conn.str("name")), (Some("alice"), Some("Alice")));

    // An HTTP API route: the context under `lambda`, no Authorization header.
    let mut create = fixture("http-chat-create.json");
    create["headers"].as_object_mut().unwrap().remove("authorization");
    create["requestContext"]["authorizer"] = serde_json::json!({"lambda": http_answer["context"]});
    let Some(Handler::Http(f)) = handler("chat-create") else { panic!() };
    let r = f(e.deps.clone(), serde_json::from_value(create).unwrap()).await;
    assert_eq!(r.status_code, 201);
}

#[tokio::test]
async fn the_eventbridge_fixture_is_fanned_out_to_a_subscriber() {
    let e = embedded(FIXTURE_SECRET);
    let mut rx = e.hub.register(CONN, None);
    ws("ws-connect", &e.deps, "ws-connect.json").await;
    e.deps
        .table
        .put(Item::new(keys::chat("C1"), keys::member("alice")).with("userId", "alice"), None)
        .await
        .unwrap();
    let conn = realtime_domain::connections::get(e.deps.table.as_ref(), CONN)
        .await
        .unwrap()
        .unwrap();
    let chan = realtime_domain::channels::Channel::Chat("C1".into());
    realtime_domain::connections::subscribe(e.deps.table.as_ref(), &conn, &chan, &[], None)
        .await
        .unwrap();
    let Some(Handler::Event(f)) = handler("fanout") else {
        panic!("fanout is not an event function")
    };
    f(e.deps.clone(), fixture("eventbridge-chat-message-stored.json")).await.unwrap();
    let got = frame(&mut rx).await;
    assert_eq!((got["channel"].as_str(), got["seq"].as_u64()), (Some("chat:C1"), Some(1)));
    assert_eq!(got["event"]["data"]["content"], "hello");
    // EventBridge delivers at least once: the same event again pushes nothing.
    f(e.deps.clone(), fixture("eventbridge-chat-message-stored.json")).await.unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(200), rx.recv()).await.is_err());
}

#[tokio::test]
async fn chat_domain_fixtures_drive_typing_state_assistant_analytics_settings_and_completion() {
    use realtime_domain::chat::turns::ASSISTANT_ID;
    let e = embedded(FIXTURE_SECRET);
    // Chat C1 of alice (the fixtures' user): free turns, the assistant and analytics on.
    let settings = serde_json::json!({"turnMode": "free", "assistantEnabled": true, "extensions": ["analytics"], "blocklist": []});
    let meta = Item::new(keys::chat("C1"), keys::CHAT_META)
        .with("chatId", "C1")
        .with("title", "Fixture chat")
        .with("createdBy", "alice")
        .with("settings", settings)
        .with("settingsVersion", 1)
        .with("extensionsSince", serde_json::json!({"analytics": "2020-01-01T00:00:00.000000Z"}))
        .with("memberCount", 1);
    let member = Item::new(keys::chat("C1"), keys::member("alice"))
        .with("userId", "alice")
        .with("displayName", "Alice")
        .with("role", "organizer")
        .with("joinedAt", "2026-11-24T04:00:00.000Z");
    e.deps.table.put(meta, None).await.unwrap();
    e.deps.table.put(member, None).await.unwrap();

    let (status, typing) = http("chat-typing", &e.deps, "http-chat-typing.json").await;
    assert_eq!((status, typing["isTyping"].as_bool()), (200, Some(true)), "{typing}");
    let (status, state) = http("chat-state", &e.deps, "http-chat-state.json").await;
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["typing"][0]["userId"], "alice");
    assert_eq!(state["participants"][1]["userId"], ASSISTANT_ID);

    // The analytics extension records the stored-message fixture; the CSV export shows it.
    let Some(Handler::Event(analytics)) = handler("ext-analytics") else {
        panic!("ext-analytics is not an event function")
    };
    analytics(e.deps.clone(), fixture("eventbridge-chat-message-stored.json"))
        .await
        .unwrap();
    let Some(Handler::Http(export)) = handler("chat-analytics") else {
        panic!("chat-analytics is not an http function")
    };
    let r = export(e.deps.clone(), serde_json::from_value(fixture("http-chat-analytics.json")).unwrap()).await;
    assert_eq!(r.status_code, 200);
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let Some(Body::Text(csv)) = r.body else { panic!("no CSV body") };
    assert!(csv.lines().nth(1).unwrap().starts_with("01JFIXTUREMSG0000000000001,"), "{csv}");

    // The assistant answers the request fixture; a redelivery stores nothing twice.
    let Some(Handler::Event(assistant)) = handler("chat-assistant") else {
        panic!("chat-assistant is not an event function")
    };
    assistant(e.deps.clone(), fixture("eventbridge-chat-ai-requested.json"))
        .await
        .unwrap();
    assistant(e.deps.clone(), fixture("eventbridge-chat-ai-requested.json"))
        .await
        .unwrap();
    let (status, history) = http("chat-history", &e.deps, "http-chat-history.json").await;
    assert_eq!(status, 200, "{history}");
    let senders: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["senderId"].as_str().unwrap())
        .collect();
    assert_eq!(senders, vec![ASSISTANT_ID]);

    let (status, st) = http("chat-settings", &e.deps, "http-chat-settings.json").await;
    assert_eq!(
        (status, st["settings"]["extensions"].clone()),
        (200, serde_json::json!(["analytics", "moderation"])),
        "{st}"
    );
    let (status, done) = http("chat-complete", &e.deps, "http-chat-complete.json").await;
    assert_eq!((status, done["ready"].as_bool()), (200, Some(true)), "{done}");

    // The WebSocket typing action: no answer on success, the indicator is set.
    let mut rx = e.hub.register(CONN, None);
    ws("ws-connect", &e.deps, "ws-connect.json").await;
    e.deps.table.delete(&keys::chat("C1"), &keys::typing("alice"), None).await.unwrap();
    assert_eq!(ws("ws-typing", &e.deps, "ws-typing.json").await.status_code, 200);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), rx.recv()).await.is_err(),
        "no error frame"
    );
    assert!(e.deps.table.get(&keys::chat("C1"), &keys::typing("alice")).await.unwrap().is_some());
}

/// The ride-sharing fixtures: trips, bookings (with an Idempotency-Key), both cancel paths,
/// a driver's acceptance and status update, the passenger and driver subscriptions, the
/// monitoring routes, and the trip-status stream as its function URL invokes it.
#[tokio::test]
async fn ride_sharing_fixtures_drive_their_functions() {
    use realtime_domain::auth::{Claims, Role};
    use realtime_domain::trips::{Place, Trip, TripStatus, TripType};

    let e = embedded(FIXTURE_SECRET);
    let (status, created) = http("trip-create", &e.deps, "http-trip-create.json").await;
    assert_eq!(
        (status, created["title"].as_str(), created["status"].as_str()),
        (201, Some("Fixture trip"), Some("PUBLISHED"))
    );

    // The other fixtures name trip T1 (a shared trip of alice's) and bookings B1, B2.
    let now = chrono::Utc::now();
    let place = |name: &str| Place {
        name: name.into(),
        lat: 43.2,
        lng: 76.9,
    };
    let t1 = Trip {
        trip_id: "T1".parse().unwrap(),
        title: "T1".into(),
        trip_type: TripType::Shared,
        status: TripStatus::Published,
        organizer_id: "alice".into(),
        driver_id: None,
        driver_name: None,
        origin: place("A"),
        destination: place("B"),
        departure_time: now + chrono::Duration::hours(2),
        total_seats: 4,
        available_seats: 4,
        price_per_seat: 1000,
        distance_km: 0.0,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let mut item = Item::new(keys::trip("T1"), keys::META);
    item.attrs = serde_json::to_value(&t1).unwrap().as_object().unwrap().clone();
    e.deps.table.put(item, None).await.unwrap();
    let (status, trip) = http("trip-get", &e.deps, "http-trip-get.json").await;
    assert_eq!((status, trip["tripId"].as_str()), (200, Some("T1")));

    let (status, booked) = http("booking-create", &e.deps, "http-booking-create.json").await;
    assert_eq!((status, booked["availableSeats"].as_u64()), (201, Some(2)), "{booked}");
    let (status, again) = http("booking-create", &e.deps, "http-booking-create.json").await;
    assert_eq!(
        (status, &again["bookingId"]),
        (201, &booked["bookingId"]),
        "the Idempotency-Key replays"
    );

    // pat's connection follows the trip.
    let mut rx = e.hub.register(CONN, None);
    let claims = |sub: &str, role: Role| Claims {
        sub: sub.into(),
        roles: vec![role],
        name: None,
        exp: i64::MAX,
    };
    realtime_domain::connections::open(&e.deps, CONN, &claims("pat", Role::Passenger))
        .await
        .unwrap();
    ws("ws-passenger-subscribe", &e.deps, "ws-passenger-subscribe.json").await;
    let f = frame(&mut rx).await;
    assert_eq!(
        (f["type"].as_str(), f["channel"].as_str(), f["id"].as_str()),
        (Some("subscribed"), Some("trip:T1"), Some("p1"))
    );

    // The cancel fixtures name B1 and B2: point them at pat's bookings.
    let with_id = |name: &str, param: &str, id: &str| {
        let mut f = fixture(name);
        f["pathParameters"][param] = id.into();
        f
    };
    let Some(Handler::Http(cancel)) = handler("booking-cancel") else {
        panic!()
    };
    let b1 = booked["bookingId"].as_str().unwrap();
    let r = cancel(
        e.deps.clone(),
        serde_json::from_value(with_id("http-booking-cancel.json", "id", b1)).unwrap(),
    )
    .await;
    assert_eq!(r.status_code, 200);
    let (_, b2) = realtime_domain::trips::booking::create(
        &e.deps,
        &claims("pat", Role::Passenger),
        realtime_domain::trips::booking::CreateBooking {
            trip_id: "T1".parse().unwrap(),
            seats_booked: 1,
        },
        None,
        &Default::default(),
    )
    .await
    .unwrap();
    let b2 = b2["bookingId"].as_str().unwrap();
    let r = cancel(
        e.deps.clone(),
        serde_json::from_value(with_id("http-passenger-booking-cancel.json", "bookingId", b2)).unwrap(),
    )
    .await;
    assert_eq!(r.status_code, 200);

    let (status, accepted) = http("driver-accept-trip", &e.deps, "http-driver-accept-trip.json").await;
    assert_eq!((status, accepted["driverId"].as_str()), (200, Some("dan")));
    let (status, moved) = http("driver-update-status", &e.deps, "http-driver-update-status.json").await;
    assert_eq!((status, moved["status"].as_str()), (200, Some("DEPARTED")));

    // The same connection id, now dan's: offers on `drivers`, filtered.
    realtime_domain::connections::remove(e.deps.table.as_ref(), CONN).await.unwrap();
    realtime_domain::connections::open(&e.deps, CONN, &claims("dan", Role::Driver))
        .await
        .unwrap();
    ws("ws-driver-subscribe", &e.deps, "ws-driver-subscribe.json").await;
    let f = frame(&mut rx).await;
    assert_eq!((f["type"].as_str(), f["channel"].as_str()), (Some("subscribed"), Some("drivers")));
    let subs = realtime_domain::connections::subscribers(e.deps.table.as_ref(), &realtime_domain::channels::Channel::Drivers)
        .await
        .unwrap();
    let filter = subs[0].filter.clone().unwrap();
    assert_eq!(filter["distanceKm"][0]["numeric"][1].as_f64(), Some(50.0), "{filter}");

    for (binary, name) in [
        ("events-stats", "http-events-stats.json"),
        ("websocket-stats", "http-websocket-stats.json"),
        ("websocket-health", "http-websocket-health.json"),
    ] {
        assert_eq!(http(binary, &e.deps, name).await.0, 200, "{binary}");
    }

    // The stream, invoked as its function URL invokes it: `connected` first, with the status.
    let Some(Handler::Stream(stream)) = handler("trip-status-stream") else {
        panic!("trip-status-stream is not a stream function")
    };
    let resp = stream(
        e.deps.clone(),
        serde_json::from_value(fixture("function-url-trip-status-stream.json")).unwrap(),
    )
    .await;
    assert_eq!((resp.status, resp.header("content-type")), (200, Some("text/event-stream")));
    let mut body = resp.body;
    let mut text = String::new();
    while !text.contains("connected") {
        let chunk = tokio::time::timeout(Duration::from_secs(2), futures::StreamExt::next(&mut body))
            .await
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.contains("\"currentStatus\":\"DEPARTED\""), "{text}");
}

/// The stream fixture (a DynamoDB stream record of a new log entry, as Lambda hands it
/// over) runs the log relay: the entry's event is published with its positions.
#[tokio::test]
async fn the_stream_fixture_relays_the_log_entry() {
    let e = embedded(FIXTURE_SECRET);
    let mut tap = e.bus.tap();
    let Some(Handler::Event(relay)) = handler("log-relay") else {
        panic!("log-relay is not an event function")
    };
    relay(e.deps.clone(), fixture("dynamodb-stream-log-relay.json")).await.unwrap();
    let published = tokio::time::timeout(Duration::from_secs(2), tap.recv()).await.unwrap().unwrap();
    assert_eq!(published["detail-type"], "chat.message.stored", "{published}");
    assert_eq!(published["detail"]["id"], "01JF0000000000000000000000");
    assert_eq!(
        published["detail"]["sequence"],
        serde_json::json!([{"channel": "chat:C1", "epoch": "01JEPOCH000000000000000000", "seq": 7}])
    );
    // A record that is not a relayed log entry publishes nothing.
    let other = serde_json::json!({"Records": [{"eventName": "INSERT", "dynamodb": {"NewImage": {"pk": {"S": "CHAT#C1"}, "sk": {"S": "S#META"}}}}]});
    relay(e.deps.clone(), other).await.unwrap();
    assert!(tap.try_recv().is_err());
}
