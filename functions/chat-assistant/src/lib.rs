//! The assistant, invoked by the EventBridge rule on `chat.ai.requested`: `chat.ai.started`,
//! typing, the provider's reply stored as a message (`chat.ai.completed`), or `chat.ai.failed`
//! with the turn moved on. The provider is the configured one (`ASSISTANT_PROVIDER`).

use realtime_domain::chat::assistant::{self, Outcome};
use realtime_domain::Deps;
use realtime_edge::lambda::EventError;
use realtime_edge::BusEvent;

pub async fn handle(deps: Deps, event: BusEvent) -> Result<(), EventError> {
    let request = event.detail;
    let provider = realtime_edge::assistant::provider(&deps.config.chat.assistant);
    match assistant::respond(&deps, provider.as_ref(), &request).await {
        Ok(Outcome::Replied(m)) => tracing::info!(chat_id = %m.chat_id, message_id = %m.id, "assistant replied"),
        Ok(Outcome::Failed(e)) => tracing::warn!(event_id = %request.id, error = %e, "assistant request failed"),
        Ok(Outcome::Skipped(why)) => tracing::info!(event_id = %request.id, why, "assistant request skipped"),
        // A retry is safe (the reply is stored once, under `ai-{requestId}`); the error
        // says whether one may help.
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
