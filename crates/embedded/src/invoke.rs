//! The embedded `ShardDispatcher`: each shard job becomes a [`Delivery`] to the fan-out
//! worker function, on a bounded channel that the local stack runs like the bus's
//! deliveries (the dispatcher never calls its owner), so locally a sharded channel goes
//! through the same worker function as in AWS.

use crate::bus::Delivery;
use async_trait::async_trait;
use realtime_domain::ports::{DispatchError, ShardDispatcher, ShardJob};
use std::sync::Mutex;
use tokio::sync::mpsc;

/// Jobs waiting for the runner (bounded: a stalled runner slows the fan-out down).
const QUEUE: usize = 4096;

pub struct EmbeddedDispatcher {
    target: String,
    outbox: mpsc::Sender<Delivery>,
    inbox: Mutex<Option<mpsc::Receiver<Delivery>>>,
}

impl EmbeddedDispatcher {
    /// Jobs go to the function `target` (its logical id).
    pub fn new(target: impl Into<String>) -> Self {
        let (outbox, inbox) = mpsc::channel(QUEUE);
        Self {
            target: target.into(),
            outbox,
            inbox: Mutex::new(Some(inbox)),
        }
    }

    /// The jobs to run, once (for [`crate::bus::run_targets`]).
    pub fn deliveries(&self) -> Option<mpsc::Receiver<Delivery>> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

#[async_trait]
impl ShardDispatcher for EmbeddedDispatcher {
    async fn dispatch(&self, jobs: Vec<ShardJob>) -> Result<(), DispatchError> {
        let mut jobs = jobs.into_iter();
        while let Some(job) = jobs.next() {
            let event = serde_json::to_value(&job).unwrap_or_default();
            if self.outbox.send(Delivery::new(self.target.clone(), event)).await.is_err() {
                let mut failed = vec![job];
                failed.extend(jobs);
                return Err(DispatchError {
                    reason: "the local stack is stopping".into(),
                    failed,
                });
            }
        }
        Ok(())
    }
}
