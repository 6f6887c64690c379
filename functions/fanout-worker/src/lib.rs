//! A fan-out worker, invoked asynchronously by the fan-out with one shard of a big
//! channel: posts that shard's subscribers the event, within its share of the budget.

use realtime_domain::ports::ShardJob;
use realtime_domain::{fanout, Deps};
use realtime_edge::lambda::EventError;
use serde_json::Value;

pub async fn handle(deps: Deps, event: Value) -> Result<(), EventError> {
    let job: ShardJob = match serde_json::from_value(event) {
        Ok(job) => job,
        // Not a job: no retry makes it one.
        Err(e) => {
            tracing::error!(error = %e, "not a shard job; dropped");
            return Ok(());
        }
    };
    let (channel, shard, event_type) = (job.channel.clone(), job.shard, job.event.event_type.clone());
    // A table error fails the invocation, and Lambda retries it (twice, then the
    // dead-letter queue); a retried job pushes nothing twice in this instance.
    let report = fanout::deliver_shard(&deps, job).await?;
    tracing::info!(%channel, shard, delivered = report.delivered, stale = report.stale, throttled = report.throttled,
        retries = report.retries, undelivered = report.undelivered, failed = report.failed, "shard done");
    realtime_edge::metrics::fanout(&report, &[]);
    realtime_edge::stats::record_shard(deps.table.as_ref(), &event_type, &report).await;
    realtime_edge::stats::connections_closed(deps.table.as_ref(), report.removed as u64).await;
    // A member whose connection turned out gone starts their grace period now.
    realtime_domain::presence::settle_all(&deps, &report.vacated).await;
    Ok(())
}
