//! The `ConnectionPusher` port: send a frame to one WebSocket connection.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PushError {
    /// The connection no longer exists (API Gateway's 410 GoneException): delete it.
    #[error("connection gone")]
    Gone,
    /// Still throttled after the adapter's retries (429 / LimitExceededException).
    #[error("throttled")]
    Throttled,
    #[error("push failed: {0}")]
    Other(String),
}

impl PushError {
    /// A throttled or failed post may pass later; a gone connection never will.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, PushError::Gone)
    }
}

/// API Gateway's largest `PostToConnection` (and WebSocket message): 128 KB. Over it a post
/// fails (`PayloadTooLargeException`).
pub const MAX_PUSH_BYTES: usize = 128 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub connected_at: DateTime<Utc>,
    pub last_active_at: DateTime<Utc>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

#[async_trait]
pub trait ConnectionPusher: Send + Sync + 'static {
    async fn post(&self, connection_id: &str, data: &[u8]) -> Result<(), PushError>;
    /// Closes the connection (the server side of `$disconnect`).
    async fn close(&self, connection_id: &str) -> Result<(), PushError>;
    async fn info(&self, connection_id: &str) -> Result<ConnectionInfo, PushError>;
}
