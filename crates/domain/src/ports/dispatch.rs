//! The `ShardDispatcher` port: hand a channel's shards to fan-out workers (in AWS an
//! asynchronous invoke of the worker function each; locally the same function, run by
//! the local stack).

use crate::events::Envelope;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// One shard of one event's fan-out: everything a worker needs without reading the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardJob {
    pub channel: String,
    pub shard: u32,
    /// The channel's shard count when the fan-out read it.
    pub shards: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    /// Posts a second this shard may make: its share of the API Gateway budget.
    pub rate: f64,
    /// When posting stops (epoch milliseconds); what is left then is left to `resume`.
    pub deadline_ms: i64,
    /// The event as clients get it (its positions travel in the frame).
    pub event: Envelope,
    /// Users not to post to, read once by the fan-out for every shard (the busy drivers
    /// of a trip offer); absent when not read or too many to carry: the shard reads them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<Vec<String>>,
}

/// Some jobs were not handed over; the caller runs them itself.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} shard job(s) not dispatched: {reason}", failed.len())]
pub struct DispatchError {
    pub reason: String,
    pub failed: Vec<ShardJob>,
}

#[async_trait]
pub trait ShardDispatcher: Send + Sync + 'static {
    /// Hands the jobs over; Ok once each will run (not once it has).
    async fn dispatch(&self, jobs: Vec<ShardJob>) -> Result<(), DispatchError>;
}
