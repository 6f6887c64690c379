//! Streamed HTTP answers (server-sent events). In AWS the function runs behind a
//! function URL with `InvokeMode: RESPONSE_STREAM` and `lambda::run_stream` hands the
//! body to `lambda_runtime`'s response streaming; the local stack streams the same body
//! from the same handler. Errors before the stream starts are the usual JSON answers.

use crate::http::HttpRequest;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use realtime_domain::deps::Deps;
use realtime_domain::error::ApiError;
use realtime_domain::trips::sse::Message;
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

/// How a client should wait before reconnecting (the SSE `retry:` field), ms.
const RETRY_MS: u64 = 2000;

/// A trip's status feed as an SSE body: the `retry:` advice, then each message. The
/// stream's life and the updates it sends are counted in the statistics.
pub async fn trip_status_body(deps: &Deps, trip_id: &str, feed: BoxStream<'static, Vec<Message>>) -> BoxStream<'static, Bytes> {
    let open = crate::stats::SseGuard::open(deps.table.clone(), trip_id).await;
    let table = deps.table.clone();
    let head = stream::once(futures::future::ready(Bytes::from(format!("retry: {RETRY_MS}\n\n"))));
    let body = feed.then(move |batch| {
        // The closure owns the guard: the stream's end (or drop) closes it.
        let _open = &open;
        let table = table.clone();
        async move {
            let updates = batch.iter().filter(|m| m.update).count() as u64;
            if updates > 0 {
                crate::stats::sse_sent(table.as_ref(), updates).await;
            }
            let mut out = Vec::new();
            for m in &batch {
                out.extend_from_slice(&sse_event(m.id, &m.data));
            }
            Bytes::from(out)
        }
    });
    Box::pin(head.chain(body))
}

/// One server-sent event: an optional `id:` line, then `data:` (JSON has no newlines).
pub fn sse_event(id: Option<u64>, data: &impl serde::Serialize) -> Bytes {
    let mut s = String::new();
    if let Some(id) = id {
        s.push_str(&format!("id: {id}\n"));
    }
    s.push_str("data: ");
    s.push_str(&serde_json::to_string(data).unwrap_or_else(|_| "null".into()));
    s.push_str("\n\n");
    Bytes::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_an_id_line_then_one_data_line() {
        let b = sse_event(Some(7), &serde_json::json!({"type": "status_update"}));
        assert_eq!(std::str::from_utf8(&b).unwrap(), "id: 7\ndata: {\"type\":\"status_update\"}\n\n");
        let b = sse_event(None, &serde_json::json!({"type": "heartbeat"}));
        assert_eq!(std::str::from_utf8(&b).unwrap(), "data: {\"type\":\"heartbeat\"}\n\n");
    }
}
