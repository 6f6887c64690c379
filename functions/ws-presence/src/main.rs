use realtime_edge::IntoHandler;

#[tokio::main]
async fn main() -> Result<(), realtime_edge::lambda::Error> {
    ws_presence::handle.run().await
}
