//! What the ride-sharing context refuses, and why. The API answers each refusal as its
//! error (`From<TripError> for ApiError`).

use crate::idempotency::IdempotencyError;
use crate::ports::TableError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum TripError {
    /// A field the trip, booking or status change cannot take.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// Not the organizer, the driver, the passenger; not a driver.
    #[error("{0}")]
    Forbidden(String),
    /// The trip's state refuses it now: `not_enough_seats`, `illegal_transition`,
    /// `trip_taken`, `idempotency_key_reused`...
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Contention outlasted the attempts: the same request may pass later.
    #[error("service busy, retry: {0}")]
    Busy(String),
    /// A stored trip that does not read back.
    #[error("internal error")]
    Corrupt(String),
    #[error(transparent)]
    Table(#[from] TableError),
}

crate::error::context_error!(TripError {
    TripError::Corrupt(m) => ApiError::Internal(m),
});

impl From<IdempotencyError> for TripError {
    fn from(e: IdempotencyError) -> Self {
        match e {
            IdempotencyError::Reused => TripError::conflict("idempotency_key_reused", e.to_string()),
            IdempotencyError::Table(t) => TripError::Table(t),
        }
    }
}
