//! The `ConnectionPusher` contract, run against both adapters: the embedded `Hub`
//! and the AWS `ApiGatewayPusher` pointed at the local stack's `@connections`
//! (moto's management API never answers 410, the local stack does). Observed by a
//! real WebSocket client connected to the local stack.

use realtime_aws::apigw::{client_for, ApiGatewayPusher};
use realtime_aws::sdk::local_config;
use realtime_domain::ports::{ConnectionPusher, PushError};
use realtime_tests::client::{Http, TokenIn, WsClient};
use realtime_tests::start_stack;
use std::sync::Arc;
use std::time::Duration;

async fn contract(pusher_for: impl Fn(&realtime_local::Running) -> Arc<dyn ConnectionPusher>) {
    let stack = start_stack().await.unwrap();
    let pusher = pusher_for(&stack);
    let token = Http::new(stack.http_url()).dev_token("carol", &[]).await.unwrap();
    let mut client = WsClient::connect(&stack.ws_url(), Some(&token), TokenIn::Subprotocol)
        .await
        .unwrap();
    let id = stack.stack.hub.ids().pop().expect("one connection");

    // A post arrives as one frame with exactly the bytes sent.
    let payload = r#"{"type":"event","channel":"user:carol","event":{"n":1,"s":"héllo"}}"#;
    pusher.post(&id, payload.as_bytes()).await.unwrap();
    let got = client.next(Duration::from_secs(5)).await.expect("a frame");
    assert_eq!(
        got.to_string(),
        serde_json::from_str::<serde_json::Value>(payload).unwrap().to_string()
    );

    // Posts to an unknown connection are Gone (410).
    assert_eq!(pusher.post("no-such-connection", b"{}").await, Err(PushError::Gone));
    assert_eq!(pusher.info("no-such-connection").await.err(), Some(PushError::Gone));

    // Info on a live connection.
    let info = pusher.info(&id).await.unwrap();
    assert!(info.connected_at <= chrono::Utc::now());
    assert_eq!(info.source_ip.as_deref(), Some("127.0.0.1"));

    // Close ends the client's socket; the connection is Gone afterwards.
    pusher.close(&id).await.unwrap();
    assert!(client.next(Duration::from_secs(5)).await.is_none(), "the socket is closed");
    assert_eq!(pusher.post(&id, b"{}").await, Err(PushError::Gone));
    assert_eq!(pusher.close(&id).await, Err(PushError::Gone));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_hub_passes_the_contract() {
    contract(|s| s.stack.hub.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_gateway_pusher_against_the_local_management_api_passes_the_contract() {
    contract(|s| {
        let config = local_config(&s.http_url());
        Arc::new(ApiGatewayPusher::new(client_for(&config, &s.http_url())))
    })
    .await;
}
