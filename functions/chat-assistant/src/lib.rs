//! The assistant, invoked by the EventBridge rule on `chat.ai.requested`: `chat.ai.started`,
//! typing, the provider's reply stored as a message (`chat.ai.completed`), or `chat.ai.failed`
//! with the turn moved on. The provider is the configured one (`ASSISTANT_PROVIDER`).

use realtime_domain::chat::assistant::{self, Outcome};
use realtime_domain::events::Envelope;
use realtime_domain::{ApiError, Deps};
use realtime_edge::lambda::EventError;
use serde_json::Value;

pub async fn handle(deps: Deps, event: Value) -> Result<(), EventError> {
    let detail = event
        .get("detail")
        .cloned()
        .ok_or_else(|| EventError::drop("event has no detail"))?;
    let request: Envelope = serde_json::from_value(detail).map_err(|e| EventError::drop(format!("detail is not an envelope: {e}")))?;
    let provider = realtime_edge::assistant::provider(&deps.config.chat.assistant);
    match assistant::respond(&deps, provider.as_ref(), &request).await {
        Ok(Outcome::Replied(m)) => tracing::info!(chat_id = %m.chat_id, message_id = %m.id, "assistant replied"),
        Ok(Outcome::Failed(e)) => tracing::warn!(event_id = %request.id, error = %e, "assistant request failed"),
        Ok(Outcome::Skipped(why)) => tracing::info!(event_id = %request.id, why, "assistant request skipped"),
        // The table was busy: a retry is safe (the reply is stored once, under `ai-{requestId}`).
        Err(e @ (ApiError::Unavailable(_) | ApiError::Internal(_))) => return Err(EventError::retry(e.to_string())),
        Err(e) => return Err(EventError::drop(e.to_string())),
    }
    Ok(())
}
