//! The Lambda side of every function: build the dependencies once per cold start,
//! then serve invocations with the crate's handler. Each `main.rs` is one call here.

use crate::http::{HttpRequest, HttpResult};
use crate::ws::{WsRequest, WsResult};
pub use lambda_runtime::Error;
use lambda_runtime::{service_fn, LambdaEvent};
use realtime_domain::deps::Deps;
use serde_json::Value;
use std::future::Future;

/// An event handler's failure: retryable ones are returned to Lambda (which retries
/// the asynchronous invocation, then sends it to the dead-letter queue).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct EventError {
    pub retryable: bool,
    pub message: String,
}

impl EventError {
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            retryable: true,
            message: message.into(),
        }
    }
    pub fn drop(message: impl Into<String>) -> Self {
        Self {
            retryable: false,
            message: message.into(),
        }
    }
}

/// Requests, 4xx, 5xx and latency per route, as embedded metrics.
fn request_metrics(route: Option<&str>, status: i64, started: std::time::Instant) {
    let class = |lo: i64| if (lo..lo + 100).contains(&status) { 1.0 } else { 0.0 };
    crate::metrics::emit(
        route,
        &[
            ("Requests", 1.0, "Count"),
            ("ClientErrors", class(400), "Count"),
            ("ServerErrors", class(500), "Count"),
            ("LatencyMs", started.elapsed().as_secs_f64() * 1000.0, "Milliseconds"),
        ],
    );
}

/// The dependencies from the environment, completed by the function's `setup` (see
/// [`crate::function::Setup`]): once per cold start.
async fn deps(setup: crate::function::Setup) -> Result<Deps, Error> {
    crate::telemetry::init();
    Ok(setup(realtime_aws::deps_from_env().await?).await)
}

pub async fn run_http<F, Fut>(handler: F, setup: crate::function::Setup) -> Result<(), Error>
where
    F: Fn(Deps, HttpRequest) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = HttpResult> + Send,
{
    let deps = deps(setup).await?;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<HttpRequest>| {
        let deps = deps.clone();
        async move {
            let (started, route) = (std::time::Instant::now(), ev.payload.route_key.clone());
            let resp = crate::http::serve(handler, deps, ev.payload).await;
            request_metrics(route.as_deref(), resp.status_code, started);
            Ok::<_, Error>(resp)
        }
    }))
    .await
}

pub async fn run_ws<F, Fut>(handler: F, setup: crate::function::Setup) -> Result<(), Error>
where
    F: Fn(Deps, WsRequest) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = WsResult> + Send,
{
    let deps = deps(setup).await?;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<WsRequest>| {
        let deps = deps.clone();
        async move {
            let (started, route) = (std::time::Instant::now(), ev.payload.request_context.route_key.clone());
            let resp = crate::ws::serve(handler, deps, ev.payload).await;
            request_metrics(route.as_deref(), resp.status_code, started);
            Ok::<_, Error>(resp)
        }
    }))
    .await
}

pub async fn run_event<F, Fut>(handler: F, setup: crate::function::Setup) -> Result<(), Error>
where
    F: Fn(Deps, Value) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<(), EventError>> + Send,
{
    let deps = deps(setup).await?;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| {
        let deps = deps.clone();
        async move { serve_event(handler, deps, ev.payload).await.map_err(Error::from) }
    }))
    .await
}

/// A handler whose answer is the invocation's result (a Lambda authorizer). An error fails the
/// invocation with its message, which the caller reads (API Gateway: `Unauthorized` is a 401).
pub async fn run_json<F, Fut, E>(handler: F, setup: crate::function::Setup) -> Result<(), Error>
where
    F: Fn(Deps, Value) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, E>> + Send,
    E: std::error::Error + Send + Sync + 'static,
{
    let deps = deps(setup).await?;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| {
        let deps = deps.clone();
        async move { handler(deps, ev.payload).await.map_err(Error::from) }
    }))
    .await
}

/// A port's or the domain's error decides by its own `is_retryable`.
macro_rules! event_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for EventError {
            fn from(e: $t) -> Self {
                Self {
                    retryable: e.is_retryable(),
                    message: e.to_string(),
                }
            }
        }
    )*};
}
event_error_from!(
    realtime_domain::ApiError,
    realtime_domain::chat::ChatError,
    realtime_domain::ports::TableError,
    realtime_domain::ports::PublishError
);

/// Runs an event handler: errors that a retry cannot fix are logged and swallowed.
pub async fn serve_event<F, Fut>(handler: F, deps: Deps, event: Value) -> Result<(), EventError>
where
    F: Fn(Deps, Value) -> Fut,
    Fut: Future<Output = Result<(), EventError>>,
{
    let id = event.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    let span = tracing::info_span!("event", event_id = %id);
    match tracing::Instrument::instrument(handler(deps, event), span.clone()).await {
        Err(e) if !e.retryable => {
            span.in_scope(|| tracing::error!(error = %e, "event dropped"));
            Ok(())
        }
        other => other,
    }
}

/// Parses a bus event, then runs the handler. An event that is not a domain event is
/// dropped: a retry cannot fix it.
pub async fn with_bus_event<F, Fut>(handler: F, deps: Deps, event: Value) -> Result<(), EventError>
where
    F: Fn(Deps, crate::function::BusEvent) -> Fut,
    Fut: Future<Output = Result<(), EventError>>,
{
    let event: crate::function::BusEvent =
        serde_json::from_value(event).map_err(|e| EventError::drop(format!("not a domain event (detail is not an envelope): {e}")))?;
    handler(deps, event).await
}

/// [`serve_event`] for a handler of domain events.
pub async fn serve_bus_event<F, Fut>(handler: F, deps: Deps, event: Value) -> Result<(), EventError>
where
    F: Fn(Deps, crate::function::BusEvent) -> Fut + Copy,
    Fut: Future<Output = Result<(), EventError>>,
{
    serve_event(move |d, v| with_bus_event(handler, d, v), deps, event).await
}

/// A streaming handler (server-sent events) behind a function URL with
/// `InvokeMode: RESPONSE_STREAM`: the status and headers go in the metadata prelude, the
/// body is streamed as the handler produces it (`lambda_runtime` response streaming).
pub async fn run_stream<F, Fut>(handler: F, setup: crate::function::Setup) -> Result<(), Error>
where
    F: Fn(Deps, HttpRequest) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = crate::stream::StreamResult> + Send,
{
    use futures::StreamExt;
    let deps = deps(setup).await?;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<HttpRequest>| {
        let deps = deps.clone();
        async move {
            let resp = crate::stream::serve(handler, deps, ev.payload).await;
            let mut headers = http::HeaderMap::new();
            for (k, v) in &resp.headers {
                if let (Ok(k), Ok(v)) = (http::HeaderName::try_from(k.as_str()), http::HeaderValue::try_from(v.as_str())) {
                    headers.insert(k, v);
                }
            }
            let metadata_prelude = lambda_runtime::MetadataPrelude {
                status_code: http::StatusCode::from_u16(resp.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR),
                headers,
                cookies: Vec::new(),
            };
            Ok::<_, Error>(lambda_runtime::StreamResponse {
                metadata_prelude,
                stream: resp.body.map(Ok::<bytes::Bytes, std::convert::Infallible>),
            })
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::function::BusEvent;
    use realtime_embedded::testing::{embedded, FIXTURE_SECRET};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static RAN: AtomicUsize = AtomicUsize::new(0);

    async fn count(_: Deps, e: BusEvent) -> Result<(), EventError> {
        RAN.fetch_add(1, Ordering::SeqCst);
        assert_eq!(e.detail.event_type, "connection.opened");
        Err(EventError::retry("the table is busy"))
    }

    #[tokio::test]
    async fn a_bus_event_is_typed_or_dropped_and_errors_say_if_a_retry_helps() {
        let deps = embedded(FIXTURE_SECRET).deps;
        // Not a domain event: dropped (logged), never retried, the handler never runs.
        let junk = serde_json::json!({"detail-type": "x", "source": "y", "detail": {"not": "an envelope"}});
        assert!(serve_bus_event(count, deps.clone(), junk).await.is_ok());
        assert_eq!(RAN.load(Ordering::SeqCst), 0);
        // A domain event reaches the handler typed; its retryable error goes back to Lambda.
        let env = realtime_domain::events::Envelope::new(
            realtime_domain::events::Event::ConnectionOpened(realtime_domain::events::ConnectionChanged {
                connection_id: "c".into(),
                user_id: "u".into(),
            }),
            &Default::default(),
        );
        let event = serde_json::json!({"detail-type": "connection.opened", "source": "realtime.connections", "detail": env});
        assert!(serve_bus_event(count, deps, event).await.unwrap_err().retryable);
        assert_eq!(RAN.load(Ordering::SeqCst), 1);
        // Each error decides by its own kind.
        let busy: EventError = realtime_domain::ports::TableError::Transient("throttled".into()).into();
        let refused: EventError = realtime_domain::ApiError::NotFound("no chat".into()).into();
        let invalid: EventError = realtime_domain::ports::PublishError::Invalid("too large".into()).into();
        assert_eq!((busy.retryable, refused.retryable, invalid.retryable), (true, false, false));
    }
}
