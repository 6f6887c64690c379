//! A channel's subscriptions, spread over shards so that no partition holds a big
//! channel: shard 0 is `CHAN#{channel}` (where every channel starts, and where a small
//! one stays), shard n > 0 is `CHAN#{channel}#{n}`. A connection's subscription lives in
//! exactly one shard, `hash(connection) mod S`, recorded on its back item, so unsubscribe
//! and cleanup find it again after S has changed.
//!
//! S is a power of two kept on shard 0's partition (sort key [`SHARDS`]), so the fan-out
//! learns it from the Query it runs anyway. It only grows: a subscription stays where it
//! was written and readers read shards `0..S`, so growing moves nothing and loses nothing
//! (API Gateway ends every connection within 2 hours, so the old layout drains by itself).
//! It grows when the channel's estimated size passes [`TARGET`] subscriptions per shard;
//! the estimate is a counter that one connection in [`SAMPLE`] moves (by ±[`SAMPLE`]),
//! which keeps the hot item's writes at 1/16 of the subscribes.

use crate::keys;
use crate::ports::{Condition, Item, Table, TableError, Update};
use serde_json::Value;

/// Shard 0's sort key for the channel's shard count and size estimate.
pub const SHARDS: &str = "SHARDS";
/// Subscriptions per shard before the channel grows: one Query page (~250 bytes each,
/// 250 KB, ~31 read units eventually consistent) and ~15 s of posts at a 64/s share.
pub const TARGET: u64 = 1_000;
/// The most shards a channel has: 1,000,000 subscriptions at ~1,000 a shard.
pub const MAX: u32 = 1_024;
/// One connection in this many moves the size estimate.
pub const SAMPLE: u64 = 16;

/// The partition key of a channel's shard.
pub fn pk(channel: &str, shard: u32) -> String {
    if shard == 0 {
        keys::chan(channel)
    } else {
        format!("{}#{shard}", keys::chan(channel))
    }
}

/// FNV-1a: stable across processes and versions (std's hasher is neither).
fn hash(s: &str, salt: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The shard a connection's subscription goes to when the channel has `shards`.
pub fn of(connection_id: &str, shards: u32) -> u32 {
    (hash(connection_id, 0) % u64::from(shards.max(1))) as u32
}

/// Whether this connection moves the channel's size estimate.
fn sampled(connection_id: &str) -> bool {
    hash(connection_id, 0x5eed).is_multiple_of(SAMPLE)
}

/// The shard count on a `SHARDS` item (1 without one).
pub fn count_of(item: Option<&Item>) -> u32 {
    item.and_then(|i| i.get("shards"))
        .and_then(Value::as_u64)
        .map_or(1, |n| n.clamp(1, u64::from(MAX)) as u32)
}

/// The channel's shard count (an eventually consistent read is enough: a subscribe that
/// sees an old count writes to a shard readers still read).
pub async fn count(table: &dyn Table, channel: &str) -> Result<u32, TableError> {
    Ok(count_of(table.get(&pk(channel, 0), SHARDS).await?.as_ref()))
}

/// Where a new subscription of `connection_id` goes: reads the count and, for a sampled
/// connection, moves the estimate and grows the channel when it is past [`TARGET`] a shard.
pub async fn place(table: &dyn Table, channel: &str, connection_id: &str) -> Result<u32, TableError> {
    let shards = if sampled(connection_id) {
        let item = table
            .update(&pk(channel, 0), SHARDS, vec![Update::Add("estimate".into(), SAMPLE as i64)], None)
            .await?;
        let shards = count_of(Some(&item));
        let estimate = item.get("estimate").and_then(Value::as_u64).unwrap_or(0);
        if estimate > TARGET * u64::from(shards) && shards < MAX {
            grow(table, channel, shards, shards * 2).await?
        } else {
            shards
        }
    } else {
        count(table, channel).await?
    };
    Ok(of(connection_id, shards))
}

/// A subscription of `connection_id` was removed: moves the estimate back.
pub async fn left(table: &dyn Table, channel: &str, connection_id: &str) {
    if sampled(connection_id) {
        let sk_cond = Condition::Ge("estimate".into(), SAMPLE as f64);
        let r = table
            .update(
                &pk(channel, 0),
                SHARDS,
                vec![Update::Add("estimate".into(), -(SAMPLE as i64))],
                Some(sk_cond),
            )
            .await;
        if let Err(e) = r.map(|_| ()).or_else(|e| match e {
            TableError::ConditionFailed => Ok(()),
            e => Err(e),
        }) {
            // Only the estimate drifts (up): a channel may grow a little early.
            tracing::debug!(channel, error = %e, "shard estimate not moved");
        }
    }
}

/// Grows a channel from `from` shards to `to` (never shrinks: a shard past the count
/// would not be read). Returns the count after: `to`, or what a concurrent grower set.
pub async fn grow(table: &dyn Table, channel: &str, from: u32, to: u32) -> Result<u32, TableError> {
    let to = to.clamp(1, MAX);
    let cond = if from <= 1 {
        Condition::Or(vec![Condition::AttrNotExists("shards".into()), Condition::Le("shards".into(), 1.0)])
    } else {
        Condition::Eq("shards".into(), Value::from(from))
    };
    match table
        .update(
            &pk(channel, 0),
            SHARDS,
            vec![Update::Set("shards".into(), Value::from(to))],
            Some(cond),
        )
        .await
    {
        Ok(_) => {
            tracing::info!(channel, from, to, "channel grown");
            Ok(to)
        }
        Err(TableError::ConditionFailed) => count(table, channel).await,
        Err(e) => Err(e),
    }
}

/// Sets a channel's shard count to at least `n` (operators and benchmarks).
pub async fn ensure(table: &dyn Table, channel: &str, n: u32) -> Result<u32, TableError> {
    loop {
        let now = count(table, channel).await?;
        if now >= n {
            return Ok(now);
        }
        if grow(table, channel, now, n).await? >= n {
            return Ok(n.min(MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_spread_connections_evenly_and_keep_shard_0_unsuffixed() {
        assert_eq!(pk("chat:C1", 0), "CHAN#chat:C1");
        assert_eq!(pk("drivers", 7), "CHAN#drivers#7");
        let mut per = [0u32; 16];
        for i in 0..16_000 {
            per[of(&format!("conn-{i}="), 16) as usize] += 1;
        }
        assert!(per.iter().all(|n| (800..1200).contains(n)), "{per:?}");
        // Doubling keeps a connection in its shard or moves it to shard + S.
        for i in 0..1000 {
            let id = format!("c{i}");
            let (a, b) = (of(&id, 8), of(&id, 16));
            assert!(b == a || b == a + 8);
        }
        let sampled = (0..16_000).filter(|i| sampled(&format!("conn-{i}="))).count();
        assert!((800..1200).contains(&sampled), "{sampled}");
    }
}
