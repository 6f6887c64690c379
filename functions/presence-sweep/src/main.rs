use realtime_edge::IntoHandler;

#[tokio::main]
async fn main() -> Result<(), realtime_edge::lambda::Error> {
    presence_sweep::handle.run().await
}
