//! The analytics extension, invoked by its own EventBridge rule (messages stored and rejected,
//! assistant requests completed and failed). Isolated from the message path: its failures are
//! retried by EventBridge and then land in its dead-letter queue; no send waits for it.

use realtime_domain::chat::analytics::{self, Recorded};
use realtime_domain::Deps;
use realtime_edge::lambda::EventError;
use realtime_edge::BusEvent;

pub async fn handle(deps: Deps, event: BusEvent) -> Result<(), EventError> {
    let envelope = event.detail;
    // Rows are keyed by what they describe: a retry rewrites the same row.
    match analytics::record(&deps, &envelope).await? {
        Recorded::Row => tracing::debug!(event_type = %envelope.event_type, "analytics row"),
        Recorded::Disabled => tracing::debug!(event_type = %envelope.event_type, "analytics off for this chat"),
        Recorded::Ignored => {}
    }
    Ok(())
}
