//! Streamed HTTP answers (server-sent events). In AWS the function runs behind a
//! function URL with `InvokeMode: RESPONSE_STREAM` and `lambda::run_stream` hands the
//! body to `lambda_runtime`'s response streaming; the local stack streams the same body
//! from the same handler. Errors before the stream starts are the usual JSON answers.

use crate::deps::Deps;
use crate::error::ApiError;
use crate::http::HttpRequest;
use bytes::Bytes;
use futures::stream::{self, BoxStream};
use std::future::Future;

pub struct StreamResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: BoxStream<'static, Bytes>,
}

pub type StreamResult = Result<StreamResponse, ApiError>;

impl StreamResponse {
    /// A `text/event-stream` answer (no caching, no proxy buffering).
    pub fn event_stream(body: BoxStream<'static, Bytes>) -> Self {
        Self {
            status: 200,
            headers: vec![
                ("content-type".into(), "text/event-stream".into()),
                ("cache-control".into(), "no-cache".into()),
                ("x-accel-buffering".into(), "no".into()),
            ],
            body,
        }
    }

    /// The error as the API's JSON answer, in one chunk.
    pub fn from_error(e: &ApiError) -> Self {
        Self {
            status: e.status(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Box::pin(stream::once(futures::future::ready(Bytes::from(e.body().to_string())))),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Runs a streaming handler; an error becomes its JSON answer (5xx logged with detail).
pub async fn serve<F, Fut>(handler: F, deps: Deps, req: HttpRequest) -> StreamResponse
where
    F: Fn(Deps, HttpRequest) -> Fut,
    Fut: Future<Output = StreamResult>,
{
    let cid = crate::http::correlation_id(&req);
    let path = req.raw_path.clone().unwrap_or_default();
    let span = tracing::info_span!("stream", correlation_id = %cid, path = %path);
    match tracing::Instrument::instrument(handler(deps, req), span.clone()).await {
        Ok(r) => r,
        Err(e) => {
            span.in_scope(|| e.log("stream"));
            StreamResponse::from_error(&e)
        }
    }
}

/// One server-sent event: an optional `id:` line, then `data:` (JSON has no newlines).
pub fn sse_event(id: Option<u64>, data: &serde_json::Value) -> Bytes {
    let mut s = String::new();
    if let Some(id) = id {
        s.push_str(&format!("id: {id}\n"));
    }
    s.push_str("data: ");
    s.push_str(&data.to_string());
    s.push_str("\n\n");
    Bytes::from(s)
}
