//! Drivers: accepting a trip (exactly one driver wins) and moving it along the legal
//! transitions of `TripStatus::can_become`, each step kept in the trip's status log and
//! announced as `trip.status.updated`. A driver is busy from its acceptance until the
//! trip is COMPLETED or CANCELLED (`super::availability`), and takes no other trip meanwhile.

use super::availability::{self, DRIVER_BUSY};
use super::error::TripError;
use super::model::{booking_of, load, BookingStatus};
use super::trip::{offer_event, status_entry_op, StatusEntry};
use super::Trip;
use super::{stamp, TripStatus, TripStatusUpdated, ATTEMPTS, MAX_NOTES};
use crate::auth::{Claims, Role};
use crate::deps::Deps;
use crate::error::text;
use crate::events::{Cause, Envelope, Event, Priority};
use crate::ids::TripId;
use crate::keys;
use crate::outbox;
use crate::ports::table::query_all;
use crate::ports::{Condition, Query, TableError, TxOp, Update};
use crate::retry::CONTENDED;
use chrono::{DateTime, Utc};
use serde::Deserialize;

pub use super::availability::{availability, Availability, DriverStatus};

/// `PUT /api/drivers/trips/{tripId}/status`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateStatus {
    pub status: TripStatus,
    #[serde(default)]
    #[schemars(length(min = 1, max = super::MAX_NOTES))]
    pub notes: Option<String>,
}

fn status_event(
    trip: &Trip,
    from: TripStatus,
    to: TripStatus,
    by: &str,
    notes: Option<String>,
    at: DateTime<Utc>,
    cause: &Cause,
) -> Envelope {
    Envelope::new(
        Event::TripStatusUpdated(TripStatusUpdated {
            trip_id: trip.trip_id.to_string(),
            trip_title: trip.title.clone(),
            previous_status: from,
            new_status: to,
            driver_id: trip.driver_id.clone(),
            driver_name: trip.driver_name.clone(),
            notes,
            origin_name: trip.origin.name.clone(),
            dest_name: trip.destination.name.clone(),
            updated_by: by.to_string(),
            updated_at: at,
        }),
        cause,
    )
    .with_priority(Priority::High)
}

/// A driver takes a published trip: the trip gets its driver and goes IN_PROGRESS, its
/// pending bookings are confirmed, all in one transaction that holds only if the trip
/// is unchanged since it was read. Of drivers racing for one trip exactly one wins;
/// the others get 409 `already_accepted`. The driver becomes busy in the same
/// transaction, only if it is on no other trip (else 409 `driver_busy`).
pub async fn accept(deps: &Deps, user: &Claims, trip_id: &TripId, cause: &Cause) -> Result<Trip, TripError> {
    if !user.has_role(Role::Driver) {
        return Err(TripError::Forbidden("only drivers accept trips".into()));
    }
    let table = deps.table.as_ref();
    for attempt in 0..ATTEMPTS {
        // The trip first, then its bookings: a booking made after this read changes the
        // trip's version, which fails the transaction below, so none is left pending.
        let trip = load(table, trip_id).await?;
        if trip.driver_id.is_some() {
            return Err(TripError::conflict(
                "already_accepted",
                format!("trip {trip_id} already has a driver"),
            ));
        }
        if trip.status != TripStatus::Published {
            return Err(TripError::conflict(
                "illegal_transition",
                format!("trip {trip_id} is {}, not PUBLISHED", trip.status),
            ));
        }
        // Checked again by the transaction (the busy item is written only if absent): of
        // two acceptances by one driver at once, the loser reads the winner's item here.
        if let Some(on) = availability::busy_trip(table, &user.sub).await? {
            return Err(TripError::conflict(
                DRIVER_BUSY,
                format!("driver {} is on trip {on} until it is completed or cancelled", user.sub),
            ));
        }
        let pending: Vec<_> = query_all(table, Query::new(keys::trip(trip_id)).begins_with(keys::BOOKING_PREFIX))
            .await?
            .iter()
            .filter_map(booking_of)
            .filter(|b| b.status == BookingStatus::Pending)
            .collect();
        let now = Utc::now();
        let mut accepted = trip.clone();
        accepted.status = TripStatus::InProgress;
        accepted.driver_id = Some(user.sub.clone());
        accepted.driver_name = Some(user.display_name().to_string());
        accepted.updated_at = now;
        accepted.version += 1;
        let notes = Some(format!("{} has accepted your trip", user.display_name()));
        let events = [status_event(
            &accepted,
            TripStatus::Published,
            TripStatus::InProgress,
            &user.sub,
            notes.clone(),
            now,
            cause,
        )];
        let mut ops = vec![
            TxOp::Update {
                pk: keys::trip(trip_id),
                sk: keys::META.into(),
                updates: vec![
                    Update::Set("status".into(), TripStatus::InProgress.as_str().into()),
                    Update::Set("driverId".into(), user.sub.as_str().into()),
                    Update::Set("driverName".into(), user.display_name().into()),
                    Update::Set("updatedAt".into(), stamp(now).into()),
                    Update::Add("version".into(), 1),
                ],
                cond: Some(Condition::And(vec![
                    Condition::Eq("version".into(), trip.version.into()),
                    Condition::Eq("status".into(), TripStatus::Published.as_str().into()),
                    Condition::AttrNotExists("driverId".into()),
                ])),
            },
            status_entry_op(
                trip_id,
                &StatusEntry {
                    previous_status: Some(TripStatus::Published),
                    new_status: TripStatus::InProgress,
                    updated_by: user.sub.clone(),
                    notes,
                    at: now,
                },
            ),
        ];
        // The offer is taken: drivers who subscribe from now on are not offered it.
        ops.push(super::offer::close_offer_op(trip_id));
        ops.push(availability::busy_op(&user.sub, trip_id, now));
        for b in &pending {
            ops.push(TxOp::Update {
                pk: keys::trip(trip_id),
                sk: keys::booking(&b.booking_id),
                updates: vec![
                    Update::Set("status".into(), BookingStatus::Confirmed.as_str().into()),
                    Update::Set("updatedAt".into(), stamp(now).into()),
                ],
                cond: Some(Condition::Eq("status".into(), BookingStatus::Pending.as_str().into())),
            });
        }
        match outbox::commit(deps, ops, &events).await {
            Ok(_) => {
                tracing::info!(%trip_id, driver = %user.sub, confirmed = pending.len(), "trip accepted");
                return Ok(accepted);
            }
            // Another driver (or a booking) changed the trip: read it again to see which.
            Err(TableError::TransactionCanceled { .. }) => CONTENDED.sleep(attempt / 4).await,
            Err(TableError::Transient(_)) => CONTENDED.sleep(attempt).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(TripError::Busy("the trip is busy; retry".into()))
}

/// Who may move a trip from `from` to `to`: its driver and admins any legal step; its
/// organizer may publish a draft and cancel before a driver takes it.
fn may_update(user: &Claims, trip: &Trip, from: TripStatus, to: TripStatus) -> bool {
    if user.has_role(Role::Admin) || trip.driver_id.as_deref() == Some(user.sub.as_str()) {
        return true;
    }
    trip.organizer_id == user.sub
        && matches!(
            (from, to),
            (TripStatus::Draft, TripStatus::Published)
                | (TripStatus::Draft, TripStatus::Cancelled)
                | (TripStatus::Published, TripStatus::Cancelled)
        )
}

/// Moves the trip to `req.status` if that is a legal step from where it is (else 409
/// `illegal_transition`, and nothing is written or sent).
pub async fn update_status(deps: &Deps, user: &Claims, trip_id: &TripId, req: UpdateStatus, cause: &Cause) -> Result<Trip, TripError> {
    let notes = req.notes.as_deref().map(|n| text("notes", n, MAX_NOTES)).transpose()?;
    let to = req.status;
    let table = deps.table.as_ref();
    for attempt in 0..ATTEMPTS {
        let trip = load(table, trip_id).await?;
        let from = trip.status;
        let party = user.has_role(Role::Admin) || trip.organizer_id == user.sub || trip.driver_id.as_deref() == Some(user.sub.as_str());
        if !party {
            return Err(TripError::Forbidden(format!("not the driver of trip {trip_id}")));
        }
        if !from.can_become(to) {
            return Err(TripError::conflict(
                "illegal_transition",
                format!("a {from} trip cannot become {to}"),
            ));
        }
        if from == TripStatus::Published && to == TripStatus::InProgress {
            return Err(TripError::conflict(
                "illegal_transition",
                format!("a driver takes a trip with POST /api/drivers/trips/accept/{trip_id}"),
            ));
        }
        if !may_update(user, &trip, from, to) {
            return Err(TripError::Forbidden(format!(
                "not allowed to move trip {trip_id} from {from} to {to}"
            )));
        }
        let now = Utc::now();
        let mut updated = trip.clone();
        updated.status = to;
        updated.updated_at = now;
        updated.version += 1;
        let mut events = vec![status_event(&updated, from, to, &user.sub, notes.clone(), now, cause)];
        // A private draft that is published now goes to the drivers.
        let offer = offer_event(&updated, now, cause);
        events.extend(offer.clone());
        let mut ops = vec![
            TxOp::Update {
                pk: keys::trip(trip_id),
                sk: keys::META.into(),
                updates: vec![
                    Update::Set("status".into(), to.as_str().into()),
                    Update::Set("updatedAt".into(), stamp(now).into()),
                    Update::Add("version".into(), 1),
                ],
                cond: Some(Condition::Eq("status".into(), from.as_str().into())),
            },
            status_entry_op(
                trip_id,
                &StatusEntry {
                    previous_status: Some(from),
                    new_status: to,
                    updated_by: user.sub.clone(),
                    notes: notes.clone(),
                    at: now,
                },
            ),
        ];
        match &offer {
            Some(o) => ops.push(super::offer::open_offer_op(
                o,
                trip_id,
                super::offer::acceptance_deadline(updated.departure_time, now),
            )),
            None if to == TripStatus::Cancelled => ops.push(super::offer::close_offer_op(trip_id)),
            None => {}
        }
        // The trip's end frees its driver (if the busy item is this trip's: a trip accepted
        // before availability existed has none, and its driver may be on another).
        if to.is_final() {
            if let Some(driver) = &trip.driver_id {
                if availability::busy_trip(table, driver).await?.as_deref() == Some(&**trip_id) {
                    ops.push(availability::free_op(driver, trip_id));
                }
            }
        }
        match outbox::commit(deps, ops, &events).await {
            Ok(_) => {
                tracing::info!(%trip_id, %from, %to, by = %user.sub, "trip status updated");
                return Ok(updated);
            }
            // The status moved meanwhile: judge the step again from where it is now.
            Err(TableError::TransactionCanceled { .. }) => CONTENDED.sleep(attempt / 4).await,
            Err(TableError::Transient(_)) => CONTENDED.sleep(attempt).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(TripError::Busy("the trip is busy; retry".into()))
}
