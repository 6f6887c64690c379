//! A minimal Lambda Runtime API on loopback, enough for `lambda_runtime` to cold
//! start a function's release binary and answer two invocations: `GET
//! /2018-06-01/runtime/invocation/next` hands out the armed event (later calls wait),
//! `POST …/{id}/response` and `…/{id}/error` record the answer and when it came.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Inner {
    /// The events the next `/next` calls hand out, in order.
    queue: std::collections::VecDeque<(String, serde_json::Value)>,
    /// When each event was handed out, and each answer (time, success, body).
    next_at: Vec<Instant>,
    answers: Vec<(Instant, bool, String)>,
}

#[derive(Clone, Default)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    answered: Arc<tokio::sync::Notify>,
}

pub struct RuntimeApi {
    pub addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

/// One cold start: process start to the runtime asking for work (what Lambda reports as
/// Init Duration) and to the first answer; then the same invocation again, warm, in the
/// same process against the same endpoints; and the process's peak RSS.
#[derive(Debug, Clone, Serialize)]
pub struct ColdStart {
    pub init_ms: f64,
    pub first_response_ms: f64,
    /// The first invocation alone (handed out → answered), and the second, warm one.
    pub first_invocation_ms: f64,
    pub warm_invocation_ms: f64,
    pub ok: bool,
    pub peak_rss_kb: Option<u64>,
    pub answer: String,
}

impl RuntimeApi {
    pub async fn start() -> anyhow::Result<Self> {
        let shared = Shared::default();
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// Starts `program` with `env` (plus the runtime's own variables), hands it `first`
    /// then `second`, waits for both answers (≤ `timeout`), reads its peak RSS and kills it.
    pub async fn cold_start(
        &self,
        program: &std::path::Path,
        env: &[(String, String)],
        first: serde_json::Value,
        second: serde_json::Value,
        timeout: Duration,
    ) -> anyhow::Result<ColdStart> {
        let name = program.file_name().and_then(|n| n.to_str()).unwrap_or("function").to_string();
        {
            let mut s = self.shared.inner.lock().unwrap_or_else(|e| e.into_inner());
            *s = Inner::default();
            s.queue.push_back((ulid::Ulid::new().to_string(), first));
            s.queue.push_back((ulid::Ulid::new().to_string(), second));
        }
        let started = Instant::now();
        let mut cmd = std::process::Command::new(program);
        crate::e2e::die_with_parent(&mut cmd);
        let mut child = tokio::process::Command::from(cmd)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", self.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut peak_rss_kb = None;
        let answered = loop {
            let notified = self.shared.answered.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let n = self.shared.inner.lock().unwrap_or_else(|e| e.into_inner()).answers.len();
            if n == 1 && peak_rss_kb.is_none() {
                // The peak of a cold start: read before the warm invocation.
                peak_rss_kb = pid.and_then(crate::procfs::hwm_kb);
            }
            if n >= 2 {
                break true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break false;
            }
        };
        let _ = child.kill().await;
        anyhow::ensure!(answered, "{name} did not answer two invocations within {timeout:?}");
        let s = self.shared.inner.lock().unwrap_or_else(|e| e.into_inner());
        let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64() * 1000.0;
        let (first_at, ok, answer) = s.answers[0].clone();
        Ok(ColdStart {
            init_ms: ms(started, s.next_at[0]),
            first_response_ms: ms(started, first_at),
            first_invocation_ms: ms(s.next_at[0], first_at),
            warm_invocation_ms: ms(s.next_at[1], s.answers[1].0),
            ok: ok && s.answers[1].1,
            peak_rss_kb,
            answer,
        })
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn next(State(s): State<Shared>) -> Response {
    let armed = {
        let mut inner = s.inner.lock().unwrap_or_else(|e| e.into_inner());
        let armed = inner.queue.pop_front();
        if armed.is_some() {
            inner.next_at.push(Instant::now());
        }
        armed
    };
    let Some((id, event)) = armed else {
        // Nothing more to do: the process waits here until it is killed.
        std::future::pending::<()>().await;
        return StatusCode::NO_CONTENT.into_response();
    };
    let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
    let mut headers = HeaderMap::new();
    let mut set = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    };
    set("lambda-runtime-aws-request-id", id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:000000000000:function:bench".into(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Sampled=0".into(),
    );
    set("content-type", "application/json".into());
    (StatusCode::OK, headers, event.to_string()).into_response()
}

fn record(s: &Shared, ok: bool, body: Bytes) -> StatusCode {
    s.inner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .answers
        .push((Instant::now(), ok, String::from_utf8_lossy(&body).into_owned()));
    s.answered.notify_waiters();
    StatusCode::ACCEPTED
}

async fn response(State(s): State<Shared>, Path(_id): Path<String>, body: Bytes) -> StatusCode {
    record(&s, true, body)
}

async fn error(State(s): State<Shared>, Path(_id): Path<String>, body: Bytes) -> StatusCode {
    record(&s, false, body)
}

async fn init_error(State(s): State<Shared>, body: Bytes) -> StatusCode {
    record(&s, false, body)
}
