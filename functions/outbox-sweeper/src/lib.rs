//! Scheduled: republishes outbox events that are still unsent.

use realtime_shared::lambda::EventError;
use realtime_shared::Deps;
use serde_json::Value;

pub async fn handle(_deps: Deps, _event: Value) -> Result<(), EventError> {
    Ok(())
}
