#[tokio::main]
async fn main() -> Result<(), realtime_edge::lambda::Error> {
    realtime_edge::lambda::run_json(authorizer::handle).await
}
