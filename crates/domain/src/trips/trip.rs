//! Creating and reading trips.

use super::error::TripError;
use super::model::{booking_of, trip_item, trip_of, Booking};
use super::{offer, stamp, Place, Trip, TripCreated, TripStatus, TripType, MAX_SEATS, MAX_TITLE};
use crate::auth::{Claims, Role};
use crate::deps::Deps;
use crate::error::text;
use crate::events::{Cause, Envelope, Event, Priority};
use crate::ids::TripId;
use crate::keys;
use crate::outbox;
use crate::ports::table::query_all;
use crate::ports::{Condition, Item, Query, TxOp};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Prices above this are refused as a typo (the smallest currency unit).
pub const MAX_PRICE: u64 = 1_000_000_000;

/// `POST /api/trips`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTrip {
    #[schemars(length(min = 1, max = super::MAX_TITLE))]
    pub title: String,
    pub trip_type: TripType,
    /// `DRAFT` or `PUBLISHED` (the default).
    #[serde(default)]
    pub status: Option<TripStatus>,
    pub origin: Place,
    pub destination: Place,
    pub departure_time: DateTime<Utc>,
    pub total_seats: u32,
    pub price_per_seat: u64,
}

/// One entry of a trip's status log (`STATUS#{time}` items).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_status: Option<TripStatus>,
    pub new_status: TripStatus,
    pub updated_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub at: DateTime<Utc>,
}

/// `GET /api/trips/{tripId}`: the trip; for its parties also its status log, and the
/// bookings the caller may see (all of them for the organizer, the driver and admins;
/// a passenger's own).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TripView {
    #[serde(flatten)]
    pub trip: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bookings: Option<Vec<Booking>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_history: Option<Vec<StatusEntry>>,
}

pub(crate) fn status_entry_op(trip_id: &str, entry: &StatusEntry) -> TxOp {
    let mut item = Item::new(keys::trip(trip_id), keys::trip_status(&stamp(entry.at)));
    if let Ok(Value::Object(attrs)) = serde_json::to_value(entry) {
        item.attrs = attrs;
    }
    TxOp::Put {
        item,
        cond: Some(Condition::NotExists),
    }
}

/// The offer event of a trip that drivers should see, if it is one.
pub(crate) fn offer_event(trip: &Trip, now: DateTime<Utc>, cause: &Cause) -> Option<Envelope> {
    if trip.trip_type != TripType::Private || trip.status != TripStatus::Published || trip.driver_id.is_some() {
        return None;
    }
    let offer = offer::offer_for(trip, now);
    let priority = if offer.urgency == "high" {
        Priority::High
    } else {
        Priority::Normal
    };
    Some(Envelope::new(Event::TripOfferCreated(offer), cause).with_priority(priority))
}

/// Creates a trip (organizers and admins): `trip.created`, and `trip.offer.created` to
/// the `drivers` channel when it is private, published and without a driver.
pub async fn create(deps: &Deps, user: &Claims, req: CreateTrip, cause: &Cause) -> Result<Trip, TripError> {
    if !(user.has_role(Role::Organizer) || user.has_role(Role::Admin)) {
        return Err(TripError::Forbidden("only organizers create trips".into()));
    }
    let title = text("title", &req.title, MAX_TITLE)?;
    let origin = req.origin.validate("origin")?;
    let destination = req.destination.validate("destination")?;
    let status = req.status.unwrap_or(TripStatus::Published);
    if !matches!(status, TripStatus::Draft | TripStatus::Published) {
        return Err(TripError::Invalid("a new trip's status is DRAFT or PUBLISHED".into()));
    }
    if !(1..=MAX_SEATS).contains(&req.total_seats) {
        return Err(TripError::Invalid(format!("totalSeats must be between 1 and {MAX_SEATS}")));
    }
    if req.price_per_seat > MAX_PRICE {
        return Err(TripError::Invalid(format!("pricePerSeat must be at most {MAX_PRICE}")));
    }
    let now = Utc::now();
    if req.departure_time < now - Duration::minutes(5) {
        return Err(TripError::Invalid("departureTime must not be in the past".into()));
    }
    let trip = Trip {
        trip_id: TripId::generate(),
        title,
        trip_type: req.trip_type,
        status,
        organizer_id: user.sub.clone(),
        driver_id: None,
        driver_name: None,
        distance_km: offer::haversine_km(&origin, &destination),
        origin,
        destination,
        departure_time: req.departure_time,
        total_seats: req.total_seats,
        available_seats: req.total_seats,
        price_per_seat: req.price_per_seat,
        created_at: now,
        updated_at: now,
        version: 1,
    };
    let mut events = vec![Envelope::new(
        Event::TripCreated(TripCreated {
            trip_id: trip.trip_id.to_string(),
            trip_type: trip.trip_type,
            title: trip.title.clone(),
            organizer_id: trip.organizer_id.clone(),
            status: trip.status,
            departure_time: trip.departure_time,
            total_seats: trip.total_seats,
        }),
        cause,
    )];
    let offer = offer_event(&trip, now, cause);
    events.extend(offer.clone());
    let entry = StatusEntry {
        previous_status: None,
        new_status: status,
        updated_by: user.sub.clone(),
        notes: None,
        at: now,
    };
    let mut ops = vec![
        TxOp::Put {
            item: trip_item(&trip),
            cond: Some(Condition::NotExists),
        },
        status_entry_op(&trip.trip_id, &entry),
    ];
    ops.extend(
        offer
            .as_ref()
            .map(|o| offer::open_offer_op(o, &trip.trip_id, offer::acceptance_deadline(trip.departure_time, now))),
    );
    outbox::commit(deps, ops, &events).await?;
    tracing::info!(trip_id = %trip.trip_id, trip_type = trip.trip_type.as_str(), status = %trip.status, organizer = %trip.organizer_id, "trip created");
    Ok(trip)
}

/// The trip as `user` may see it (a draft only by its organizer and admins).
pub async fn get(deps: &Deps, user: &Claims, trip_id: &TripId) -> Result<TripView, TripError> {
    let items = query_all(deps.table.as_ref(), Query::new(keys::trip(trip_id))).await?;
    let meta = items
        .iter()
        .find(|i| i.sk == keys::META)
        .ok_or_else(|| TripError::NotFound(format!("trip {trip_id} not found")))?;
    let trip = trip_of(meta)?;
    let admin = user.has_role(Role::Admin);
    let staff = admin || trip.organizer_id == user.sub || trip.driver_id.as_deref() == Some(user.sub.as_str());
    if trip.status == TripStatus::Draft && !(admin || trip.organizer_id == user.sub) {
        return Err(TripError::NotFound(format!("trip {trip_id} not found")));
    }
    let bookings: Vec<Booking> = items
        .iter()
        .filter(|i| i.sk.starts_with(keys::BOOKING_PREFIX))
        .filter_map(booking_of)
        .filter(|b| staff || b.passenger_id == user.sub)
        .collect();
    let passenger = bookings.iter().any(|b| b.passenger_id == user.sub && b.is_active());
    let history: Vec<StatusEntry> = items
        .iter()
        .filter(|i| i.sk.starts_with(keys::STATUS_PREFIX))
        .filter_map(|i| serde_json::from_value(Value::Object(i.attrs.clone())).ok())
        .collect();
    let mut view = serde_json::to_value(&trip).unwrap_or_default();
    if let Value::Object(m) = &mut view {
        m.remove("version");
    }
    let party = staff || passenger;
    Ok(TripView {
        trip: view,
        bookings: party.then_some(bookings),
        status_history: party.then_some(history),
    })
}
