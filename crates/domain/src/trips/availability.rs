//! Driver availability: a driver who accepts a trip is BUSY until that trip is COMPLETED
//! or CANCELLED, and AVAILABLE otherwise (offers reach it while it is connected).
//!
//! One item per busy driver in one partition (`DRIVERS#BUSY` / `{driverId}`, with the
//! `tripId`), written in the acceptance's transaction (only if absent: a busy driver
//! cannot take a second trip, 409 `driver_busy`) and deleted in the transaction that
//! completes or cancels the trip. The fan-out reads the whole set once per offer (one
//! Query, paged) and skips busy drivers' subscriptions on `drivers`.

use super::stamp;
use crate::keys;
use crate::ports::table::query_all;
use crate::ports::{Condition, Item, Query, Table, TableError, TxOp};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// The error code of an accept by a driver already on a trip.
pub const DRIVER_BUSY: &str = "driver_busy";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DriverStatus {
    /// On no trip: gets offers while connected and subscribed to `drivers`.
    Available,
    /// On an accepted trip that is not COMPLETED or CANCELLED yet: gets no offers.
    Busy,
}

/// A driver's own view of its availability (`driverStatus`, `busyTripId`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Availability {
    pub driver_status: DriverStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_trip_id: Option<String>,
}

/// The write (in the acceptance's transaction) that makes `driver_id` busy with
/// `trip_id`; it fails the transaction if the driver is already on a trip.
pub fn busy_op(driver_id: &str, trip_id: &str, at: DateTime<Utc>) -> TxOp {
    TxOp::Put {
        item: Item::new(keys::BUSY_DRIVERS, driver_id)
            .with("tripId", trip_id)
            .with("since", stamp(at)),
        cond: Some(Condition::NotExists),
    }
}

/// The write (in the transaction that completes or cancels `trip_id`) that frees its driver.
pub fn free_op(driver_id: &str, trip_id: &str) -> TxOp {
    TxOp::Delete {
        pk: keys::BUSY_DRIVERS.into(),
        sk: driver_id.into(),
        cond: Some(Condition::Eq("tripId".into(), trip_id.into())),
    }
}

/// The trip `driver_id` is on, if any: one Get.
pub async fn busy_trip(table: &dyn Table, driver_id: &str) -> Result<Option<String>, TableError> {
    Ok(table
        .get(keys::BUSY_DRIVERS, driver_id)
        .await?
        .and_then(|i| i.str("tripId").map(str::to_string)))
}

/// `driverStatus` and `busyTripId` of a driver: one Get.
pub async fn availability(table: &dyn Table, driver_id: &str) -> Result<Availability, TableError> {
    let busy_trip_id = busy_trip(table, driver_id).await?;
    Ok(Availability {
        driver_status: if busy_trip_id.is_some() {
            DriverStatus::Busy
        } else {
            DriverStatus::Available
        },
        busy_trip_id,
    })
}

/// Every busy driver's id: one Query of the busy partition (paged), never a Scan nor a
/// read per driver. ~60 bytes an item: 1,000 busy drivers are one page of ~60 KB.
pub async fn busy_drivers(table: &dyn Table) -> Result<HashSet<String>, TableError> {
    Ok(query_all(table, Query::new(keys::BUSY_DRIVERS))
        .await?
        .into_iter()
        .map(|i| i.sk)
        .collect())
}
