#[tokio::main]
async fn main() -> Result<(), realtime_shared::lambda::Error> {
    realtime_shared::lambda::run_stream(trip_status_stream::handle).await
}
