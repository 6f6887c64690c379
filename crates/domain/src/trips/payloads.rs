//! The payloads (`data`) of the ride-sharing events. Every one carries `tripId`, so
//! `channels::channels_for` sends it to `trip:{id}` (the trip's organizer, driver and
//! passengers with a booking); `trip.offer.created` also goes to `drivers`. They carry
//! nothing those members may not see: no contact details, no payment data.

use super::model::{Place, TripStatus, TripType};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `trip.created`: a trip was created (logged on its channel, seen by the admin stream).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TripCreated {
    pub trip_id: String,
    pub trip_type: TripType,
    pub title: String,
    pub organizer_id: String,
    pub status: TripStatus,
    pub departure_time: DateTime<Utc>,
    pub total_seats: u32,
}

/// `trip.status.updated`: one step of the trip's lifecycle (also the SSE `status_update`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TripStatusUpdated {
    pub trip_id: String,
    pub trip_title: String,
    pub previous_status: TripStatus,
    pub new_status: TripStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub origin_name: String,
    pub dest_name: String,
    pub updated_by: String,
    pub updated_at: DateTime<Utc>,
}

/// `trip.offer.created`: a private trip waits for a driver. Drivers filter on `distanceKm`,
/// `estimatedEarnings` and `tripType` (`driver:subscribe`). The organizer is not named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TripOfferCreated {
    pub trip_id: String,
    pub trip_type: TripType,
    pub title: String,
    pub origin: Place,
    pub destination: Place,
    pub departure_time: DateTime<Utc>,
    pub total_seats: u32,
    pub price_per_seat: u64,
    /// `pricePerSeat × totalSeats` (see `offer::estimated_earnings`).
    pub estimated_earnings: u64,
    /// Great-circle distance, km, one decimal (see `offer::haversine_km`).
    pub distance_km: f64,
    /// `high` (departs within 2 h), `medium` (within 24 h) or `low`.
    pub urgency: String,
    /// Until when a driver should accept (see `offer::acceptance_deadline`).
    pub acceptance_deadline: DateTime<Utc>,
}

/// `booking.confirmed`: seats were booked (held for the passenger). `bookingStatus` is
/// `CONFIRMED` when the trip has a driver, else `PENDING` until a driver accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookingConfirmed {
    pub trip_id: String,
    pub trip_type: TripType,
    pub booking_id: String,
    pub passenger_id: String,
    pub passenger_name: String,
    pub seats_booked: u32,
    pub booking_status: String,
    pub available_seats: u32,
    pub total_seats: u32,
}

/// `booking.cancelled`: a booking was cancelled and its seats given back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookingCancelled {
    pub trip_id: String,
    pub trip_type: TripType,
    pub booking_id: String,
    pub passenger_id: String,
    pub passenger_name: String,
    pub seats_freed: u32,
    pub available_seats: u32,
    pub total_seats: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
