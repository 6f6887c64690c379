//! Scheduled: republishes outbox events that are still unsent a few seconds after
//! their route wrote them (the route's own publish failed or never happened).

use realtime_shared::lambda::EventError;
use realtime_shared::{outbox, Deps};
use serde_json::Value;

pub async fn handle(deps: Deps, _schedule: Value) -> Result<(), EventError> {
    let report = outbox::sweep(&deps).await.map_err(|e| EventError::retry(e.to_string()))?;
    if report.found > 0 {
        tracing::info!(found = report.found, republished = report.republished, "outbox swept");
    }
    Ok(())
}
