#[tokio::main]
async fn main() -> Result<(), realtime_shared::lambda::Error> {
    realtime_shared::lambda::run_event(log_relay::handle).await
}
