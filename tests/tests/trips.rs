//! The ride-sharing domain end to end, over the local stack with real clients (HTTP,
//! WebSocket, and a plain HTTP client reading the SSE stream), and its seat rules against
//! DynamoDB Local too:
//! * 200 concurrent bookings of a 3-seat trip: exactly 3 confirmed, the rest 409
//!   `not_enough_seats`, `availableSeats` ends at 0 (embedded table and DynamoDB Local);
//! * 20 drivers accepting one trip at once: exactly one wins;
//! * an illegal status transition is refused and sends nothing;
//! * a driver whose filter excludes an offer does not receive it, one whose filter matches does;
//! * an SSE client sees `connected`, then each status update; reconnecting with
//!   `Last-Event-ID` it gets exactly the updates it missed;
//! * driver availability, on SQLite and on DynamoDB Local: a busy driver (on an accepted
//!   trip) gets no offers until its trip is completed, and cannot accept a second trip
//!   (409 `driver_busy`) until its trip is cancelled.

use futures::future::join_all;
use realtime_domain::auth::{self, Claims, Role};
use realtime_domain::channels::Channel;
use realtime_domain::events::Cause;
use realtime_domain::trips::booking::{self, CreateBooking};
use realtime_domain::trips::driver::{availability, Availability, DriverStatus};
use realtime_domain::trips::TripError;
use realtime_domain::trips::{driver, trip};
use realtime_local::stack::Options;
use realtime_local::Running;
use realtime_tests::client::{Http, SseClient, TokenIn, WsClient};
use realtime_tests::dynamodb_local::DynamoDbLocal;
use realtime_tests::{start_stack, start_stack_with, TEST_SECRET};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

fn token(sub: &str, roles: &[Role]) -> String {
    auth::mint(TEST_SECRET, &claims(sub, roles))
}

fn claims(sub: &str, roles: &[Role]) -> Claims {
    Claims {
        sub: sub.into(),
        roles: roles.to_vec(),
        name: Some(format!("{sub} name")),
        exp: chrono::Utc::now().timestamp() + 3600,
    }
}

fn place(name: &str, lat: f64, lng: f64) -> Value {
    json!({"name": name, "lat": lat, "lng": lng})
}

/// A trip body: Almaty → Astana (~970 km) unless `short`, then Almaty → Talgar (~25 km).
fn trip_body(trip_type: &str, seats: u32, price: u64, short: bool) -> Value {
    let dest = if short {
        place("Talgar", 43.3033, 77.2400)
    } else {
        place("Astana", 51.1605, 71.4704)
    };
    json!({"title": format!("{trip_type} trip"), "tripType": trip_type, "status": "PUBLISHED",
           "origin": place("Almaty", 43.2389, 76.8897), "destination": dest,
           "departureTime": chrono::Utc::now() + chrono::Duration::hours(5), "totalSeats": seats, "pricePerSeat": price})
}

async fn create_trip(http: &Http, organizer: &str, body: &Value) -> String {
    let (status, trip) = http.post("/api/trips", Some(organizer), body).await.unwrap();
    assert_eq!(status, 201, "{trip}");
    trip["tripId"].as_str().unwrap().to_string()
}

async fn connect(stack: &Running, token: &str) -> WsClient {
    WsClient::connect(&stack.ws_url(), Some(token), TokenIn::Subprotocol).await.unwrap()
}

fn is_event(f: &Value, ty: &str) -> bool {
    f["type"] == "event" && f["event"]["type"] == ty
}

/// Waits until the trip channel's log holds `seq` events (the fan-out runs after the request).
async fn wait_for_log(stack: &Running, trip_id: &str, seq: u64) {
    let channel = Channel::Trip(trip_id.into());
    let deadline = Instant::now() + WAIT;
    loop {
        let head = realtime_domain::log::head(stack.stack.deps.table.as_ref(), &channel).await.unwrap();
        if head.seq >= seq {
            return;
        }
        assert!(Instant::now() < deadline, "trip log at {} of {seq}", head.seq);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_bookings_of_three_seats_on_the_local_stack() {
    let stack = start_stack().await.unwrap();
    let http = Arc::new(Http::new(stack.http_url()));
    let org = token("org", &[Role::Organizer]);
    let trip_id = create_trip(&http, &org, &trip_body("SHARED", 3, 4000, false)).await;
    let mut o = connect(&stack, &org).await;
    assert_eq!(
        o.subscribe("o1", &format!("trip:{trip_id}"), &["booking.*"]).await.unwrap()["type"],
        "subscribed"
    );

    let started = Instant::now();
    let answers = join_all((0..200).map(|i| {
        let (http, trip_id) = (http.clone(), trip_id.clone());
        async move {
            let t = token(&format!("p{i}"), &[Role::Passenger]);
            http.post("/api/bookings", Some(&t), &json!({"tripId": trip_id, "seatsBooked": 1}))
                .await
                .unwrap()
        }
    }))
    .await;
    let elapsed = started.elapsed();
    let confirmed: Vec<&Value> = answers.iter().filter(|(s, _)| *s == 201).map(|(_, b)| b).collect();
    let refused = answers
        .iter()
        .filter(|(s, b)| *s == 409 && b["error"]["code"] == "not_enough_seats")
        .count();
    assert_eq!(
        (confirmed.len(), refused),
        (3, 197),
        "{:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    let mut left: Vec<u64> = confirmed.iter().map(|b| b["availableSeats"].as_u64().unwrap()).collect();
    left.sort();
    assert_eq!(left, vec![0, 1, 2], "each booking saw the seats it left");
    let (_, t) = http
        .send(Method::GET, &format!("/api/trips/{trip_id}"), Some(&org), None)
        .await
        .unwrap();
    assert_eq!((t["availableSeats"].as_u64(), t["totalSeats"].as_u64()), (Some(0), Some(3)), "{t}");
    assert_eq!(t["bookings"].as_array().map(Vec::len), Some(3));

    // The organizer hears of each booking once, with the seats left.
    let mut seen = Vec::new();
    for _ in 0..3 {
        let f = o.next_where(WAIT, |f| is_event(f, "booking.confirmed")).await.unwrap();
        let d = &f["event"]["data"];
        assert_eq!(d["totalSeats"], 3);
        seen.push(d["availableSeats"].as_u64().unwrap());
    }
    seen.sort();
    assert_eq!(seen, vec![0, 1, 2]);
    println!("200 concurrent bookings over HTTP on the embedded table: {elapsed:?}");
    o.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_bookings_and_twenty_drivers_on_dynamodb_local() {
    use realtime_aws::dynamo::{create_table, DynamoTable};
    let ddb = realtime_tests::dynamodb_local::DynamoDbLocal::start()
        .await
        .expect("DynamoDB Local");
    let client = ddb.client();
    let name = format!("trips-{}", ulid::Ulid::new().to_string().to_lowercase());
    create_table(&client, &name).await.unwrap();
    let e = realtime_embedded::testing::embedded(TEST_SECRET);
    let mut deps = e.deps.clone();
    deps.table = Arc::new(DynamoTable::new(client, name));
    let deps = Arc::new(deps);
    let cause = Cause::default();
    let org = claims("org", &[Role::Organizer]);

    let req: trip::CreateTrip = serde_json::from_value(trip_body("SHARED", 3, 4000, false)).unwrap();
    let trip_id = trip::create(&deps, &org, req, &cause).await.unwrap().trip_id;
    let started = Instant::now();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (deps, trip_id) = (deps.clone(), trip_id.clone());
            tokio::spawn(async move {
                let req = CreateBooking { trip_id, seats_booked: 1 };
                match booking::create(&deps, &claims(&format!("p{i}"), &[Role::Passenger]), req, None, &Cause::default()).await {
                    Ok((status, body)) => (status, body),
                    Err(e) => {
                        let answer = realtime_domain::ApiError::from(e);
                        (answer.status(), answer.body())
                    }
                }
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert!(status == 201 || body["error"]["code"] == "not_enough_seats", "{status} {body}");
        statuses.push(status);
    }
    let elapsed = started.elapsed();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 3);
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 197);
    let t = realtime_domain::trips::load(deps.table.as_ref(), &trip_id).await.unwrap();
    assert_eq!((t.available_seats, t.total_seats), (0, 3));
    // Sequenced at the source: the trip's log holds the three confirmations (the stream's
    // relay publishes them from there), gap-free after trip.created.
    let channel = Channel::Trip(trip_id.to_string());
    let head = realtime_domain::log::head(deps.table.as_ref(), &channel).await.unwrap();
    let realtime_domain::log::Replay::Events { events, .. } =
        realtime_domain::log::replay(deps.table.as_ref(), &channel, &head.epoch, 0, 100)
            .await
            .unwrap()
    else {
        panic!("no replay")
    };
    let logged: Vec<&str> = events.iter().map(|(_, e)| e["type"].as_str().unwrap_or_default()).collect();
    assert_eq!(
        logged,
        ["trip.created", "booking.confirmed", "booking.confirmed", "booking.confirmed"]
    );
    println!("200 concurrent bookings on DynamoDB Local: {elapsed:?}");

    // An idempotent retry on DynamoDB: the first answer, not a second booking.
    let req: trip::CreateTrip = serde_json::from_value(trip_body("PRIVATE", 4, 5000, true)).unwrap();
    let private = trip::create(&deps, &org, req, &cause).await.unwrap().trip_id;
    let body = json!({"tripId": private, "seatsBooked": 2}).to_string();
    let ann = claims("ann", &[Role::Passenger]);
    let mut first = None;
    for _ in 0..2 {
        let key = realtime_domain::idempotency::Key::from_header("booking:ann", Some("k1"), body.as_bytes()).unwrap();
        let req = CreateBooking {
            trip_id: private.clone(),
            seats_booked: 2,
        };
        let (status, answer) = booking::create(&deps, &ann, req, key, &cause).await.unwrap();
        assert_eq!(status, 201);
        assert_eq!(answer["status"], "PENDING");
        assert_eq!(first.get_or_insert(answer.clone())["bookingId"], answer["bookingId"]);
    }
    assert_eq!(
        realtime_domain::trips::load(deps.table.as_ref(), &private)
            .await
            .unwrap()
            .available_seats,
        2
    );

    // Twenty drivers at once: one wins, the pending booking is confirmed.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (deps, private) = (deps.clone(), private.clone());
            tokio::spawn(
                async move { driver::accept(&deps, &claims(&format!("d{i}"), &[Role::Driver]), &private, &Cause::default()).await },
            )
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(e) => assert!(
                matches!(
                    &e,
                    TripError::Conflict {
                        code: "already_accepted",
                        ..
                    }
                ),
                "{e}"
            ),
        }
    }
    assert_eq!(wins, 1);
    let view = trip::get(&deps, &org, &private).await.unwrap();
    assert_eq!(view.trip["status"], "IN_PROGRESS");
    assert_eq!(view.bookings.unwrap()[0].status, realtime_domain::trips::BookingStatus::Confirmed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_drivers_accept_one_trip_and_exactly_one_wins() {
    let stack = start_stack().await.unwrap();
    let http = Arc::new(Http::new(stack.http_url()));
    let org = token("org", &[Role::Organizer]);
    let ann = token("ann", &[Role::Passenger]);
    let trip_id = create_trip(&http, &org, &trip_body("PRIVATE", 4, 5000, true)).await;
    let (status, b) = http
        .post("/api/bookings", Some(&ann), &json!({"tripId": trip_id, "seatsBooked": 2}))
        .await
        .unwrap();
    assert_eq!((status, b["status"].as_str()), (201, Some("PENDING")), "{b}");
    // The passenger follows the trip with passenger:subscribe.
    let mut p = connect(&stack, &ann).await;
    p.send(&json!({"action": "passenger:subscribe", "id": "ps", "tripIds": [trip_id]}))
        .await
        .unwrap();
    let ack = p.next_where(WAIT, |f| f["id"] == "ps").await.unwrap();
    assert_eq!(
        (ack["type"].as_str(), ack["channel"].as_str()),
        (Some("subscribed"), Some(format!("trip:{trip_id}").as_str()))
    );

    let answers = join_all((0..20).map(|i| {
        let (http, trip_id) = (http.clone(), trip_id.clone());
        async move {
            let t = token(&format!("driver{i}"), &[Role::Driver]);
            let (status, body) = http
                .post(&format!("/api/drivers/trips/accept/{trip_id}"), Some(&t), &json!({}))
                .await
                .unwrap();
            (i, status, body)
        }
    }))
    .await;
    let winners: Vec<&(usize, u16, Value)> = answers.iter().filter(|a| a.1 == 200).collect();
    assert_eq!(
        winners.len(),
        1,
        "{:?}",
        answers.iter().map(|a| (a.1, a.2["error"]["code"].clone())).collect::<Vec<_>>()
    );
    for (_, status, body) in answers.iter().filter(|a| a.1 != 200) {
        assert_eq!((*status, body["error"]["code"].as_str()), (409, Some("already_accepted")), "{body}");
    }
    let winner = format!("driver{}", winners[0].0);
    let t = &winners[0].2;
    assert_eq!(
        (t["status"].as_str(), t["driverId"].as_str()),
        (Some("IN_PROGRESS"), Some(winner.as_str()))
    );
    assert_eq!(t["bookings"][0]["status"], "CONFIRMED", "pending bookings are confirmed: {t}");

    let f = p.next_where(WAIT, |f| is_event(f, "trip.status.updated")).await.unwrap();
    let d = &f["event"]["data"];
    assert_eq!(
        (d["previousStatus"].as_str(), d["newStatus"].as_str()),
        (Some("PUBLISHED"), Some("IN_PROGRESS"))
    );
    assert_eq!(d["driverId"], winner.as_str());
    // One acceptance, one announcement.
    assert!(p
        .next_where(Duration::from_millis(500), |f| is_event(f, "trip.status.updated"))
        .await
        .is_err());
    p.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_illegal_status_transition_is_refused_and_sends_nothing() {
    let stack = start_stack().await.unwrap();
    let http = Http::new(stack.http_url());
    let org = token("org", &[Role::Organizer]);
    let dan = token("dan", &[Role::Driver]);
    let trip_id = create_trip(&http, &org, &trip_body("SHARED", 4, 5000, true)).await;
    let (status, _) = http
        .post(&format!("/api/drivers/trips/accept/{trip_id}"), Some(&dan), &json!({}))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let mut o = connect(&stack, &org).await;
    let ack = o.subscribe("o", &format!("trip:{trip_id}"), &["trip.**"]).await.unwrap();
    assert_eq!(ack["type"], "subscribed", "{ack}");
    // trip.created (1) and the acceptance (2) are logged before anything else happens.
    wait_for_log(&stack, &trip_id, 2).await;
    let head = ack["seq"].as_u64().unwrap();

    let status_path = format!("/api/drivers/trips/{trip_id}/status");
    for (to, code) in [
        ("COMPLETED", "illegal_transition"),
        ("PUBLISHED", "illegal_transition"),
        ("DRAFT", "illegal_transition"),
    ] {
        let (status, body) = http
            .send(Method::PUT, &status_path, Some(&dan), Some(&json!({"status": to})))
            .await
            .unwrap();
        assert_eq!((status, body["error"]["code"].as_str()), (409, Some(code)), "{to}: {body}");
    }
    let (status, body) = http
        .send(Method::PUT, &status_path, Some(&dan), Some(&json!({"status": "LOST"})))
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
    // A stranger may not move the trip.
    let (status, _) = http
        .send(
            Method::PUT,
            &status_path,
            Some(&token("eve", &[Role::Driver])),
            Some(&json!({"status": "DEPARTED"})),
        )
        .await
        .unwrap();
    assert_eq!(status, 403);

    let (status, t) = http
        .send(
            Method::PUT,
            &status_path,
            Some(&dan),
            Some(&json!({"status": "DEPARTED", "notes": "left the pickup"})),
        )
        .await
        .unwrap();
    assert_eq!((status, t["status"].as_str()), (200, Some("DEPARTED")), "{t}");
    // The next event on the channel is the legal one, with the next seq: the refused ones sent nothing.
    let f = o
        .next_where(WAIT, |f| f["type"] == "event" && f["seq"].as_u64() > Some(head))
        .await
        .unwrap();
    assert_eq!(f["seq"].as_u64(), Some(head + 1), "{f}");
    let d = &f["event"]["data"];
    assert_eq!(
        (d["previousStatus"].as_str(), d["newStatus"].as_str(), d["notes"].as_str()),
        (Some("IN_PROGRESS"), Some("DEPARTED"), Some("left the pickup"))
    );
    let history: Vec<&str> = t["statusHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["newStatus"].as_str().unwrap())
        .collect();
    assert_eq!(history, vec!["PUBLISHED", "IN_PROGRESS", "DEPARTED"]);
    o.close().await;
    stack.stop().await;
}

/// The offers a driver got (trip titles by trip id) until `last` arrived, plus any within 300 ms.
async fn offers_until(c: &mut WsClient, last: &str) -> Vec<String> {
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    while !got.iter().any(|t| t == last) {
        let left = deadline.saturating_duration_since(Instant::now());
        let f = c.next_where(left, |f| is_event(f, "trip.offer.created")).await.unwrap();
        got.push(f["event"]["tripId"].as_str().unwrap().to_string());
    }
    while let Ok(f) = c
        .next_where(Duration::from_millis(300), |f| is_event(f, "trip.offer.created"))
        .await
    {
        got.push(f["event"]["tripId"].as_str().unwrap().to_string());
    }
    got.sort();
    got
}

/// `drivers` keeps no log (every offer of the service would meet on one item): offers are
/// pushed live without a seq, and a driver who subscribes later gets the offers still open
/// that match its filters; a taken offer is offered to nobody after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_who_subscribes_later_gets_the_open_offers_and_not_the_taken_ones() {
    let stack = start_stack().await.unwrap();
    let http = Http::new(stack.http_url());
    let org = token("org", &[Role::Organizer]);
    let taken = create_trip(&http, &org, &trip_body("PRIVATE", 2, 5000, true)).await;
    let open = create_trip(&http, &org, &trip_body("PRIVATE", 4, 20000, true)).await;
    let far = create_trip(&http, &org, &trip_body("PRIVATE", 4, 20000, false)).await;
    let (status, body) = http
        .post(
            &format!("/api/drivers/trips/accept/{taken}"),
            Some(&token("dan", &[Role::Driver])),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let mut late = connect(&stack, &token("late", &[Role::Driver])).await;
    late.send(&json!({"action": "driver:subscribe", "id": "l", "filters": {"maxDistance": 100}}))
        .await
        .unwrap();
    let ack = late.next_where(WAIT, |f| f["id"] == "l").await.unwrap();
    assert_eq!(ack["type"], "subscribed", "{ack}");
    let first = late.next_where(WAIT, |f| is_event(f, "trip.offer.created")).await.unwrap();
    assert_eq!(first["event"]["tripId"], open.as_str(), "{first}");
    assert!(first.get("seq").is_none(), "offers on drivers carry no seq: {first}");
    // Nothing else: the taken one is closed, the far one is not what this driver wants.
    assert!(late
        .next_where(Duration::from_millis(500), |f| is_event(f, "trip.offer.created"))
        .await
        .is_err());
    let _ = far;
    late.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drivers_receive_only_the_offers_their_filters_match() {
    let stack = start_stack().await.unwrap();
    let http = Http::new(stack.http_url());
    let org = token("org", &[Role::Organizer]);
    let mut near = connect(&stack, &token("near", &[Role::Driver])).await;
    near.send(&json!({"action": "driver:subscribe", "id": "n", "filters": {"maxDistance": 100, "tripTypes": ["PRIVATE"]}}))
        .await
        .unwrap();
    let ack = near.next_where(WAIT, |f| f["id"] == "n").await.unwrap();
    assert_eq!(
        (ack["type"].as_str(), ack["channel"].as_str()),
        (Some("subscribed"), Some("drivers")),
        "{ack}"
    );
    let mut rich = connect(&stack, &token("rich", &[Role::Driver])).await;
    rich.send(&json!({"action": "driver:subscribe", "id": "r", "filters": {"minEarnings": 50000}}))
        .await
        .unwrap();
    assert_eq!(rich.next_where(WAIT, |f| f["id"] == "r").await.unwrap()["type"], "subscribed");
    // Passengers get no offers; bad filters are refused.
    let mut p = connect(&stack, &token("pat", &[Role::Passenger])).await;
    p.send(&json!({"action": "driver:subscribe", "id": "p"})).await.unwrap();
    assert_eq!(p.next_where(WAIT, |f| f["id"] == "p").await.unwrap()["code"], "forbidden");
    p.send(&json!({"action": "driver:subscribe", "id": "b", "filters": {"maxDistance": -5}}))
        .await
        .unwrap();
    assert_eq!(p.next_where(WAIT, |f| f["id"] == "b").await.unwrap()["code"], "bad_request");
    p.send(&json!({"action": "driver:subscribe", "id": "u", "filters": {"color": "red"}}))
        .await
        .unwrap();
    assert_eq!(p.next_where(WAIT, |f| f["id"] == "u").await.unwrap()["type"], "error");

    // Far and rich (~970 km, 4 × 20000); near and cheap (~25 km, 2 × 5000); shared (never offered);
    // then near and rich, which both want.
    let far_rich = create_trip(&http, &org, &trip_body("PRIVATE", 4, 20000, false)).await;
    let near_cheap = create_trip(&http, &org, &trip_body("PRIVATE", 2, 5000, true)).await;
    let _shared = create_trip(&http, &org, &trip_body("SHARED", 4, 20000, true)).await;
    let near_rich = create_trip(&http, &org, &trip_body("PRIVATE", 4, 20000, true)).await;

    let mut want_near = vec![near_cheap.clone(), near_rich.clone()];
    want_near.sort();
    let mut want_rich = vec![far_rich.clone(), near_rich.clone()];
    want_rich.sort();
    assert_eq!(offers_until(&mut near, &near_rich).await, want_near);
    assert_eq!(offers_until(&mut rich, &near_rich).await, want_rich);

    // The offer carries what a driver decides on.
    let (_, t) = http
        .send(Method::GET, &format!("/api/trips/{far_rich}"), Some(&org), None)
        .await
        .unwrap();
    let km = t["distanceKm"].as_f64().unwrap();
    assert!((960.0..980.0).contains(&km), "{km}");
    near.close().await;
    rich.close().await;
    p.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_has_earnings_distance_urgency_and_a_deadline() {
    let stack = start_stack().await.unwrap();
    let http = Http::new(stack.http_url());
    let mut d = connect(&stack, &token("dora", &[Role::Driver])).await;
    d.send(&json!({"action": "driver:subscribe", "id": "d"})).await.unwrap();
    assert_eq!(d.next_where(WAIT, |f| f["id"] == "d").await.unwrap()["type"], "subscribed");
    let mut body = trip_body("PRIVATE", 3, 7000, true);
    body["departureTime"] = json!(chrono::Utc::now() + chrono::Duration::minutes(90));
    let trip_id = create_trip(&http, &token("org", &[Role::Organizer]), &body).await;
    let f = d.next_where(WAIT, |f| is_event(f, "trip.offer.created")).await.unwrap();
    let o = &f["event"]["data"];
    assert_eq!(
        (o["tripId"].as_str(), o["estimatedEarnings"].as_u64()),
        (Some(trip_id.as_str()), Some(21000))
    );
    assert_eq!(
        (o["urgency"].as_str(), f["event"]["priority"].as_str()),
        (Some("high"), Some("high"))
    );
    let km = o["distanceKm"].as_f64().unwrap();
    assert!((20.0..35.0).contains(&km), "{km}");
    let deadline: chrono::DateTime<chrono::Utc> = serde_json::from_value(o["acceptanceDeadline"].clone()).unwrap();
    let left = deadline - chrono::Utc::now();
    assert!(
        left > chrono::Duration::minutes(25) && left <= chrono::Duration::minutes(30),
        "{left}"
    );
    assert!(o.get("organizerId").is_none(), "offers do not name the organizer");
    d.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookings_reach_the_trip_parties_and_cancelling_gives_the_seats_back() {
    let stack = start_stack().await.unwrap();
    let http = Http::new(stack.http_url());
    let org = token("org", &[Role::Organizer]);
    let (ann, bob, eve) = (
        token("ann", &[Role::Passenger]),
        token("bob", &[Role::Passenger]),
        token("eve", &[Role::Passenger]),
    );
    let trip_id = create_trip(&http, &org, &trip_body("SHARED", 4, 3000, true)).await;
    let other = create_trip(&http, &org, &trip_body("SHARED", 4, 3000, true)).await;
    let book = json!({"tripId": trip_id, "seatsBooked": 1});
    let (status, a) = http
        .send_with(
            Method::POST,
            "/api/bookings",
            Some(&ann),
            Some(&book),
            &[("idempotency-key", "ann-1")],
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{a}");
    // A retry with the same key is answered the same, with no second booking.
    let (status, again) = http
        .send_with(
            Method::POST,
            "/api/bookings",
            Some(&ann),
            Some(&book),
            &[("idempotency-key", "ann-1")],
        )
        .await
        .unwrap();
    assert_eq!((status, &again["bookingId"]), (201, &a["bookingId"]));

    // ann follows her trip; the trip she has not booked is refused; so is a stranger on the channel.
    let mut pa = connect(&stack, &ann).await;
    pa.send(&json!({"action": "passenger:subscribe", "id": "s", "tripIds": [trip_id, other]}))
        .await
        .unwrap();
    let mut answers = [
        pa.next_where(WAIT, |f| f["id"] == "s").await.unwrap(),
        pa.next_where(WAIT, |f| f["id"] == "s").await.unwrap(),
    ];
    answers.sort_by_key(|f| f["type"].as_str().unwrap_or_default().to_string());
    assert_eq!(
        (answers[0]["type"].as_str(), answers[0]["code"].as_str()),
        (Some("error"), Some("forbidden"))
    );
    assert_eq!(answers[1]["channel"], format!("trip:{trip_id}"));
    let mut e = connect(&stack, &eve).await;
    assert_eq!(
        e.subscribe("e", &format!("trip:{trip_id}"), &[]).await.unwrap()["code"],
        "forbidden"
    );

    // bob books: ann (a passenger of the shared trip) hears of it with the seats.
    let (status, b) = http
        .post("/api/bookings", Some(&bob), &json!({"tripId": trip_id, "seatsBooked": 2}))
        .await
        .unwrap();
    assert_eq!(status, 201);
    let f = pa.next_where(WAIT, |f| is_event(f, "booking.confirmed")).await.unwrap();
    let d = &f["event"]["data"];
    assert_eq!(
        (
            d["passengerId"].as_str(),
            d["seatsBooked"].as_u64(),
            d["availableSeats"].as_u64(),
            d["totalSeats"].as_u64()
        ),
        (Some("bob"), Some(2), Some(1), Some(4))
    );
    // Too many seats.
    let (status, body) = http
        .post("/api/bookings", Some(&eve), &json!({"tripId": trip_id, "seatsBooked": 2}))
        .await
        .unwrap();
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("not_enough_seats")));

    // bob cancels with PATCH; a second cancel gives nothing back again.
    let bob_booking = b["bookingId"].as_str().unwrap();
    let cancel = json!({"action": "cancel", "reason": "plans changed"});
    for _ in 0..2 {
        let (status, c) = http
            .send(Method::PATCH, &format!("/api/bookings/{bob_booking}"), Some(&bob), Some(&cancel))
            .await
            .unwrap();
        assert_eq!(
            (status, c["status"].as_str(), c["availableSeats"].as_u64()),
            (200, Some("CANCELLED"), Some(3)),
            "{c}"
        );
    }
    let f = pa.next_where(WAIT, |f| is_event(f, "booking.cancelled")).await.unwrap();
    let d = &f["event"]["data"];
    assert_eq!(
        (d["seatsFreed"].as_u64(), d["availableSeats"].as_u64(), d["reason"].as_str()),
        (Some(2), Some(3), Some("plans changed"))
    );
    assert!(pa
        .next_where(Duration::from_millis(400), |f| is_event(f, "booking.cancelled"))
        .await
        .is_err());
    // Someone else's booking is not yours to cancel; ann cancels hers on the passenger path.
    let ann_booking = a["bookingId"].as_str().unwrap();
    let path = format!("/api/passengers/bookings/{ann_booking}/cancel");
    let (status, _) = http.send(Method::POST, &path, Some(&eve), None).await.unwrap();
    assert_eq!(status, 403);
    let (status, c) = http.send(Method::POST, &path, Some(&ann), None).await.unwrap();
    assert_eq!((status, c["availableSeats"].as_u64()), (200, Some(4)), "{c}");
    let (_, t) = http
        .send(Method::GET, &format!("/api/trips/{trip_id}"), Some(&org), None)
        .await
        .unwrap();
    assert_eq!(t["availableSeats"], 4);
    // With no booking left, ann is no longer a party of the trip.
    assert_eq!(
        pa.subscribe("again", &format!("trip:{trip_id}"), &[]).await.unwrap()["code"],
        "forbidden"
    );

    // Bad input on the new routes: 4xx JSON, never a 5xx.
    let bad: Vec<(Method, String, Value)> = vec![
        (Method::POST, "/api/bookings".into(), json!({"tripId": trip_id, "seatsBooked": 0})),
        (Method::POST, "/api/bookings".into(), json!({"tripId": "a b", "seatsBooked": 1})),
        (
            Method::POST,
            "/api/bookings".into(),
            json!({"tripId": trip_id, "seatsBooked": 1, "x": 1}),
        ),
        (Method::POST, "/api/bookings".into(), json!({"tripId": "missing", "seatsBooked": 1})),
        (Method::PATCH, format!("/api/bookings/{bob_booking}"), json!({"action": "refund"})),
        (Method::POST, "/api/trips".into(), json!({"title": "x"})),
        (Method::POST, "/api/trips".into(), {
            let mut b = trip_body("PRIVATE", 51, 1, true);
            b["totalSeats"] = json!(51);
            b
        }),
        (Method::POST, "/api/trips".into(), {
            let mut b = trip_body("PRIVATE", 2, 1, true);
            b["status"] = json!("COMPLETED");
            b
        }),
        (Method::GET, "/api/trips/missing".into(), Value::Null),
    ];
    for (method, path, body) in bad {
        let body = (!body.is_null()).then_some(body);
        let (status, answer) = http.send(method.clone(), &path, Some(&org), body.as_ref()).await.unwrap();
        assert!(
            (400..500).contains(&status) && answer["error"]["code"].is_string(),
            "{method} {path}: {status} {answer}"
        );
    }
    pa.close().await;
    e.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_sends_connected_then_each_update_and_replays_after_last_event_id() {
    let stack = start_stack_with(Options {
        sse_heartbeat: Some(Duration::from_millis(300)),
        sse_poll: Some(Duration::from_millis(50)),
        ..Default::default()
    })
    .await
    .unwrap();
    let http = Http::new(stack.http_url());
    let org = token("org", &[Role::Organizer]);
    let dan = token("dan", &[Role::Driver]);
    let ann = token("ann", &[Role::Passenger]);
    let trip_id = create_trip(&http, &org, &trip_body("SHARED", 4, 3000, true)).await;
    http.post("/api/bookings", Some(&ann), &json!({"tripId": trip_id, "seatsBooked": 1}))
        .await
        .unwrap();
    http.post(&format!("/api/drivers/trips/accept/{trip_id}"), Some(&dan), &json!({}))
        .await
        .unwrap();
    let url = format!("{}/api/realtime/trip-status/{trip_id}", stack.http_url());
    let status_path = format!("/api/drivers/trips/{trip_id}/status");
    let set = |to: &'static str| {
        let (http, dan, path) = (&http, &dan, &status_path);
        async move {
            let (status, body) = http
                .send(
                    Method::PUT,
                    path,
                    Some(dan),
                    Some(&json!({"status": to, "notes": format!("now {to}")})),
                )
                .await
                .unwrap();
            assert_eq!(status, 200, "{to}: {body}");
        }
    };

    // Strangers and unknown trips are refused before any stream starts.
    let s = SseClient::connect(&url, Some(&token("eve", &[Role::Passenger])), None)
        .await
        .unwrap();
    assert_eq!(s.status, 403);
    assert_eq!(s.json().await.unwrap()["error"]["code"], "forbidden");
    let s = SseClient::connect(&format!("{}/api/realtime/trip-status/nope", stack.http_url()), Some(&ann), None)
        .await
        .unwrap();
    assert_eq!(s.status, 404);
    assert_eq!(SseClient::connect(&url, None, None).await.unwrap().status, 401);

    // The passenger (token in the query, as an EventSource sends it) sees connected, then DEPARTED.
    let mut c = SseClient::connect(&format!("{url}?token={ann}"), None, None).await.unwrap();
    assert_eq!((c.status, c.content_type.as_deref()), (200, Some("text/event-stream")));
    let connected = c.next(WAIT).await.unwrap();
    assert_eq!(
        (connected.data["type"].as_str(), connected.data["currentStatus"].as_str()),
        (Some("connected"), Some("IN_PROGRESS")),
        "{connected:?}"
    );
    set("DEPARTED").await;
    let departed = c.next_of("status_update", WAIT).await.unwrap();
    assert_eq!(
        (
            departed.data["previousStatus"].as_str(),
            departed.data["newStatus"].as_str(),
            departed.data["notes"].as_str()
        ),
        (Some("IN_PROGRESS"), Some("DEPARTED"), Some("now DEPARTED"))
    );
    let last_id = departed.id.clone().expect("status updates carry the seq as id");
    assert_eq!(last_id, departed.data["seq"].as_u64().unwrap().to_string());
    c.next_of("heartbeat", Duration::from_secs(3)).await.unwrap();
    drop(c);

    // Missed while away: a booking (not a status update), ARRIVED and COMPLETED.
    http.post(
        "/api/bookings",
        Some(&token("bob", &[Role::Passenger])),
        &json!({"tripId": trip_id, "seatsBooked": 1}),
    )
    .await
    .unwrap();
    set("ARRIVED").await;
    set("COMPLETED").await;

    // The organizer reconnects with Last-Event-ID: exactly the two missed updates, in order.
    let mut c = SseClient::connect(&url, Some(&org), Some(&last_id)).await.unwrap();
    let connected = c.next(WAIT).await.unwrap();
    assert_eq!(connected.data["type"], "connected");
    let mut updates = Vec::new();
    let deadline = Instant::now() + WAIT;
    let mut heartbeats_after = 0;
    while heartbeats_after < 3 {
        let e = c
            .next(deadline.saturating_duration_since(Instant::now()))
            .await
            .expect("stream open");
        match e.data["type"].as_str() {
            Some("status_update") => updates.push((e.id.clone().unwrap(), e.data["newStatus"].as_str().unwrap().to_string())),
            Some("heartbeat") if updates.len() >= 2 => heartbeats_after += 1,
            _ => {}
        }
    }
    let statuses: Vec<&str> = updates.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(statuses, vec!["ARRIVED", "COMPLETED"], "{updates:?}");
    let ids: Vec<u64> = updates.iter().map(|(id, _)| id.parse().unwrap()).collect();
    assert!(ids[0] > last_id.parse::<u64>().unwrap() && ids[1] > ids[0], "{ids:?}");

    // Reconnecting from the last id: nothing more to replay.
    let mut c = SseClient::connect(&url, Some(&org), Some(&ids[1].to_string())).await.unwrap();
    assert_eq!(c.next(WAIT).await.unwrap().data["currentStatus"], "COMPLETED");
    c.next_of("heartbeat", Duration::from_secs(3)).await.unwrap();
    let extra = c.next_of("status_update", Duration::from_millis(700)).await;
    assert!(extra.is_err(), "{extra:?}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitoring_routes_report_emissions_and_health_is_public() {
    let stack = start_stack_with(Options {
        sse_poll: Some(Duration::from_millis(50)),
        ..Default::default()
    })
    .await
    .unwrap();
    let http = Http::new(stack.http_url());
    let (status, health) = http.send(Method::GET, "/api/websocket/health", None, None).await.unwrap();
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));

    let org = token("org", &[Role::Organizer]);
    let dan = token("dan", &[Role::Driver]);
    let mut o = connect(&stack, &org).await;
    let trip_id = create_trip(&http, &org, &trip_body("SHARED", 4, 3000, true)).await;
    assert_eq!(
        o.subscribe("o", &format!("trip:{trip_id}"), &[]).await.unwrap()["type"],
        "subscribed"
    );
    let sse = SseClient::connect(
        &format!("{}/api/realtime/trip-status/{trip_id}", stack.http_url()),
        Some(&org),
        None,
    )
    .await
    .unwrap();
    assert_eq!(sse.status, 200);
    http.post(&format!("/api/drivers/trips/accept/{trip_id}"), Some(&dan), &json!({}))
        .await
        .unwrap();
    o.next_where(WAIT, |f| is_event(f, "trip.status.updated")).await.unwrap();

    let admin = token("root", &[Role::Admin]);
    let deadline = Instant::now() + WAIT;
    let stats = loop {
        let (status, stats) = http.send(Method::GET, "/api/events/stats", Some(&admin), None).await.unwrap();
        assert_eq!(status, 200, "{stats}");
        if stats["byType"]["trip.status.updated"]["events"].as_i64() >= Some(1) || Instant::now() > deadline {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(stats["byType"]["trip.status.updated"]["events"], 1, "{stats}");
    assert!(
        stats["byType"]["trip.status.updated"]["websocketConnections"].as_i64() >= Some(1),
        "{stats}"
    );
    assert!(stats["sse"]["emissions"].as_i64() >= Some(1), "{stats}");
    assert!(stats["sse"]["connectionsNotified"].as_i64() >= Some(1), "{stats}");
    assert!(stats["sse"]["activeStreams"].as_i64() >= Some(1), "{stats}");
    assert!(stats["emissions"]["events"].as_i64() >= Some(2), "{stats}");
    let (status, ws) = http.send(Method::GET, "/api/websocket/stats", Some(&admin), None).await.unwrap();
    assert_eq!(status, 200);
    assert!(ws["connections"]["active"].as_i64() >= Some(1), "{ws}");
    assert!(ws["pushes"]["delivered"].as_i64() >= Some(1), "{ws}");
    // Subscriptions per channel, counted exactly for the channels asked for.
    let path = format!("/api/websocket/stats?channels=trip:{trip_id},chat:none,drivers");
    let (status, ws) = http.send(Method::GET, &path, Some(&admin), None).await.unwrap();
    assert_eq!(status, 200, "{ws}");
    let want = json!({format!("trip:{trip_id}"): 1, "chat:none": 0, "drivers": 0});
    assert_eq!(ws["subscriptions"], want, "{ws}");
    assert!(ws["replay"]["resumes"].is_i64(), "{ws}");
    let many = (0..21).map(|i| format!("chat:c{i}")).collect::<Vec<_>>().join(",");
    for bad in ["nope:1", "chat:a/b", many.as_str()] {
        let (status, body) = http
            .send(Method::GET, &format!("/api/websocket/stats?channels={bad}"), Some(&admin), None)
            .await
            .unwrap();
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("bad_request")),
            "{bad}: {body}"
        );
    }
    for path in ["/api/events/stats", "/api/websocket/stats"] {
        let (status, _) = http.send(Method::GET, path, Some(&org), None).await.unwrap();
        assert_eq!(status, 403, "{path}");
        let (status, _) = http.send(Method::GET, path, None, None).await.unwrap();
        assert_eq!(status, 401, "{path}");
    }
    drop(sse);
    o.close().await;
    stack.stop().await;
}

/// A stack on SQLite, or on DynamoDB Local when given one.
async fn stack_on(dynamo: Option<&DynamoDbLocal>) -> Running {
    start_stack_with(Options {
        dynamodb_endpoint: dynamo.map(|d| d.endpoint.clone()),
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn status_of(stack: &Running, driver: &str) -> Availability {
    availability(stack.stack.deps.table.as_ref(), driver).await.unwrap()
}

fn available() -> Availability {
    Availability {
        driver_status: DriverStatus::Available,
        busy_trip_id: None,
    }
}

fn busy_with(trip_id: &str) -> Availability {
    Availability {
        driver_status: DriverStatus::Busy,
        busy_trip_id: Some(trip_id.to_string()),
    }
}

async fn driver_on_drivers(stack: &Running, sub: &str) -> WsClient {
    let mut c = connect(stack, &token(sub, &[Role::Driver])).await;
    c.send(&json!({"action": "driver:subscribe", "id": "d"})).await.unwrap();
    let ack = c.next_where(WAIT, |f| f["id"] == "d").await.unwrap();
    assert_eq!(
        (ack["type"].as_str(), ack["channel"].as_str()),
        (Some("subscribed"), Some("drivers")),
        "{ack}"
    );
    c
}

/// The next offer of a trip this client has not been offered yet. An offer created while a
/// driver subscribes may come twice, live and in the catch-up of open offers (offers have
/// no seq); a client drops the second by its trip.
async fn next_new_offer(c: &mut WsClient, seen: &mut std::collections::HashSet<String>, within: Duration) -> Option<String> {
    let end = tokio::time::Instant::now() + within;
    loop {
        let left = end.saturating_duration_since(tokio::time::Instant::now());
        let trip = next_offer(c, left).await?;
        if seen.insert(trip.clone()) {
            return Some(trip);
        }
    }
}

async fn next_offer(c: &mut WsClient, within: Duration) -> Option<String> {
    c.next_where(within, |f| is_event(f, "trip.offer.created"))
        .await
        .ok()
        .map(|f| f["event"]["tripId"].as_str().unwrap_or_default().to_string())
}

async fn set_status(http: &Http, who: &str, trip_id: &str, to: &str) -> (u16, Value) {
    http.send(
        Method::PUT,
        &format!("/api/drivers/trips/{trip_id}/status"),
        Some(who),
        Some(&json!({"status": to})),
    )
    .await
    .unwrap()
}

async fn accept_trip(http: &Http, who: &str, trip_id: &str) -> (u16, Value) {
    http.post(&format!("/api/drivers/trips/accept/{trip_id}"), Some(who), &json!({}))
        .await
        .unwrap()
}

/// Two drivers on `drivers`; ada accepts trip 1 and is busy: trip 2's offer reaches bo and
/// not ada; once ada completes trip 1, trip 3's offer reaches both.
async fn a_busy_driver_receives_no_offers(dynamo: Option<&DynamoDbLocal>) {
    let stack = stack_on(dynamo).await;
    let http = Http::new(stack.http_url());
    let org = token("org", &[Role::Organizer]);
    let ada = token("ada", &[Role::Driver]);
    let mut a = driver_on_drivers(&stack, "ada").await;
    let mut b = driver_on_drivers(&stack, "bo").await;
    let (mut seen_a, mut seen_b) = (Default::default(), Default::default());

    let trip1 = create_trip(&http, &org, &trip_body("PRIVATE", 3, 5000, true)).await;
    assert_eq!(next_new_offer(&mut a, &mut seen_a, WAIT).await.as_deref(), Some(trip1.as_str()));
    assert_eq!(next_new_offer(&mut b, &mut seen_b, WAIT).await.as_deref(), Some(trip1.as_str()));
    assert_eq!(status_of(&stack, "ada").await, available());
    let (status, body) = accept_trip(&http, &ada, &trip1).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(status_of(&stack, "ada").await, busy_with(&trip1));
    assert_eq!(status_of(&stack, "bo").await, available());

    let trip2 = create_trip(&http, &org, &trip_body("PRIVATE", 3, 5000, true)).await;
    assert_eq!(next_new_offer(&mut b, &mut seen_b, WAIT).await.as_deref(), Some(trip2.as_str()));
    // bo has it; the fan-out pushes to both in one go: 500 ms more and ada still has nothing.
    let none = next_new_offer(&mut a, &mut seen_a, Duration::from_millis(500)).await;
    assert_eq!(none, None, "a busy driver got an offer");

    // Still busy while the trip goes on; free once it is completed.
    for to in ["DEPARTED", "ARRIVED"] {
        let (status, body) = set_status(&http, &ada, &trip1, to).await;
        assert_eq!(status, 200, "{to}: {body}");
        assert_eq!(status_of(&stack, "ada").await, busy_with(&trip1), "{to}");
    }
    let (status, body) = set_status(&http, &ada, &trip1, "COMPLETED").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(status_of(&stack, "ada").await, available());

    let trip3 = create_trip(&http, &org, &trip_body("PRIVATE", 3, 5000, true)).await;
    // ada's next offer is trip 3: trip 2 never reached it.
    assert_eq!(next_new_offer(&mut a, &mut seen_a, WAIT).await.as_deref(), Some(trip3.as_str()));
    assert_eq!(next_new_offer(&mut b, &mut seen_b, WAIT).await.as_deref(), Some(trip3.as_str()));
    a.close().await;
    b.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_driver_receives_no_offers_on_sqlite() {
    a_busy_driver_receives_no_offers(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_driver_receives_no_offers_on_dynamodb_local() {
    let dynamo = DynamoDbLocal::start().await.unwrap();
    a_busy_driver_receives_no_offers(Some(&dynamo)).await;
}

/// A busy driver's second accept is 409 `driver_busy` and changes nothing; once its trip is
/// cancelled (by the driver, then by an admin) it can accept again; of two accepts by one
/// driver at once, one wins.
async fn a_busy_driver_cannot_accept_until_its_trip_ends(dynamo: Option<&DynamoDbLocal>) {
    let stack = stack_on(dynamo).await;
    let http = Http::new(stack.http_url());
    let org = token("org", &[Role::Organizer]);
    let dan = token("dan", &[Role::Driver]);
    let root = token("root", &[Role::Admin]);
    let trip1 = create_trip(&http, &org, &trip_body("PRIVATE", 3, 5000, true)).await;
    let trip2 = create_trip(&http, &org, &trip_body("PRIVATE", 3, 5000, true)).await;
    assert_eq!(accept_trip(&http, &dan, &trip1).await.0, 200);

    let (status, body) = accept_trip(&http, &dan, &trip2).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("driver_busy")), "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&trip1), "{message}");
    let (_, t) = http
        .send(Method::GET, &format!("/api/trips/{trip2}"), Some(&org), None)
        .await
        .unwrap();
    assert_eq!((t["status"].as_str(), t.get("driverId")), (Some("PUBLISHED"), None), "{t}");
    assert_eq!(status_of(&stack, "dan").await, busy_with(&trip1));

    // The driver cancels its trip: free, and trip 2 is its now.
    let (status, body) = set_status(&http, &dan, &trip1, "CANCELLED").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(status_of(&stack, "dan").await, available());
    let (status, body) = accept_trip(&http, &dan, &trip2).await;
    assert_eq!((status, body["driverId"].as_str()), (200, Some("dan")), "{body}");
    assert_eq!(status_of(&stack, "dan").await, busy_with(&trip2));

    // An admin cancels it: free again.
    let (status, body) = set_status(&http, &root, &trip2, "CANCELLED").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(status_of(&stack, "dan").await, available());

    // Two accepts by one driver at once: one wins, the other is driver_busy.
    let trip3 = create_trip(&http, &org, &trip_body("PRIVATE", 3, 5000, true)).await;
    let trip4 = create_trip(&http, &org, &trip_body("PRIVATE", 3, 5000, true)).await;
    let (x, y) = tokio::join!(accept_trip(&http, &dan, &trip3), accept_trip(&http, &dan, &trip4));
    let mut answers = [(x.0, x.1["error"]["code"].clone()), (y.0, y.1["error"]["code"].clone())];
    answers.sort_by_key(|a| a.0);
    assert_eq!(answers, [(200, Value::Null), (409, json!("driver_busy"))], "{x:?} {y:?}");
    let won = if x.0 == 200 { &trip3 } else { &trip4 };
    assert_eq!(status_of(&stack, "dan").await, busy_with(won));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_driver_cannot_accept_until_its_trip_ends_on_sqlite() {
    a_busy_driver_cannot_accept_until_its_trip_ends(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_driver_cannot_accept_until_its_trip_ends_on_dynamodb_local() {
    let dynamo = DynamoDbLocal::start().await.unwrap();
    a_busy_driver_cannot_accept_until_its_trip_ends(Some(&dynamo)).await;
}
