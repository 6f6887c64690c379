//! The shard dispatcher's two adapters hand every job over once, to the worker function:
//! the AWS one as asynchronous invokes (against a Lambda Invoke API this test serves:
//! `X-Amz-Invocation-Type: Event`, the job as the payload, a throttle retried, one that lasts
//! handed back to the caller, who posts those shards itself), the embedded one as deliveries
//! to the same function.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use realtime_aws::invoke::LambdaDispatcher;
use realtime_domain::chat::payloads::Typing;
use realtime_domain::events::{Cause, Envelope, Event};
use realtime_domain::ports::{ShardDispatcher, ShardJob};
use realtime_embedded::invoke::EmbeddedDispatcher;
use std::sync::{Arc, Mutex};

fn jobs(n: u32) -> Vec<ShardJob> {
    let event = Envelope::new(
        Event::TypingUser(Typing {
            chat_id: "C1".into(),
            user_id: "u1".into(),
            display_name: "U".into(),
            is_typing: true,
            expires_at: None,
        }),
        &Cause::default(),
    );
    (1..=n)
        .map(|shard| ShardJob {
            channel: "chat:C1".into(),
            shard,
            shards: n + 1,
            seq: None,
            epoch: None,
            rate: 100.0,
            deadline_ms: 0,
            event: event.clone(),
            skip: Some(vec!["busy".into()]),
        })
        .collect()
}

#[derive(Clone, Default)]
struct FakeLambda {
    /// (function, invocation type, job) of each accepted invoke.
    accepted: Arc<Mutex<Vec<(String, String, ShardJob)>>>,
    /// Throttles to answer before accepting (u32::MAX: always).
    throttles: Arc<Mutex<u32>>,
}

async fn invoke(State(fake): State<FakeLambda>, Path(name): Path<String>, headers: HeaderMap, body: String) -> Response {
    {
        let mut t = fake.throttles.lock().unwrap();
        if *t > 0 {
            *t = t.saturating_sub(if *t == u32::MAX { 0 } else { 1 });
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("x-amzn-ErrorType", "TooManyRequestsException")],
                r#"{"message":"Rate Exceeded.","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}"#,
            )
                .into_response();
        }
    }
    let kind = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let job: ShardJob = serde_json::from_str(&body).expect("the payload is a shard job");
    fake.accepted.lock().unwrap().push((name, kind, job));
    StatusCode::ACCEPTED.into_response()
}

async fn fake_lambda() -> (FakeLambda, LambdaDispatcher) {
    let fake = FakeLambda::default();
    let app = axum::Router::new()
        .route("/2015-03-31/functions/{name}/invocations", axum::routing::post(invoke))
        .with_state(fake.clone());
    let url = format!("http://{}", realtime_tests::serve(app).await);
    let client = aws_sdk_lambda::Client::new(&realtime_aws::sdk::local_config(&url));
    (fake, LambdaDispatcher::new(client, "worker-fn".into()))
}

#[tokio::test]
async fn the_aws_dispatcher_invokes_the_worker_asynchronously_once_per_job() {
    let (fake, dispatcher) = fake_lambda().await;
    *fake.throttles.lock().unwrap() = 2; // retried within its backoff
    let sent = jobs(20);
    dispatcher.dispatch(sent.clone()).await.unwrap();
    let accepted = fake.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 20);
    assert!(
        accepted.iter().all(|(f, kind, _)| f == "worker-fn" && kind == "Event"),
        "{accepted:?}"
    );
    let mut got: Vec<ShardJob> = accepted.into_iter().map(|(_, _, j)| j).collect();
    got.sort_by_key(|j| j.shard);
    assert_eq!(got, sent, "every job once, as it was sent");
}

#[tokio::test]
async fn a_lasting_throttle_hands_the_jobs_back_to_the_caller() {
    let (fake, dispatcher) = fake_lambda().await;
    *fake.throttles.lock().unwrap() = u32::MAX;
    let err = dispatcher.dispatch(jobs(3)).await.unwrap_err();
    let mut back: Vec<u32> = err.failed.iter().map(|j| j.shard).collect();
    back.sort();
    assert_eq!(back, [1, 2, 3]);
    assert!(
        err.reason.contains("TooManyRequests") || err.reason.contains("Rate"),
        "{}",
        err.reason
    );
}

#[tokio::test]
async fn the_embedded_dispatcher_delivers_each_job_to_the_worker_function() {
    let dispatcher = EmbeddedDispatcher::new("FanoutWorkerFunction");
    let mut deliveries = dispatcher.deliveries().unwrap();
    let sent = jobs(20);
    dispatcher.dispatch(sent.clone()).await.unwrap();
    let mut got = Vec::new();
    while let Ok(d) = deliveries.try_recv() {
        assert_eq!(d.target, "FanoutWorkerFunction");
        got.push(serde_json::from_value::<ShardJob>(d.event).unwrap());
    }
    assert_eq!(got, sent);
    // Its runner gone, the jobs come back to the caller.
    drop(deliveries);
    let err = dispatcher.dispatch(jobs(2)).await.unwrap_err();
    assert_eq!(err.failed.len(), 2);
}
