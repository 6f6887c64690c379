//! The ride-sharing rules on the embedded adapters: seats under contention, one winner
//! among racing drivers, the transition table, idempotent bookings, cancellation once.

use realtime_domain::auth::{Claims, Role};
use realtime_domain::events::Cause;
use realtime_domain::idempotency::Key;
use realtime_domain::ids::{BookingId, TripId};
use realtime_domain::trips::booking::{self, CreateBooking};
use realtime_domain::trips::driver::{self, UpdateStatus};
use realtime_domain::trips::trip::{self, CreateTrip};
use realtime_domain::trips::BookingStatus;
use realtime_domain::trips::{Place, TripStatus, TripType};
use realtime_domain::Deps;
use realtime_embedded::testing::{embedded, Embedded};
use serde_json::Value;
use std::sync::Arc;

/// How the API answers a trips refusal (the mapping is `From<TripError> for ApiError`).
trait Answered {
    fn status(&self) -> u16;
    fn code(&self) -> &'static str;
    fn body(&self) -> serde_json::Value;
}

impl Answered for realtime_domain::trips::TripError {
    fn status(&self) -> u16 {
        realtime_domain::ApiError::from(self.clone()).status()
    }
    fn code(&self) -> &'static str {
        realtime_domain::ApiError::from(self.clone()).code()
    }
    fn body(&self) -> serde_json::Value {
        realtime_domain::ApiError::from(self.clone()).body()
    }
}

fn user(sub: &str, roles: &[Role]) -> Claims {
    Claims {
        sub: sub.into(),
        roles: roles.to_vec(),
        name: Some(sub.to_uppercase()),
        exp: i64::MAX,
    }
}

pub(crate) fn create_req(trip_type: TripType, seats: u32) -> CreateTrip {
    CreateTrip {
        title: "Almaty to Astana".into(),
        trip_type,
        status: None,
        origin: Place {
            name: "Almaty".into(),
            lat: 43.2389,
            lng: 76.8897,
        },
        destination: Place {
            name: "Astana".into(),
            lat: 51.1605,
            lng: 71.4704,
        },
        departure_time: chrono::Utc::now() + chrono::Duration::hours(3),
        total_seats: seats,
        price_per_seat: 5000,
    }
}

async fn new_trip(deps: &Deps, trip_type: TripType, seats: u32) -> TripId {
    trip::create(
        deps,
        &user("org", &[Role::Organizer]),
        create_req(trip_type, seats),
        &Cause::default(),
    )
    .await
    .unwrap()
    .trip_id
}

/// Event types the bus got, in order.
fn drain(rx: &mut tokio::sync::broadcast::Receiver<Value>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e["detail-type"].as_str().unwrap_or_default().to_string());
    }
    out
}

async fn book(deps: &Deps, who: &str, trip_id: &str, seats: u32, key: Option<&str>) -> (u16, Value) {
    let body = format!("{{\"tripId\":\"{trip_id}\",\"seatsBooked\":{seats}}}");
    let idem = Key::from_header(&format!("booking:{who}"), key, body.as_bytes()).unwrap();
    let req = CreateBooking {
        trip_id: trip_id.parse().unwrap(),
        seats_booked: seats,
    };
    match booking::create(deps, &user(who, &[Role::Passenger]), req, idem, &Cause::default()).await {
        Ok(r) => r,
        Err(e) => (e.status(), e.body()),
    }
}

#[tokio::test]
async fn a_private_published_trip_is_offered_to_drivers() {
    let Embedded { deps, bus, .. } = embedded("trips-test-secret-0123");
    let mut rx = bus.tap();
    new_trip(&deps, TripType::Private, 4).await;
    new_trip(&deps, TripType::Shared, 4).await;
    assert_eq!(drain(&mut rx), vec!["trip.created", "trip.offer.created", "trip.created"]);
    let passenger = user("p", &[Role::Passenger]);
    let e = trip::create(&deps, &passenger, create_req(TripType::Shared, 4), &Cause::default())
        .await
        .unwrap_err();
    assert_eq!(e.status(), 403);
    let mut bad = create_req(TripType::Shared, 0);
    assert_eq!(
        trip::create(&deps, &user("org", &[Role::Organizer]), bad.clone(), &Cause::default())
            .await
            .unwrap_err()
            .status(),
        400
    );
    bad.total_seats = 2;
    bad.origin.lat = 91.0;
    assert_eq!(
        trip::create(&deps, &user("org", &[Role::Organizer]), bad, &Cause::default())
            .await
            .unwrap_err()
            .status(),
        400
    );
}

#[tokio::test]
async fn concurrent_bookings_never_overbook() {
    let Embedded { deps, bus, .. } = embedded("trips-test-secret-0123");
    let trip_id = new_trip(&deps, TripType::Shared, 3).await;
    let mut rx = bus.tap();
    let deps = Arc::new(deps);
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let (deps, trip_id) = (deps.clone(), trip_id.clone());
            tokio::spawn(async move { book(&deps, &format!("p{i}"), &trip_id, 1, None).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        if status == 409 {
            assert_eq!(body["error"]["code"], "not_enough_seats");
        }
        statuses.push(status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 3);
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 57);
    let t = realtime_domain::trips::load(deps.table.as_ref(), &trip_id).await.unwrap();
    assert_eq!((t.available_seats, t.total_seats), (0, 3));
    assert_eq!(drain(&mut rx), vec!["booking.confirmed"; 3]);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer() {
    let Embedded { deps, bus, .. } = embedded("trips-test-secret-0123");
    let trip_id = new_trip(&deps, TripType::Shared, 2).await;
    let mut rx = bus.tap();
    let (s1, b1) = book(&deps, "ann", &trip_id, 2, Some("key-1")).await;
    let (s2, b2) = book(&deps, "ann", &trip_id, 2, Some("key-1")).await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(b1, b2, "the same booking, not a second one");
    assert_eq!(b1["availableSeats"], 0);
    // Another user's key is another key; a refusal is stored and replayed too.
    let (s3, b3) = book(&deps, "bob", &trip_id, 1, Some("key-1")).await;
    assert_eq!((s3, b3["error"]["code"].as_str()), (409, Some("not_enough_seats")));
    assert_eq!(book(&deps, "bob", &trip_id, 1, Some("key-1")).await.0, 409);
    // The same key with another body is refused.
    let (s4, b4) = book(&deps, "ann", &trip_id, 1, Some("key-1")).await;
    assert_eq!((s4, b4["error"]["code"].as_str()), (409, Some("idempotency_key_reused")));
    assert_eq!(drain(&mut rx), vec!["booking.confirmed"]);
}

#[tokio::test]
async fn cancelling_gives_the_seats_back_once() {
    let Embedded { deps, bus, .. } = embedded("trips-test-secret-0123");
    let trip_id = new_trip(&deps, TripType::Shared, 3).await;
    let (_, b) = book(&deps, "ann", &trip_id, 2, None).await;
    let id: BookingId = b["bookingId"].as_str().unwrap().parse().unwrap();
    let mut rx = bus.tap();
    let ann = user("ann", &[Role::Passenger]);
    let stranger = user("eve", &[Role::Passenger]);
    assert_eq!(
        booking::cancel(&deps, &stranger, &id, None, &Cause::default())
            .await
            .unwrap_err()
            .status(),
        403
    );
    let deps = Arc::new(deps);
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let (deps, id, ann) = (deps.clone(), id.clone(), ann.clone());
            tokio::spawn(async move { booking::cancel(&deps, &ann, &id, Some("plans changed".into()), &Cause::default()).await })
        })
        .collect();
    for t in tasks {
        let a = t.await.unwrap().unwrap();
        assert_eq!((a.booking.status, a.available_seats), (BookingStatus::Cancelled, 3));
    }
    assert_eq!(drain(&mut rx), vec!["booking.cancelled"]);
    assert_eq!(
        realtime_domain::trips::load(deps.table.as_ref(), &trip_id)
            .await
            .unwrap()
            .available_seats,
        3
    );
    assert!(!realtime_domain::trips::access::is_passenger(deps.table.as_ref(), &trip_id, "ann")
        .await
        .unwrap());
    assert_eq!(
        booking::cancel(&deps, &ann, &"nope".parse().unwrap(), None, &Cause::default())
            .await
            .unwrap_err()
            .status(),
        404
    );
}

#[tokio::test]
async fn one_driver_wins_and_pending_bookings_are_confirmed() {
    let Embedded { deps, bus, .. } = embedded("trips-test-secret-0123");
    let trip_id = new_trip(&deps, TripType::Private, 4).await;
    let (_, b) = book(&deps, "ann", &trip_id, 2, None).await;
    assert_eq!(b["status"], "PENDING");
    let mut rx = bus.tap();
    let deps = Arc::new(deps);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (deps, trip_id) = (deps.clone(), trip_id.clone());
            tokio::spawn(async move { driver::accept(&deps, &user(&format!("d{i}"), &[Role::Driver]), &trip_id, &Cause::default()).await })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(trip) => winners.push(trip.driver_id.unwrap()),
            Err(e) => assert_eq!(e.code(), "already_accepted"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(drain(&mut rx), vec!["trip.status.updated"]);
    let view = trip::get(&deps, &user("org", &[Role::Organizer]), &trip_id).await.unwrap();
    assert_eq!(view.trip["status"], "IN_PROGRESS");
    assert_eq!(view.trip["driverId"], winners[0].as_str());
    assert_eq!(view.bookings.unwrap()[0].status, BookingStatus::Confirmed);
    assert_eq!(view.status_history.unwrap().len(), 2);
    // A booking after the acceptance is confirmed at once.
    assert_eq!(book(&deps, "bob", &trip_id, 1, None).await.1["status"], "CONFIRMED");
    let passenger = user("p", &[Role::Passenger]);
    assert_eq!(
        driver::accept(&deps, &passenger, &trip_id, &Cause::default())
            .await
            .unwrap_err()
            .status(),
        403
    );
}

#[tokio::test]
async fn status_changes_follow_the_table_and_illegal_ones_send_nothing() {
    let Embedded { deps, bus, .. } = embedded("trips-test-secret-0123");
    let trip_id = new_trip(&deps, TripType::Shared, 4).await;
    let d = user("dan", &[Role::Driver]);
    driver::accept(&deps, &d, &trip_id, &Cause::default()).await.unwrap();
    let mut rx = bus.tap();
    let step = |to: TripStatus| UpdateStatus {
        status: to,
        notes: Some(format!("now {to}")),
    };
    let e = driver::update_status(&deps, &d, &trip_id, step(TripStatus::Completed), &Cause::default())
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (409, "illegal_transition"));
    assert!(drain(&mut rx).is_empty(), "an illegal transition sends nothing");
    let other = user("other", &[Role::Driver]);
    assert_eq!(
        driver::update_status(&deps, &other, &trip_id, step(TripStatus::Departed), &Cause::default())
            .await
            .unwrap_err()
            .status(),
        403
    );
    for to in [TripStatus::Departed, TripStatus::Arrived, TripStatus::Completed] {
        let t = driver::update_status(&deps, &d, &trip_id, step(to), &Cause::default())
            .await
            .unwrap();
        assert_eq!(t.status, to);
    }
    assert_eq!(drain(&mut rx), vec!["trip.status.updated"; 3]);
    let e = driver::update_status(&deps, &d, &trip_id, step(TripStatus::Cancelled), &Cause::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "illegal_transition");
    let history = trip::get(&deps, &d, &trip_id).await.unwrap().status_history.unwrap();
    let steps: Vec<TripStatus> = history.iter().map(|h| h.new_status).collect();
    assert_eq!(
        steps,
        vec![
            TripStatus::Published,
            TripStatus::InProgress,
            TripStatus::Departed,
            TripStatus::Arrived,
            TripStatus::Completed
        ]
    );
    assert_eq!(history[2].notes.as_deref(), Some("now DEPARTED"));
}

#[tokio::test]
async fn trip_channels_are_for_the_trip_parties() {
    let Embedded { deps, .. } = embedded("trips-test-secret-0123");
    let trip_id = new_trip(&deps, TripType::Shared, 4).await;
    let t = deps.table.as_ref();
    book(&deps, "ann", &trip_id, 1, None).await;
    assert!(realtime_domain::trips::access::may_follow(t, "org", &[], &trip_id).await.unwrap());
    assert!(realtime_domain::trips::access::may_follow(t, "ann", &[], &trip_id).await.unwrap());
    assert!(!realtime_domain::trips::access::may_follow(t, "eve", &[], &trip_id).await.unwrap());
    assert!(realtime_domain::trips::access::may_follow(t, "eve", &[Role::Admin], &trip_id)
        .await
        .unwrap());
    assert!(!realtime_domain::trips::access::may_follow(t, "dan", &[Role::Driver], &trip_id)
        .await
        .unwrap());
    driver::accept(&deps, &user("dan", &[Role::Driver]), &trip_id, &Cause::default())
        .await
        .unwrap();
    assert!(realtime_domain::trips::access::may_follow(t, "dan", &[Role::Driver], &trip_id)
        .await
        .unwrap());
    assert!(!realtime_domain::trips::access::may_follow(t, "org", &[], "no-such-trip")
        .await
        .unwrap());
}
