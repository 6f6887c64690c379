//! Bookings: seats are taken in ONE transaction that books and decrements the trip's
//! `availableSeats` only if the trip is unchanged since it was read (its `version`) and
//! enough seats remain, so seats never go negative and a trip is never overbooked, however
//! many requests race. Cancelling gives the seats back exactly once (the booking's status
//! is the condition).

use super::error::TripError;
use super::model::{booking_of, load, Booking, BookingStatus, Trip};
use super::{stamp, BookingCancelled, BookingConfirmed, TripStatus, ATTEMPTS, MAX_NOTES, MAX_SEATS};
use crate::auth::{Claims, Role};
use crate::deps::Deps;
use crate::error::text;
use crate::events::{Cause, Envelope, Event};
use crate::idempotency::{Answer, Key};
use crate::ids::{BookingId, TripId};
use crate::keys;
use crate::outbox;
use crate::ports::table::{GSI1PK, GSI1SK};
use crate::ports::{Condition, Item, TableError, TxOp, Update};
use crate::retry::CONTENDED;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /api/bookings`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBooking {
    pub trip_id: TripId,
    pub seats_booked: u32,
}

/// `PATCH /api/bookings/{id}`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchBooking {
    /// Only `cancel` so far.
    pub action: String,
    #[serde(default)]
    #[schemars(length(min = 1, max = super::MAX_NOTES))]
    pub reason: Option<String>,
}

/// `POST /api/passengers/bookings/{bookingId}/cancel` (the body is optional).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelBooking {
    #[serde(default)]
    #[schemars(length(min = 1, max = super::MAX_NOTES))]
    pub reason: Option<String>,
}

/// A booking as answered: with the trip's seats after the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookingAnswer {
    #[serde(flatten)]
    pub booking: Booking,
    pub available_seats: u32,
    pub total_seats: u32,
}

fn booking_item(b: &Booking) -> Item {
    let mut item = Item::new(keys::trip(&b.trip_id), keys::booking(&b.booking_id));
    if let Ok(Value::Object(attrs)) = serde_json::to_value(b) {
        item.attrs = attrs;
    }
    // A passenger's bookings, by the index.
    item.with(GSI1PK, keys::user(&b.passenger_id))
        .with(GSI1SK, keys::booking(&b.booking_id))
}

/// The update of the trip's `META` that moves `delta` seats, only if the trip is still
/// the one that was read (and, defensively, only if the seats stay within bounds).
fn seats_op(trip: &Trip, delta: i64, now: DateTime<Utc>) -> TxOp {
    let mut cond = vec![Condition::Eq("version".into(), trip.version.into())];
    if delta < 0 {
        cond.push(Condition::Ge("availableSeats".into(), (-delta) as f64));
    }
    TxOp::Update {
        pk: keys::trip(&trip.trip_id),
        sk: keys::META.into(),
        updates: vec![
            Update::Add("availableSeats".into(), delta),
            Update::Add("version".into(), 1),
            Update::Set("updatedAt".into(), stamp(now).into()),
        ],
        cond: Some(Condition::And(cond)),
    }
}

/// The passenger's seat count on the trip: what `trip:{id}` authorization reads.
fn passenger_op(trip_id: &str, user_id: &str, seats: i64, bookings: i64) -> TxOp {
    TxOp::Update {
        pk: keys::trip(trip_id),
        sk: keys::passenger(user_id),
        updates: vec![
            Update::Set("userId".into(), user_id.into()),
            Update::Add("seats".into(), seats),
            Update::Add("activeBookings".into(), bookings),
        ],
        cond: None,
    }
}

fn answer_json(a: &BookingAnswer) -> Value {
    serde_json::to_value(a).unwrap_or_default()
}

/// A refusal: stored as the key's first answer (so a retry gets the same), then returned.
async fn refuse(deps: &Deps, idem: Option<&Key>, e: TripError) -> Result<(u16, Value), TripError> {
    let Some(k) = idem else { return Err(e) };
    // Stored as the API answered it, so that a retry gets the very same answer.
    let answered = crate::error::ApiError::from(e);
    let stored = k
        .remember(
            deps.table.as_ref(),
            Answer {
                status: answered.status(),
                body: answered.body(),
            },
        )
        .await?;
    Ok((stored.status, stored.body))
}

/// Books seats for the caller: `(status, body)` of the answer (201 and the booking, or
/// the answer stored under the request's `Idempotency-Key`).
pub async fn create(deps: &Deps, user: &Claims, req: CreateBooking, idem: Option<Key>, cause: &Cause) -> Result<(u16, Value), TripError> {
    if !(1..=MAX_SEATS).contains(&req.seats_booked) {
        return Err(TripError::Invalid(format!("seatsBooked must be between 1 and {MAX_SEATS}")));
    }
    let table = deps.table.as_ref();
    for attempt in 0..ATTEMPTS {
        if let Some(k) = &idem {
            if let Some(a) = k.lookup(table).await? {
                return Ok((a.status, a.body));
            }
        }
        let trip = load(table, &req.trip_id).await?;
        if !trip.status.is_bookable() {
            let e = TripError::conflict("trip_not_bookable", format!("trip {} is {}", trip.trip_id, trip.status));
            return refuse(deps, idem.as_ref(), e).await;
        }
        if trip.available_seats < req.seats_booked {
            let e = TripError::conflict(
                "not_enough_seats",
                format!("{} seat(s) left, {} asked", trip.available_seats, req.seats_booked),
            );
            return refuse(deps, idem.as_ref(), e).await;
        }
        let now = Utc::now();
        let booking = Booking {
            booking_id: ulid::Ulid::new().to_string(),
            trip_id: trip.trip_id.to_string(),
            passenger_id: user.sub.clone(),
            passenger_name: user.display_name().to_string(),
            seats_booked: req.seats_booked,
            status: if trip.driver_id.is_some() {
                BookingStatus::Confirmed
            } else {
                BookingStatus::Pending
            },
            created_at: now,
            updated_at: now,
            cancel_reason: None,
        };
        let answer = BookingAnswer {
            booking: booking.clone(),
            available_seats: trip.available_seats - req.seats_booked,
            total_seats: trip.total_seats,
        };
        let events = [Envelope::new(
            Event::BookingConfirmed(BookingConfirmed {
                trip_id: trip.trip_id.to_string(),
                trip_type: trip.trip_type,
                booking_id: booking.booking_id.clone(),
                passenger_id: booking.passenger_id.clone(),
                passenger_name: booking.passenger_name.clone(),
                seats_booked: booking.seats_booked,
                booking_status: booking.status.as_str().into(),
                available_seats: answer.available_seats,
                total_seats: trip.total_seats,
            }),
            cause,
        )];
        let pointer = Item::new(keys::booking(&booking.booking_id), keys::META)
            .with("tripId", trip.trip_id.as_str())
            .with("passengerId", user.sub.as_str());
        let mut ops = vec![
            seats_op(&trip, -i64::from(req.seats_booked), now),
            TxOp::Put {
                item: booking_item(&booking),
                cond: Some(Condition::NotExists),
            },
            passenger_op(&trip.trip_id, &user.sub, i64::from(req.seats_booked), 1),
            TxOp::Put {
                item: pointer,
                cond: Some(Condition::NotExists),
            },
        ];
        let idem_at = ops.len();
        if let Some(k) = &idem {
            ops.push(k.put_op(&Answer {
                status: 201,
                body: answer_json(&answer),
            }));
        }
        match outbox::commit(deps, ops, &events).await {
            Ok(_) => {
                tracing::info!(booking_id = %booking.booking_id, trip_id = %trip.trip_id, seats = booking.seats_booked, left = answer.available_seats, "booking confirmed");
                return Ok((201, answer_json(&answer)));
            }
            // Another request with this key finished first: its answer is the answer.
            Err(TableError::TransactionCanceled { failed }) if idem.is_some() && failed.contains(&idem_at) => continue,
            // The trip changed since it was read (another booking took seats): read it again.
            Err(TableError::TransactionCanceled { .. }) => CONTENDED.sleep(attempt / 4).await,
            Err(TableError::Transient(_)) => CONTENDED.sleep(attempt).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(TripError::Busy("the trip is busy; retry the booking".into()))
}

/// Cancels a booking (its passenger or an admin) and gives its seats back, exactly once:
/// cancelling a cancelled booking answers it again and announces nothing.
pub async fn cancel(
    deps: &Deps,
    user: &Claims,
    booking_id: &BookingId,
    reason: Option<String>,
    cause: &Cause,
) -> Result<BookingAnswer, TripError> {
    let reason = reason.map(|r| text("reason", &r, MAX_NOTES)).transpose()?;
    let table = deps.table.as_ref();
    let not_found = || TripError::NotFound(format!("booking {booking_id} not found"));
    let pointer = table.get(&keys::booking(booking_id), keys::META).await?.ok_or_else(not_found)?;
    let trip_id = pointer.str("tripId").ok_or_else(not_found)?.to_string();
    for attempt in 0..ATTEMPTS {
        let booking = table
            .get(&keys::trip(&trip_id), &keys::booking(booking_id))
            .await?
            .as_ref()
            .and_then(booking_of)
            .ok_or_else(not_found)?;
        if booking.passenger_id != user.sub && !user.has_role(Role::Admin) {
            return Err(TripError::Forbidden("only the booking's passenger cancels it".into()));
        }
        let trip = load(table, &trip_id).await?;
        if booking.status == BookingStatus::Cancelled {
            return Ok(BookingAnswer {
                booking,
                available_seats: trip.available_seats,
                total_seats: trip.total_seats,
            });
        }
        if matches!(trip.status, TripStatus::Departed | TripStatus::Arrived | TripStatus::Completed) {
            return Err(TripError::conflict(
                "booking_not_cancellable",
                format!("trip {trip_id} is {}", trip.status),
            ));
        }
        let now = Utc::now();
        let mut cancelled = booking.clone();
        cancelled.status = BookingStatus::Cancelled;
        cancelled.updated_at = now;
        cancelled.cancel_reason = reason.clone();
        let available = (trip.available_seats + booking.seats_booked).min(trip.total_seats);
        let events = [Envelope::new(
            Event::BookingCancelled(BookingCancelled {
                trip_id: trip_id.clone(),
                trip_type: trip.trip_type,
                booking_id: booking_id.to_string(),
                passenger_id: booking.passenger_id.clone(),
                passenger_name: booking.passenger_name.clone(),
                seats_freed: booking.seats_booked,
                available_seats: available,
                total_seats: trip.total_seats,
                reason: reason.clone(),
            }),
            cause,
        )];
        let mut updates = vec![
            Update::Set("status".into(), BookingStatus::Cancelled.as_str().into()),
            Update::Set("updatedAt".into(), stamp(now).into()),
        ];
        if let Some(r) = &reason {
            updates.push(Update::Set("cancelReason".into(), r.as_str().into()));
        }
        let ops = vec![
            TxOp::Update {
                pk: keys::trip(&trip_id),
                sk: keys::booking(booking_id),
                updates,
                cond: Some(Condition::Eq("status".into(), booking.status.as_str().into())),
            },
            seats_op(&trip, i64::from(booking.seats_booked), now),
            passenger_op(&trip_id, &booking.passenger_id, -i64::from(booking.seats_booked), -1),
        ];
        match outbox::commit(deps, ops, &events).await {
            Ok(_) => {
                tracing::info!(%booking_id, %trip_id, seats = booking.seats_booked, "booking cancelled");
                revoke_if_no_longer_party(deps, &trip_id, &booking.passenger_id).await;
                return Ok(BookingAnswer {
                    booking: cancelled,
                    available_seats: available,
                    total_seats: trip.total_seats,
                });
            }
            Err(TableError::TransactionCanceled { .. }) => CONTENDED.sleep(attempt / 4).await,
            Err(TableError::Transient(_)) => CONTENDED.sleep(attempt).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(TripError::Busy("the trip is busy; retry the cancellation".into()))
}

/// A passenger whose last booking on a trip is cancelled is no longer a party of it: the
/// subscriptions of their open connections to the trip's channel end too (best effort; a
/// new subscribe is refused anyway).
async fn revoke_if_no_longer_party(deps: &Deps, trip_id: &str, user_id: &str) {
    let table = deps.table.as_ref();
    match super::access::is_party(table, trip_id, user_id).await {
        Ok(false) => {}
        _ => return,
    }
    let channel = crate::channels::Channel::Trip(trip_id.to_string());
    let subs = match crate::connections::subscribers(table, &channel).await {
        Ok(subs) => subs,
        Err(e) => {
            tracing::warn!(%trip_id, error = %e, "could not read the trip's subscribers");
            return;
        }
    };
    for sub in subs.iter().filter(|s| s.user_id == user_id) {
        if let Err(e) = crate::connections::unsubscribe(table, &sub.connection_id, &channel).await {
            tracing::warn!(%trip_id, connection_id = %sub.connection_id, error = %e, "subscription not revoked");
        }
    }
    // They leave the trip's presence (after the grace period, like any leave).
    crate::presence::settle_all(deps, std::slice::from_ref(&channel)).await;
}
