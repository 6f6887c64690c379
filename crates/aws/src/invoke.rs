//! The AWS `ShardDispatcher`: one asynchronous invoke (`InvocationType: Event`) of the
//! fan-out worker per shard. Lambda queues it and answers 202 at once, scales the worker
//! without a poller's ramp-up, retries a failed run twice and then sends the job to the
//! function's dead-letter queue. A throttled or failed invoke is retried here with
//! jittered backoff; what still fails goes back to the caller, which posts it itself.

use crate::eventbridge::Backoff;
use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};
use realtime_domain::ports::{DispatchError, ShardDispatcher, ShardJob};
use realtime_domain::Deps;
use std::sync::Arc;
use std::time::Duration;

pub struct LambdaDispatcher {
    client: aws_sdk_lambda::Client,
    function: String,
}

/// Invokes in flight at once (Invoke answers in tens of milliseconds).
const IN_FLIGHT: usize = 16;
const RETRIES: Backoff = Backoff::new(3, Duration::from_millis(50));

impl LambdaDispatcher {
    pub fn new(client: aws_sdk_lambda::Client, function: String) -> Self {
        Self { client, function }
    }

    /// The fan-out's setup (`handle.run_with(LambdaDispatcher::setup)`): shards go to the
    /// worker named by `FANOUT_WORKER_FUNCTION`, if set. Only the fan-out's bootstrap
    /// links the Lambda client this way, not every function's.
    pub fn setup(deps: Deps) -> BoxFuture<'static, Deps> {
        Box::pin(async move {
            let Some(function) = deps.config.fanout_worker_function.clone() else {
                return deps;
            };
            // deps_from_env read the same variables a moment ago, so this fails only if
            // they vanished; the fan-out then posts every shard itself.
            match crate::sdk::FunctionSdk::from_env() {
                Ok(sdk) => deps.with_dispatcher(Arc::new(LambdaDispatcher::new(sdk.lambda(), function))),
                Err(e) => {
                    tracing::error!(error = %e, "no Lambda client: the fan-out posts every shard itself");
                    deps
                }
            }
        })
    }

    async fn invoke(&self, job: &ShardJob) -> Result<(), String> {
        let payload = serde_json::to_vec(job).map_err(|e| e.to_string())?;
        let mut last = String::new();
        for attempt in 0..RETRIES.attempts {
            if attempt > 0 {
                RETRIES.sleep(attempt - 1).await;
            }
            match self
                .client
                .invoke()
                .function_name(&self.function)
                .invocation_type(InvocationType::Event)
                .payload(Blob::new(payload.clone()))
                .send()
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) => last = aws_sdk_lambda::error::DisplayErrorContext(&e).to_string(),
            }
        }
        Err(last)
    }
}

#[async_trait]
impl ShardDispatcher for LambdaDispatcher {
    async fn dispatch(&self, jobs: Vec<ShardJob>) -> Result<(), DispatchError> {
        let results: Vec<(ShardJob, Result<(), String>)> = stream::iter(jobs)
            .map(|job| async move {
                let r = self.invoke(&job).await;
                (job, r)
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let mut failed = Vec::new();
        let mut reason = String::new();
        for (job, r) in results {
            if let Err(e) = r {
                reason = e;
                failed.push(job);
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(DispatchError { reason, failed })
        }
    }
}
