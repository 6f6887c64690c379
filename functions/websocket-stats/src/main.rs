use realtime_edge::IntoHandler;

#[tokio::main]
async fn main() -> Result<(), realtime_edge::lambda::Error> {
    websocket_stats::handle.run().await
}
