//! The fan-out, invoked by the EventBridge rule: pushes each event to the subscribers of its channels.

use realtime_domain::{fanout, Deps};
use realtime_edge::lambda::EventError;
use realtime_edge::BusEvent;

pub async fn handle(deps: Deps, event: BusEvent) -> Result<(), EventError> {
    let envelope = event.detail;
    // A transient table error is worth a retry: a redelivered event is pushed again, and
    // clients drop what they already have by seq.
    let report = fanout::deliver(&deps, &envelope).await?;
    tracing::info!(event_type = %envelope.event_type, event_id = %envelope.id, delivered = report.delivered, stale = report.stale, throttled = report.throttled, failed = report.failed, duplicates = report.duplicates, "fan-out done");
    // What the emission did per transport (the seeds' `EmissionResult`), added to the counters
    // `GET /api/events/stats` reports; a redelivery that did nothing new is not counted again.
    if report.duplicates < report.channels {
        let table = deps.table.as_ref();
        let emission = realtime_edge::stats::emission(table, &envelope, &report).await;
        realtime_edge::stats::record(table, &envelope.event_type, &emission, report.duplicates).await;
        tracing::debug!(event_id = %envelope.id, ?emission, "emission");
    }
    // The stale connections it removed are closed connections, counted once each.
    realtime_edge::stats::connections_closed(deps.table.as_ref(), report.removed as u64).await;
    // From the event's occurrence to the last push: what a subscriber waited.
    let latency_ms = (chrono::Utc::now() - envelope.occurred_at).num_microseconds().unwrap_or(0) as f64 / 1000.0;
    realtime_edge::metrics::fanout(
        &report,
        &[
            ("Duplicates", report.duplicates as f64, "Count"),
            ("EventToPushMs", latency_ms, "Milliseconds"),
        ],
    );
    Ok(())
}
