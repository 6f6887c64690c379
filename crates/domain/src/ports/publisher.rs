//! The `EventPublisher` port: hand domain events to the event bus.

use crate::events::Envelope;
use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Some events could not be published after the adapter's retries; they are
    /// left for the caller (the outbox keeps them). Holds their ids.
    #[error("{} event(s) not published: {reason}", ids.len())]
    Failed { ids: Vec<String>, reason: String },
    #[error("event too large or malformed: {0}")]
    Invalid(String),
}

impl PublishError {
    /// A failed publish may pass later; a malformed event never will.
    pub fn is_retryable(&self) -> bool {
        matches!(self, PublishError::Failed { .. })
    }
}

#[async_trait]
pub trait EventPublisher: Send + Sync + 'static {
    async fn publish(&self, events: &[Envelope]) -> Result<(), PublishError>;
}
