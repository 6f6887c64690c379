//! The presence sweeper, every minute: runs the presence wake-ups that fall due (a grace
//! period's end, a subscription's TTL), and keeps going while more fall due within the
//! minute, so a member leaves at most a minute after their last connection vanished.

use realtime_domain::{presence, Deps};
use realtime_edge::lambda::EventError;
use serde_json::Value;
use std::time::Duration;

/// How long one run keeps looking for wake-ups: under the schedule's minute and the
/// function's timeout (the next run takes over).
pub const BUDGET: Duration = Duration::from_secs(55);

pub async fn handle(deps: Deps, _event: Value) -> Result<(), EventError> {
    let budget = deps.config.presence_sweep.unwrap_or(BUDGET);
    let swept = presence::sweep(&deps, budget, Duration::from_millis(250)).await?;
    if swept.reconciled + swept.failed > 0 {
        tracing::info!(reconciled = swept.reconciled, failed = swept.failed, "presence swept");
    }
    Ok(())
}
