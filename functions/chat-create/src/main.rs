use realtime_edge::IntoHandler;

#[tokio::main]
async fn main() -> Result<(), realtime_edge::lambda::Error> {
    chat_create::handle.run().await
}
