//! Emission results and the counters the monitoring routes report.
//!
//! Every fan-out of an event yields an [`EmissionResult`] (the seeds' shape): per transport,
//! whether it was sent and to how many connections. WebSocket: the pushes of the fan-out.
//! SSE: trip-status streams read the trip channel's log, so a `trip.status.updated` that
//! the fan-out logged is sent to every stream open on that trip (counted on the trip's
//! `SSE` item). The results are added to counters with atomic `ADD` updates, sharded
//! over [`SHARDS`] partitions (`STATS#{n}`) so no single item takes every write; a read
//! sums the shards with one Query each. Counting is best effort: it never fails a fan-out.

use futures::{stream, StreamExt};
use realtime_domain::channels::Channel;
use realtime_domain::connections;
use realtime_domain::events::Envelope;
use realtime_domain::fanout::Report;
use realtime_domain::keys;
use realtime_domain::ports::table::query_all;
use realtime_domain::ports::{Query, Table, Update};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const SHARDS: u32 = 4;

/// Counter items (sort keys under `STATS#{shard}`).
const EVENTS: &str = "EVENTS";
const SSE: &str = "SSE";
const CONNECTIONS: &str = "CONNECTIONS";
const REPLAY: &str = "REPLAY";
const TYPE_PREFIX: &str = "TYPE#";
/// A trip's open streams (under `TRIP#{id}`).
const TRIP_SSE: &str = "SSE";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebSocketResult {
    /// True when every targeted connection got the event (or none was targeted).
    pub sent: bool,
    /// Connections the event was pushed to.
    pub connections: usize,
    pub stale: usize,
    pub throttled: usize,
    pub failed: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SseResult {
    /// True when the event is one the trip-status streams send and it was logged for them.
    pub sent: bool,
    /// The streams open on the event's trip.
    pub connections: usize,
}

/// What one emission did, per transport.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmissionResult {
    /// True when at least one transport sent it, or nobody was listening and nothing failed.
    pub success: bool,
    pub websocket: WebSocketResult,
    pub sse: SseResult,
}

fn shard() -> u32 {
    rand::random::<u32>() % SHARDS
}

async fn add(table: &dyn Table, pk: String, sk: &str, counters: &[(&str, i64)]) {
    let updates: Vec<Update> = counters
        .iter()
        .filter(|(_, n)| *n != 0)
        .map(|(name, n)| Update::Add((*name).into(), *n))
        .collect();
    if updates.is_empty() {
        return;
    }
    if let Err(e) = table.update(&pk, sk, updates, None).await {
        tracing::debug!(%pk, %sk, error = %e, "counter not updated");
    }
}

/// The emission result of a fan-out, with the SSE side read from the trip's stream count.
pub async fn emission(table: &dyn Table, event: &Envelope, report: &Report) -> EmissionResult {
    let ws_ok = report.failed == 0 && report.throttled == 0;
    let websocket = WebSocketResult {
        sent: ws_ok,
        connections: report.delivered,
        stale: report.stale,
        throttled: report.throttled,
        failed: report.failed,
        error: (!ws_ok).then(|| format!("{} push(es) failed, {} throttled", report.failed, report.throttled)),
    };
    let mut sse = SseResult::default();
    if let (Some(trip_id), "trip.status.updated") = (event.trip_id.as_deref(), event.event_type.as_str()) {
        sse.sent = report.duplicates == 0;
        if let Ok(Some(item)) = table.get(&keys::trip(trip_id), TRIP_SSE).await {
            sse.connections = item.i64("active").unwrap_or(0).max(0) as usize;
        }
    }
    EmissionResult {
        success: websocket.sent || sse.sent,
        websocket,
        sse,
    }
}

/// How often a process writes the counts it gathered.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

type Counts = BTreeMap<String, BTreeMap<String, i64>>;

struct Pending {
    counts: Counts,
    since: std::time::Instant,
}

/// Per table (by address: tests run several stacks in one process).
static PENDING: std::sync::Mutex<BTreeMap<usize, Pending>> = std::sync::Mutex::new(BTreeMap::new());

/// Adds counters in memory; true when the interval has passed and they should be written.
fn gather(table: &dyn Table, sk: &str, counters: &[(&str, i64)]) -> bool {
    let mut guard = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    let p = guard
        .entry(realtime_domain::ports::table::instance_key(table))
        .or_insert_with(|| Pending {
            counts: BTreeMap::new(),
            since: std::time::Instant::now(),
        });
    let entry = p.counts.entry(sk.to_string()).or_default();
    for (name, n) in counters {
        *entry.entry((*name).to_string()).or_default() += n;
    }
    p.since.elapsed() >= FLUSH_EVERY
}

/// Writes the counts this process gathered (one update per counter item).
pub async fn flush(table: &dyn Table) {
    let counts = {
        let mut guard = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        match guard.get_mut(&realtime_domain::ports::table::instance_key(table)) {
            Some(p) => {
                p.since = std::time::Instant::now();
                std::mem::take(&mut p.counts)
            }
            None => return,
        }
    };
    let s = shard();
    for (sk, counters) in counts {
        let list: Vec<(&str, i64)> = counters.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        add(table, keys::stats(s), &sk, &list).await;
    }
}

/// Adds an emission to the counters (in memory; written every [`FLUSH_EVERY`]).
pub async fn record(table: &dyn Table, event_type: &str, e: &EmissionResult, duplicates: usize) {
    let ws = &e.websocket;
    gather(
        table,
        EVENTS,
        &[
            ("events", 1),
            ("wsConnections", ws.connections as i64),
            ("wsStale", ws.stale as i64),
            ("wsThrottled", ws.throttled as i64),
            ("wsFailed", ws.failed as i64),
            ("duplicates", duplicates as i64),
            ("sseEmissions", i64::from(e.sse.sent)),
            ("sseConnections", e.sse.connections as i64),
            ("failedEmissions", i64::from(!e.success)),
        ],
    );
    let sk = format!("{TYPE_PREFIX}{event_type}");
    if gather(table, &sk, &[("events", 1), ("wsConnections", ws.connections as i64)]) {
        flush(table).await;
    }
}

/// What a fan-out worker delivered of one event's shard: added to the same WebSocket
/// counters as the fan-out's own (the event itself is counted once, by the fan-out).
pub async fn record_shard(table: &dyn Table, event_type: &str, report: &Report) {
    gather(
        table,
        EVENTS,
        &[
            ("wsConnections", report.delivered as i64),
            ("wsStale", report.stale as i64),
            ("wsThrottled", report.throttled as i64),
            ("wsFailed", report.failed as i64),
        ],
    );
    let sk = format!("{TYPE_PREFIX}{event_type}");
    if gather(table, &sk, &[("wsConnections", report.delivered as i64)]) {
        flush(table).await;
    }
}

/// Status updates the trip-status streams sent.
pub async fn sse_sent(table: &dyn Table, n: u64) {
    add(table, keys::stats(shard()), SSE, &[("eventsSent", n as i64)]).await;
}

/// WebSocket connections opened and closed (`$connect`, `$disconnect`, 410 cleanup).
pub async fn connection_opened(table: &dyn Table) {
    add(table, keys::stats(shard()), CONNECTIONS, &[("opened", 1)]).await;
}
pub async fn connections_closed(table: &dyn Table, n: u64) {
    add(table, keys::stats(shard()), CONNECTIONS, &[("closed", n as i64)]).await;
}

/// A resume request (the `resume` action or `subscribe` with `resume`): the events it
/// replayed, or a `resync` when the log could not serve it.
pub async fn resumed(table: &dyn Table, replayed: u64, resync: bool) {
    let counters = [("resumes", 1), ("events", replayed as i64), ("resyncs", i64::from(resync))];
    add(table, keys::stats(shard()), REPLAY, &counters).await;
}

/// Channels one stats request may count the subscriptions of.
pub const MAX_COUNTED_CHANNELS: usize = 20;

/// The subscriptions of each channel, exactly: one Query per channel partition (the
/// fan-out's own read), a few at a time.
pub async fn subscriptions(table: &dyn Table, channels: &[Channel]) -> Result<BTreeMap<String, usize>, realtime_domain::ports::TableError> {
    let reads = channels.iter().cloned().map(|c| async move {
        let n = connections::subscribers(table, &c).await.map(|s| s.len());
        (c.to_string(), n)
    });
    let counts: Vec<(String, Result<usize, _>)> = stream::iter(reads).buffer_unordered(4).collect().await;
    counts.into_iter().map(|(c, n)| n.map(|n| (c, n))).collect()
}

/// Counts an open trip-status stream until dropped (the stream ended or the client left).
pub struct SseGuard {
    table: Arc<dyn Table>,
    trip_id: String,
}

impl SseGuard {
    pub async fn open(table: Arc<dyn Table>, trip_id: &str) -> Self {
        add(table.as_ref(), keys::stats(shard()), SSE, &[("opened", 1)]).await;
        add(table.as_ref(), keys::trip(trip_id), TRIP_SSE, &[("active", 1)]).await;
        Self {
            table,
            trip_id: trip_id.to_string(),
        }
    }
}

impl Drop for SseGuard {
    fn drop(&mut self) {
        let (table, trip_id) = (self.table.clone(), std::mem::take(&mut self.trip_id));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                add(table.as_ref(), keys::stats(shard()), SSE, &[("closed", 1)]).await;
                add(table.as_ref(), keys::trip(&trip_id), TRIP_SSE, &[("active", -1)]).await;
            });
        }
    }
}

/// The counters summed over the shards: item → counter → value.
pub async fn totals(table: &dyn Table) -> Result<BTreeMap<String, BTreeMap<String, i64>>, realtime_domain::ports::TableError> {
    let mut out: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for s in 0..SHARDS {
        for item in query_all(table, Query::new(keys::stats(s))).await? {
            let entry = out.entry(item.sk.clone()).or_default();
            for (k, v) in &item.attrs {
                if let Some(n) = v.as_i64() {
                    *entry.entry(k.clone()).or_default() += n;
                }
            }
        }
    }
    Ok(out)
}

fn counters(t: &BTreeMap<String, BTreeMap<String, i64>>, sk: &str, names: &[(&str, &str)]) -> Value {
    let empty = BTreeMap::new();
    let c = t.get(sk).unwrap_or(&empty);
    let mut m = Map::new();
    for (wire, name) in names {
        m.insert((*wire).into(), c.get(*name).copied().unwrap_or(0).into());
    }
    Value::Object(m)
}

/// `GET /api/events/stats`: emissions in total, per transport and per event type.
pub async fn events_stats(table: &dyn Table) -> Result<Value, realtime_domain::ports::TableError> {
    flush(table).await;
    let t = totals(table).await?;
    let mut by_type = Map::new();
    for (sk, c) in &t {
        if let Some(ty) = sk.strip_prefix(TYPE_PREFIX) {
            by_type.insert(
                ty.into(),
                serde_json::json!({"events": c.get("events").copied().unwrap_or(0), "websocketConnections": c.get("wsConnections").copied().unwrap_or(0)}),
            );
        }
    }
    let sse = counters(
        &t,
        SSE,
        &[
            ("streamsOpened", "opened"),
            ("streamsClosed", "closed"),
            ("eventsSent", "eventsSent"),
        ],
    );
    let active = sse["streamsOpened"].as_i64().unwrap_or(0) - sse["streamsClosed"].as_i64().unwrap_or(0);
    let mut sse_all = counters(
        &t,
        EVENTS,
        &[("emissions", "sseEmissions"), ("connectionsNotified", "sseConnections")],
    );
    if let (Value::Object(a), Value::Object(b)) = (&mut sse_all, sse) {
        a.extend(b);
        a.insert("activeStreams".into(), active.max(0).into());
    }
    Ok(serde_json::json!({
        "emissions": counters(&t, EVENTS, &[("events", "events"), ("failed", "failedEmissions"), ("duplicates", "duplicates")]),
        "websocket": counters(&t, EVENTS, &[("connectionsNotified", "wsConnections"), ("stale", "wsStale"), ("throttled", "wsThrottled"), ("failed", "wsFailed")]),
        "sse": sse_all,
        "byType": by_type,
    }))
}

/// `GET /api/websocket/stats`: connections, pushes, replays, and the subscriptions of the
/// channels asked for.
pub async fn websocket_stats(table: &dyn Table, channels: &[Channel]) -> Result<Value, realtime_domain::ports::TableError> {
    flush(table).await;
    let t = totals(table).await?;
    let subs = subscriptions(table, channels).await?;
    let conns = counters(&t, CONNECTIONS, &[("opened", "opened"), ("closed", "closed")]);
    let active = conns["opened"].as_i64().unwrap_or(0) - conns["closed"].as_i64().unwrap_or(0);
    Ok(serde_json::json!({
        "connections": {"opened": conns["opened"], "closed": conns["closed"], "active": active.max(0)},
        "pushes": counters(&t, EVENTS, &[("delivered", "wsConnections"), ("stale", "wsStale"), ("throttled", "wsThrottled"), ("failed", "wsFailed")]),
        "replay": counters(&t, REPLAY, &[("resumes", "resumes"), ("replayed", "events"), ("resyncs", "resyncs")]),
        "subscriptions": subs,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use realtime_domain::events::{Cause, Event};
    use realtime_embedded::sqlite::SqliteTable;

    #[tokio::test]
    async fn emissions_add_up_over_the_shards() {
        let t = SqliteTable::in_memory();
        let ev = Envelope::new(
            Event::ConnectionOpened(realtime_domain::events::ConnectionChanged {
                connection_id: "c".into(),
                user_id: "u".into(),
            }),
            &Cause::default(),
        );
        let report = Report {
            channels: 1,
            delivered: 3,
            stale: 1,
            ..Report::default()
        };
        let e = emission(&t, &ev, &report).await;
        assert!(e.success && e.websocket.sent && !e.sse.sent);
        assert_eq!(e.websocket.connections, 3);
        for _ in 0..10 {
            record(&t, &ev.event_type, &e, 0).await;
        }
        let s = events_stats(&t).await.unwrap();
        assert_eq!(s["emissions"]["events"], 10);
        assert_eq!(s["websocket"]["connectionsNotified"], 30);
        assert_eq!(s["byType"]["connection.opened"]["events"], 10);
        connection_opened(&t).await;
        connection_opened(&t).await;
        connections_closed(&t, 1).await;
        resumed(&t, 7, false).await;
        resumed(&t, 0, true).await;
        // Two subscribers on one chat, one on another, none on a third.
        for (chat, conn) in [("A", "c1"), ("A", "c2"), ("B", "c3")] {
            let item = realtime_domain::ports::Item::new(keys::chan(&format!("chat:{chat}")), keys::chan_conn(conn))
                .with("connectionId", conn)
                .with("userId", "u")
                .with("events", Vec::<String>::new());
            t.put(item, None).await.unwrap();
        }
        let channels: Vec<Channel> = ["chat:A", "chat:B", "chat:C"].iter().map(|c| c.parse().unwrap()).collect();
        let w = websocket_stats(&t, &channels).await.unwrap();
        assert_eq!(
            (w["connections"]["active"].as_i64(), w["pushes"]["stale"].as_i64()),
            (Some(1), Some(10))
        );
        assert_eq!(w["replay"], serde_json::json!({"resumes": 2, "replayed": 7, "resyncs": 1}));
        assert_eq!(w["subscriptions"], serde_json::json!({"chat:A": 2, "chat:B": 1, "chat:C": 0}));
    }
}
