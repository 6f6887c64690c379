//! The ride-sharing records: trips and bookings, their states and limits, and how they
//! are stored. A leaf of the trips context: every other trips module builds on it.

use super::error::TripError;
use crate::error::text;
use crate::ids::TripId;
use crate::keys;
use crate::ports::table::{GSI1PK, GSI1SK};
use crate::ports::{Item, Table};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Seats a trip may offer: bounded so that accepting a trip (which confirms every
/// pending booking) fits in one transaction of at most 100 items.
pub const MAX_SEATS: u32 = 50;
/// Longest title and place name.
pub const MAX_TITLE: usize = 200;
pub const MAX_PLACE: usize = 120;
pub const MAX_NOTES: usize = 500;
/// Transactions retried under contention (another booking took the seats first, a
/// DynamoDB transaction conflict) before the request answers 503.
pub const ATTEMPTS: u32 = 40;

/// A trip's lifecycle (API.md "Trip statuses").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TripStatus {
    Draft,
    Published,
    InProgress,
    Departed,
    Arrived,
    Completed,
    Cancelled,
}

impl TripStatus {
    pub const ALL: [TripStatus; 7] = [
        TripStatus::Draft,
        TripStatus::Published,
        TripStatus::InProgress,
        TripStatus::Departed,
        TripStatus::Arrived,
        TripStatus::Completed,
        TripStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TripStatus::Draft => "DRAFT",
            TripStatus::Published => "PUBLISHED",
            TripStatus::InProgress => "IN_PROGRESS",
            TripStatus::Departed => "DEPARTED",
            TripStatus::Arrived => "ARRIVED",
            TripStatus::Completed => "COMPLETED",
            TripStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The legal transitions (the one table every status change goes through):
    ///
    /// | from | to |
    /// |---|---|
    /// | DRAFT | PUBLISHED, CANCELLED |
    /// | PUBLISHED | IN_PROGRESS (a driver accepts), CANCELLED |
    /// | IN_PROGRESS | DEPARTED, CANCELLED |
    /// | DEPARTED | ARRIVED, CANCELLED |
    /// | ARRIVED | COMPLETED |
    /// | COMPLETED, CANCELLED | nothing (final) |
    pub fn can_become(self, to: TripStatus) -> bool {
        use TripStatus::*;
        matches!(
            (self, to),
            (Draft, Published)
                | (Draft, Cancelled)
                | (Published, InProgress)
                | (Published, Cancelled)
                | (InProgress, Departed)
                | (InProgress, Cancelled)
                | (Departed, Arrived)
                | (Departed, Cancelled)
                | (Arrived, Completed)
        )
    }

    pub fn is_final(self) -> bool {
        matches!(self, TripStatus::Completed | TripStatus::Cancelled)
    }

    /// Seats may be booked while the trip waits for a driver or before it departs.
    pub fn is_bookable(self) -> bool {
        matches!(self, TripStatus::Published | TripStatus::InProgress)
    }
}

impl std::fmt::Display for TripStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TripType {
    /// The whole vehicle for one party: offered to drivers when published.
    Private,
    /// Seats sold to several passengers.
    Shared,
}

impl TripType {
    pub fn as_str(self) -> &'static str {
        match self {
            TripType::Private => "PRIVATE",
            TripType::Shared => "SHARED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Place {
    pub name: String,
    pub lat: f64,
    pub lng: f64,
}

impl Place {
    pub fn validate(&self, field: &str) -> Result<Place, TripError> {
        let name = text(&format!("{field}.name"), &self.name, MAX_PLACE)?;
        if !(self.lat.is_finite() && (-90.0..=90.0).contains(&self.lat)) {
            return Err(TripError::Invalid(format!("{field}.lat must be between -90 and 90")));
        }
        if !(self.lng.is_finite() && (-180.0..=180.0).contains(&self.lng)) {
            return Err(TripError::Invalid(format!("{field}.lng must be between -180 and 180")));
        }
        Ok(Place {
            name,
            lat: self.lat,
            lng: self.lng,
        })
    }
}

/// A trip as stored on its `META` item and answered by `GET /api/trips/{tripId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Trip {
    pub trip_id: TripId,
    pub title: String,
    pub trip_type: TripType,
    pub status: TripStatus,
    pub organizer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_name: Option<String>,
    pub origin: Place,
    pub destination: Place,
    pub departure_time: DateTime<Utc>,
    pub total_seats: u32,
    pub available_seats: u32,
    /// In the smallest unit of the deployment's currency.
    pub price_per_seat: u64,
    /// Great-circle distance from origin to destination (`offer::haversine_km`).
    pub distance_km: f64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every change of the item, so a transaction can require "unchanged since read".
    #[serde(default)]
    pub version: u64,
}

pub fn id_param(field: &str, id: &str) -> Result<(), TripError> {
    if crate::ids::valid_id(id) {
        Ok(())
    } else {
        Err(TripError::Invalid(format!("{field} must be 1-64 letters, digits, - or _")))
    }
}

/// Times in sort keys and attributes: fixed width, so they sort as they compare.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BookingStatus {
    /// Seats held; the trip has no driver yet (confirmed when a driver accepts).
    Pending,
    Confirmed,
    Cancelled,
}

impl BookingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::Pending => "PENDING",
            BookingStatus::Confirmed => "CONFIRMED",
            BookingStatus::Cancelled => "CANCELLED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Booking {
    pub booking_id: String,
    pub trip_id: String,
    pub passenger_id: String,
    pub passenger_name: String,
    pub seats_booked: u32,
    pub status: BookingStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
}

impl Booking {
    pub fn is_active(&self) -> bool {
        self.status != BookingStatus::Cancelled
    }
}

pub fn booking_of(item: &Item) -> Option<Booking> {
    serde_json::from_value(Value::Object(item.attrs.clone())).ok()
}

pub fn trip_item(trip: &Trip) -> Item {
    let mut item = Item::new(keys::trip(&trip.trip_id), keys::META);
    if let Ok(Value::Object(attrs)) = serde_json::to_value(trip) {
        item.attrs = attrs;
    }
    // The organizer's trips, by the index.
    item.with(GSI1PK, keys::user(&trip.organizer_id))
        .with(GSI1SK, keys::trip(&trip.trip_id))
}

pub fn trip_of(item: &Item) -> Result<Trip, TripError> {
    serde_json::from_value(Value::Object(item.attrs.clone())).map_err(|e| TripError::Corrupt(format!("corrupt trip {}: {e}", item.pk)))
}

/// The trip, or 404.
pub async fn load(table: &dyn Table, trip_id: &str) -> Result<Trip, TripError> {
    match table.get(&keys::trip(trip_id), keys::META).await? {
        Some(item) => trip_of(&item),
        None => Err(TripError::NotFound(format!("trip {trip_id} not found"))),
    }
}

#[cfg(test)]
mod table_tests {
    use super::*;

    #[test]
    fn the_transition_table() {
        use TripStatus::*;
        let legal: Vec<(TripStatus, TripStatus)> = TripStatus::ALL
            .into_iter()
            .flat_map(|a| TripStatus::ALL.into_iter().map(move |b| (a, b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(
            legal,
            vec![
                (Draft, Published),
                (Draft, Cancelled),
                (Published, InProgress),
                (Published, Cancelled),
                (InProgress, Departed),
                (InProgress, Cancelled),
                (Departed, Arrived),
                (Departed, Cancelled),
                (Arrived, Completed),
            ]
        );
        for s in TripStatus::ALL {
            assert_eq!(TripStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert!(!s.can_become(s), "{s} -> {s}");
            if s.is_final() {
                assert!(TripStatus::ALL.iter().all(|t| !s.can_become(*t)));
            }
        }
        assert_eq!(TripStatus::parse("LOST"), None);
    }
}
