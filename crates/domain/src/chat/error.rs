//! What the chat context refuses, and why. The API answers each refusal as its error
//! (`From<ChatError> for ApiError`); event functions retry what [`ChatError::is_retryable`].

use crate::ports::TableError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ChatError {
    /// A field or a setting the chat cannot take.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// Not a participant, not the organizer, a reserved id.
    #[error("{0}")]
    Forbidden(String),
    /// The chat's state refuses it now: `not_your_turn`, `chat_full`, `assistant_disabled`...
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Well-formed but refused by a rule: `message_rejected` (moderation).
    #[error("{message}")]
    Rejected { code: &'static str, message: String },
    /// Contention outlasted the attempts: the same request may pass later.
    #[error("service busy, retry: {0}")]
    Busy(String),
    #[error(transparent)]
    Table(#[from] TableError),
}

crate::error::context_error!(ChatError {
    ChatError::Rejected { code, message } => ApiError::Unprocessable { code, message },
});
