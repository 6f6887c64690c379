//! What a handler needs, built once per cold start (Lambda) or once per process
//! (the local stack) and cloned cheaply into every invocation.

use crate::config::Config;
use crate::ports::{ConnectionPusher, EventPublisher, ShardDispatcher, Table};
use std::sync::Arc;

#[derive(Clone)]
pub struct Deps {
    pub table: Arc<dyn Table>,
    pub publisher: Arc<dyn EventPublisher>,
    pub pusher: Arc<dyn ConnectionPusher>,
    pub config: Arc<Config>,
    /// Where a sharded channel's other shards go; without one they run in this
    /// invocation, concurrently (tests, benchmarks).
    pub dispatcher: Option<Arc<dyn ShardDispatcher>>,
}

impl Deps {
    pub fn new(table: Arc<dyn Table>, publisher: Arc<dyn EventPublisher>, pusher: Arc<dyn ConnectionPusher>, config: Config) -> Self {
        Self {
            table,
            publisher,
            pusher,
            config: Arc::new(config),
            dispatcher: None,
        }
    }

    pub fn with_dispatcher(mut self, dispatcher: Arc<dyn ShardDispatcher>) -> Self {
        self.dispatcher = Some(dispatcher);
        self
    }
}
