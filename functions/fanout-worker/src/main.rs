use realtime_edge::IntoHandler;

#[tokio::main]
async fn main() -> Result<(), realtime_edge::lambda::Error> {
    fanout_worker::handle.run().await
}
