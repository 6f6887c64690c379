use realtime_edge::IntoHandler;

#[tokio::main]
async fn main() -> Result<(), realtime_edge::lambda::Error> {
    // Shards 1..S-1 go to the fanout-worker function.
    fanout::handle.run_with(realtime_aws::invoke::LambdaDispatcher::setup).await
}
