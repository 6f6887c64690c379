//! DynamoDB stream target: the events of new log entries (written, and sequenced, in
//! their source's transaction) go to the bus. An error fails the batch, which the
//! stream hands over again, so no entry is skipped; the fan-out pushes a seq once.

use realtime_domain::{log, outbox, Deps};
use realtime_edge::lambda::EventError;
use realtime_edge::streams;
use serde_json::Value;

pub async fn handle(deps: Deps, event: Value) -> Result<(), EventError> {
    let items = streams::inserted_items(&event);
    let events: Vec<_> = items.iter().filter_map(log::relayed_event).collect();
    if events.len() < items.len() {
        tracing::warn!(
            skipped = items.len() - events.len(),
            "stream records that are not relayed log entries"
        );
    }
    if events.is_empty() {
        return Ok(());
    }
    outbox::relay(&deps, &events).await?;
    tracing::debug!(relayed = events.len(), "log entries relayed");
    Ok(())
}
