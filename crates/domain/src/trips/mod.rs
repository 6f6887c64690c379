//! The ride-sharing domain: trips, bookings, driver offers, status updates and the
//! trip-status stream (SSE). What the seeds' unified event emitter did over SSE and
//! Socket.IO, done with the table (state and events in one transaction), the bus and
//! the channels: `trip:{id}` for the trip's parties, `drivers` for offers.
//!
//! Items (one partition per trip, so one Query reads a trip with its bookings and log):
//!
//! | item | pk | sk |
//! |---|---|---|
//! | the trip (seats counted here) | `TRIP#{id}` | `META` |
//! | a booking | `TRIP#{id}` | `BOOKING#{bookingId}` (gsi1: `USER#{passenger}` / `BOOKING#{bookingId}`) |
//! | a passenger's seats on the trip | `TRIP#{id}` | `PASSENGER#{userId}` |
//! | the status log | `TRIP#{id}` | `STATUS#{time}` |
//! | booking id → trip | `BOOKING#{bookingId}` | `META` |
//! | a busy driver (on an accepted trip not yet completed or cancelled) | `DRIVERS#BUSY` | `{driverId}` (with `tripId`) |
//! | an idempotent request's first answer | `IDEM#{scope}#{key}` | `META` (TTL) |

pub mod access;
pub mod availability;
pub mod booking;
pub mod driver;
pub mod error;
pub mod model;
pub mod offer;
pub mod payloads;
pub mod sse;
pub mod trip;

pub use error::TripError;
pub use model::*;
pub use payloads::{BookingCancelled, BookingConfirmed, TripCreated, TripOfferCreated, TripStatusUpdated};
