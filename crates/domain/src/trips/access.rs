//! Who may follow a trip, and the ride-sharing subscriptions (`passenger:subscribe`,
//! `driver:subscribe`) expressed as the generic channel subscription: `trip:{id}` for
//! a passenger's booked trips, `drivers` with an EventBridge content filter for offers.

use super::error::TripError;
use super::TripType;
use crate::auth::{Claims, Role};
use crate::channels::Channel;
use crate::keys;
use crate::ports::{Table, TableError};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Whether `user_id` is a party of the trip: its organizer, its driver, or a passenger
/// with an active booking (read from state, strongly consistent: `META` and the
/// passenger's `PASSENGER#{user}` item).
pub async fn is_party(table: &dyn Table, trip_id: &str, user_id: &str) -> Result<bool, TableError> {
    let Some(meta) = table.get(&keys::trip(trip_id), keys::META).await? else {
        return Ok(false);
    };
    if meta.str("organizerId") == Some(user_id) || meta.str("driverId") == Some(user_id) {
        return Ok(true);
    }
    is_passenger(table, trip_id, user_id).await
}

/// Whether `user_id` holds an active booking on the trip.
pub async fn is_passenger(table: &dyn Table, trip_id: &str, user_id: &str) -> Result<bool, TableError> {
    Ok(table
        .get(&keys::trip(trip_id), &keys::passenger(user_id))
        .await?
        .and_then(|p| p.i64("activeBookings"))
        .is_some_and(|n| n > 0))
}

/// Whether the caller may follow a trip (its channel, its SSE stream): a party or an admin.
pub async fn may_follow(table: &dyn Table, user_id: &str, roles: &[Role], trip_id: &str) -> Result<bool, TableError> {
    Ok(roles.contains(&Role::Admin) || is_party(table, trip_id, user_id).await?)
}

/// Most trips one `passenger:subscribe` may name.
pub const MAX_TRIPS_PER_SUBSCRIBE: usize = 20;

/// `{"action":"passenger:subscribe","id"?,"tripIds":[...]}`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PassengerSubscribe {
    pub action: String,
    #[serde(default)]
    pub id: Option<String>,
    pub trip_ids: Vec<String>,
}

impl PassengerSubscribe {
    /// The trip channels asked for, validated.
    pub fn channels(&self) -> Result<Vec<Channel>, TripError> {
        if self.trip_ids.is_empty() || self.trip_ids.len() > MAX_TRIPS_PER_SUBSCRIBE {
            return Err(TripError::Invalid(format!(
                "tripIds must name 1 to {MAX_TRIPS_PER_SUBSCRIBE} trips"
            )));
        }
        let mut out: Vec<Channel> = Vec::with_capacity(self.trip_ids.len());
        for id in &self.trip_ids {
            super::id_param("tripIds[]", id)?;
            let ch = Channel::Trip(id.clone());
            if !out.contains(&ch) {
                out.push(ch);
            }
        }
        Ok(out)
    }
}

/// `{"action":"driver:subscribe","id"?,"filters":{"maxDistance","minEarnings","tripTypes"}}`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DriverSubscribe {
    pub action: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub filters: DriverFilters,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DriverFilters {
    /// Offers at most this far (km, origin to destination).
    #[serde(default)]
    pub max_distance: Option<f64>,
    /// Offers paying at least this much (`estimatedEarnings`).
    #[serde(default)]
    pub min_earnings: Option<f64>,
    /// Only these trip types (none or empty: all).
    #[serde(default)]
    pub trip_types: Option<Vec<TripType>>,
}

/// The event types a driver's subscription takes from `drivers`.
pub const DRIVER_EVENTS: &[&str] = &["trip.offer.**"];

impl DriverFilters {
    /// The EventBridge content pattern over an offer's `data`, or None for every offer.
    pub fn content_filter(&self) -> Result<Option<Value>, TripError> {
        let mut f = Map::new();
        if let Some(d) = self.max_distance {
            if !(0.0..=40_075.0).contains(&d) {
                return Err(TripError::Invalid("filters.maxDistance must be between 0 and 40075 km".into()));
            }
            f.insert("distanceKm".into(), json!([{"numeric": ["<=", d]}]));
        }
        if let Some(e) = self.min_earnings {
            if !(0.0..=1e15).contains(&e) {
                return Err(TripError::Invalid("filters.minEarnings must be a non-negative amount".into()));
            }
            f.insert("estimatedEarnings".into(), json!([{"numeric": [">=", e]}]));
        }
        if let Some(types) = self.trip_types.as_ref().filter(|t| !t.is_empty()) {
            if types.len() > 2 {
                return Err(TripError::Invalid("filters.tripTypes names at most PRIVATE and SHARED".into()));
            }
            let names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
            f.insert("tripType".into(), json!(names));
        }
        Ok((!f.is_empty()).then_some(Value::Object(f)))
    }
}

/// Whether a connection's user may take the `drivers` channel (see `connections::authorize`).
pub fn is_driver(user: &Claims) -> bool {
    user.has_role(Role::Driver) || user.has_role(Role::Admin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::{filter_matches, validate_filter};

    #[test]
    fn driver_filters_become_content_filters() {
        let f = DriverFilters {
            max_distance: Some(50.0),
            min_earnings: Some(5000.0),
            trip_types: Some(vec![TripType::Private]),
        }
        .content_filter()
        .unwrap()
        .unwrap();
        assert!(validate_filter(&f).is_ok());
        let offer = |km: f64, earn: u64, t: &str| json!({"distanceKm": km, "estimatedEarnings": earn, "tripType": t, "urgency": "low"});
        assert!(filter_matches(&f, &offer(12.5, 8000, "PRIVATE")));
        assert!(!filter_matches(&f, &offer(50.1, 8000, "PRIVATE")));
        assert!(!filter_matches(&f, &offer(10.0, 4999, "PRIVATE")));
        assert!(!filter_matches(&f, &offer(10.0, 9000, "SHARED")));
        assert_eq!(DriverFilters::default().content_filter().unwrap(), None);
        let bad = DriverFilters {
            max_distance: Some(-1.0),
            ..Default::default()
        };
        assert!(matches!(bad.content_filter(), Err(TripError::Invalid(_))));
    }

    #[test]
    fn passenger_subscriptions_are_bounded() {
        let p = |ids: Vec<&str>| PassengerSubscribe {
            action: "passenger:subscribe".into(),
            id: None,
            trip_ids: ids.into_iter().map(str::to_string).collect(),
        };
        assert_eq!(p(vec!["T1", "T1", "T2"]).channels().unwrap().len(), 2);
        assert!(p(vec![]).channels().is_err());
        assert!(p(vec!["a b"]).channels().is_err());
        assert!(p(vec!["T"; 21]).channels().is_err());
    }
}
