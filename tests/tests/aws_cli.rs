//! The AWS CLI pointed at the local stack with `--endpoint-url`, as a developer
//! would: `aws apigatewaymanagementapi post-to-connection` reaches a connected
//! client, and `aws events put-events` is routed by the template's rules to the
//! fan-out and on to subscribers.

use realtime_tests::client::{Http, TokenIn, WsClient};
use realtime_tests::procs::tools_dir;
use realtime_tests::start_stack;
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

/// Runs the pinned AWS CLI (from `infra/setup.sh`) against the local stack.
fn aws(endpoint: &str, args: &[&str]) -> Value {
    let bin = tools_dir().join("venv/bin/aws");
    assert!(bin.exists(), "{} is missing: run bash infra/setup.sh", bin.display());
    let out = Command::new(bin)
        .args(args)
        .args(["--endpoint-url", endpoint, "--region", "us-east-1", "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("the aws CLI runs");
    assert!(
        out.status.success(),
        "aws {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_to_connection_reaches_a_local_client() {
    let stack = start_stack().await.unwrap();
    let token = Http::new(stack.http_url()).dev_token("dora", &[]).await.unwrap();
    let mut client = WsClient::connect(&stack.ws_url(), Some(&token), TokenIn::Subprotocol)
        .await
        .unwrap();
    let id = stack.stack.hub.ids().pop().unwrap();
    let endpoint = stack.http_url();
    let data = r#"{"type":"event","channel":"user:dora","event":{"hello":"from the aws cli"}}"#;
    let id2 = id.clone();
    tokio::task::spawn_blocking(move || {
        aws(
            &endpoint,
            &[
                "apigatewaymanagementapi",
                "post-to-connection",
                "--connection-id",
                &id2,
                "--data",
                data,
            ],
        )
    })
    .await
    .unwrap();
    let got = client.next(Duration::from_secs(5)).await.expect("the posted frame");
    assert_eq!(got["event"]["hello"], "from the aws cli");
    // Under the stage, as the template's ManagementEndpoint output gives it.
    let endpoint = format!("{}/prod", stack.http_url());
    let info = tokio::task::spawn_blocking(move || aws(&endpoint, &["apigatewaymanagementapi", "get-connection", "--connection-id", &id]))
        .await
        .unwrap();
    assert_eq!(info["Identity"]["SourceIp"], "127.0.0.1");
    // This client sends no User-Agent; `aws_edges.rs` checks one that does.
    assert!(info["Identity"]["UserAgent"].is_string(), "{info}");
    client.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_events_is_routed_by_the_template_rules_to_subscribers() {
    let stack = start_stack().await.unwrap();
    let token = Http::new(stack.http_url()).dev_token("ops", &["admin"]).await.unwrap();
    let mut client = WsClient::connect(&stack.ws_url(), Some(&token), TokenIn::Subprotocol)
        .await
        .unwrap();
    assert_eq!(client.subscribe("s", "trip:T42", &["trip.**"]).await.unwrap()["type"], "subscribed");
    let envelope = json!({"id": ulid::Ulid::new().to_string(), "type": "trip.status.updated", "version": 1, "occurredAt": chrono::Utc::now(),
        "correlationId": "cli", "priority": "normal", "source": "realtime.trips", "tripId": "T42",
        "data": {"tripId": "T42", "previousStatus": "PUBLISHED", "newStatus": "IN_PROGRESS"}});
    // The template's rules are on its bus (`realtime-events` locally), not on `default`.
    let entries = json!([{"Source": "realtime.trips", "DetailType": "trip.status.updated", "Detail": envelope.to_string(), "EventBusName": "realtime-events"}]).to_string();
    let endpoint = stack.http_url();
    let answer = tokio::task::spawn_blocking(move || aws(&endpoint, &["events", "put-events", "--entries", &entries]))
        .await
        .unwrap();
    assert_eq!(answer["FailedEntryCount"], 0, "{answer}");
    let f = client.next_where(Duration::from_secs(5), |f| f["type"] == "event").await.unwrap();
    assert_eq!((f["channel"].as_str(), f["seq"].as_u64()), (Some("trip:T42"), Some(1)));
    assert_eq!(f["event"]["data"]["newStatus"], "IN_PROGRESS");

    // Without EventBusName the entry goes to `default`: accepted, routed nowhere, as on AWS.
    let mut other = envelope.clone();
    other["id"] = ulid::Ulid::new().to_string().into();
    let entries = json!([{"Source": "realtime.trips", "DetailType": "trip.status.updated", "Detail": other.to_string()}]).to_string();
    let endpoint = stack.http_url();
    let answer = tokio::task::spawn_blocking(move || aws(&endpoint, &["events", "put-events", "--entries", &entries]))
        .await
        .unwrap();
    assert_eq!(answer["FailedEntryCount"], 0, "{answer}");
    assert!(answer["Entries"][0]["EventId"].is_string());
    assert!(
        client
            .next_where(Duration::from_millis(800), |f| f["type"] == "event")
            .await
            .is_err(),
        "an event for the default bus reached the template's rules"
    );

    // Over 256 KB in one call: ValidationException, as EventBridge answers.
    let big = json!([{"Source": "realtime.trips", "DetailType": "t", "Detail": json!({"pad": "x".repeat(300 * 1024)}).to_string(), "EventBusName": "realtime-events"}]);
    let path = std::env::temp_dir().join(format!("entries-{}.json", ulid::Ulid::new()));
    std::fs::write(&path, big.to_string()).unwrap();
    let endpoint = stack.http_url();
    let arg = format!("file://{}", path.display());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(tools_dir().join("venv/bin/aws"))
            .args(["events", "put-events", "--entries", &arg])
            .args(["--endpoint-url", &endpoint, "--region", "us-east-1", "--output", "json"])
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_MAX_ATTEMPTS", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let _ = std::fs::remove_file(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("ValidationException"), "{stderr}");
    client.close().await;
    stack.stop().await;
}
