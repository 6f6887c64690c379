//! What a driver is offered for a private trip: distance, earnings, urgency and the
//! acceptance deadline, each a pure function of the trip (documented formulas).

use super::{Place, Trip, TripOfferCreated};
use crate::events::Envelope;
use crate::keys;
use crate::ports::{Item, Query, Table, TableError, TxOp};
use chrono::{DateTime, Duration, Utc};

/// Partitions of the open offers.
pub const OFFER_SHARDS: u32 = 4;
/// Open offers read per partition when a driver subscribes.
const CATCH_UP_PER_SHARD: u32 = 50;

fn offer_shard(trip_id: &str) -> u32 {
    trip_id
        .bytes()
        .fold(0x811c9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x01000193))
        % OFFER_SHARDS
}

/// The write that keeps an offer open (in the offer's transaction) until its deadline.
pub fn open_offer_op(offer: &Envelope, trip_id: &str, deadline: DateTime<Utc>) -> TxOp {
    let item = Item::new(keys::open_offers(offer_shard(trip_id)), trip_id)
        .with("event", serde_json::to_value(offer).unwrap_or_default())
        .with_ttl(deadline.timestamp());
    TxOp::Put { item, cond: None }
}

/// The write that closes a trip's offer (accepted or cancelled); nothing if it had none.
pub fn close_offer_op(trip_id: &str) -> TxOp {
    TxOp::Delete {
        pk: keys::open_offers(offer_shard(trip_id)),
        sk: trip_id.to_string(),
        cond: None,
    }
}

/// The offers still open (deadline not passed, not accepted), oldest first: what a
/// driver who subscribes has missed. One Query per partition.
pub async fn open_offers(table: &dyn Table) -> Result<Vec<Envelope>, TableError> {
    let mut out: Vec<Envelope> = Vec::new();
    for s in 0..OFFER_SHARDS {
        let page = table.query(Query::new(keys::open_offers(s)).limit(CATCH_UP_PER_SHARD)).await?;
        out.extend(
            page.items
                .iter()
                .filter_map(|i| serde_json::from_value(i.get("event")?.clone()).ok()),
        );
    }
    out.sort_by_key(|e| e.occurred_at);
    Ok(out)
}

/// The mean Earth radius (IUGG), km.
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// The great-circle distance between two places, by the haversine formula:
/// `a = sin²(Δφ/2) + cos φ1 · cos φ2 · sin²(Δλ/2)`, `d = 2R · atan2(√a, √(1−a))`,
/// rounded to 0.1 km. (Road distance is longer; this is the estimate an offer shows.)
pub fn haversine_km(from: &Place, to: &Place) -> f64 {
    let (phi1, phi2) = (from.lat.to_radians(), to.lat.to_radians());
    let d_phi = (to.lat - from.lat).to_radians();
    let d_lambda = (to.lng - from.lng).to_radians();
    let a = (d_phi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (d_lambda / 2.0).sin().powi(2);
    let d = 2.0 * EARTH_RADIUS_KM * a.sqrt().atan2((1.0 - a).max(0.0).sqrt());
    (d * 10.0).round() / 10.0
}

/// A private trip pays for the whole vehicle: `pricePerSeat × totalSeats` (saturating).
pub fn estimated_earnings(price_per_seat: u64, total_seats: u32) -> u64 {
    price_per_seat.saturating_mul(u64::from(total_seats))
}

/// `high` when the trip departs within 2 hours (or has), `medium` within 24 hours, else `low`.
pub fn urgency(departure: DateTime<Utc>, now: DateTime<Utc>) -> &'static str {
    let left = departure - now;
    if left <= Duration::hours(2) {
        "high"
    } else if left <= Duration::hours(24) {
        "medium"
    } else {
        "low"
    }
}

/// Until when a driver should accept: 30 minutes after the offer, but no later than
/// 15 minutes before departure, and never less than 5 minutes after the offer.
pub fn acceptance_deadline(departure: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    let deadline = (now + Duration::minutes(30)).min(departure - Duration::minutes(15));
    deadline.max(now + Duration::minutes(5))
}

/// The offer of a private, published trip without a driver.
pub fn offer_for(trip: &Trip, now: DateTime<Utc>) -> TripOfferCreated {
    TripOfferCreated {
        trip_id: trip.trip_id.to_string(),
        trip_type: trip.trip_type,
        title: trip.title.clone(),
        origin: trip.origin.clone(),
        destination: trip.destination.clone(),
        departure_time: trip.departure_time,
        total_seats: trip.total_seats,
        price_per_seat: trip.price_per_seat,
        estimated_earnings: estimated_earnings(trip.price_per_seat, trip.total_seats),
        distance_km: trip.distance_km,
        urgency: urgency(trip.departure_time, now).into(),
        acceptance_deadline: acceptance_deadline(trip.departure_time, now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(lat: f64, lng: f64) -> Place {
        Place {
            name: "p".into(),
            lat,
            lng,
        }
    }

    #[test]
    fn haversine_distances() {
        // Almaty → Astana: about 970 km as the crow flies.
        let d = haversine_km(&place(43.2389, 76.8897), &place(51.1605, 71.4704));
        assert!((960.0..980.0).contains(&d), "{d}");
        assert_eq!(haversine_km(&place(10.0, 10.0), &place(10.0, 10.0)), 0.0);
        // A quarter of the equator.
        let q = haversine_km(&place(0.0, 0.0), &place(0.0, 90.0));
        assert!((q - 10007.5).abs() < 1.0, "{q}");
        // Antipodes do not produce NaN.
        assert!(haversine_km(&place(90.0, 0.0), &place(-90.0, 0.0)).is_finite());
    }

    #[test]
    fn earnings_urgency_and_deadline() {
        assert_eq!(estimated_earnings(2500, 4), 10_000);
        assert_eq!(estimated_earnings(u64::MAX, 2), u64::MAX);
        let now = Utc::now();
        assert_eq!(urgency(now + Duration::minutes(90), now), "high");
        assert_eq!(urgency(now - Duration::minutes(1), now), "high");
        assert_eq!(urgency(now + Duration::hours(5), now), "medium");
        assert_eq!(urgency(now + Duration::days(3), now), "low");
        assert_eq!(acceptance_deadline(now + Duration::days(1), now), now + Duration::minutes(30));
        assert_eq!(acceptance_deadline(now + Duration::minutes(35), now), now + Duration::minutes(20));
        assert_eq!(acceptance_deadline(now + Duration::minutes(10), now), now + Duration::minutes(5));
    }
}
