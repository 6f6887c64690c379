#[tokio::main]
async fn main() -> Result<(), realtime_edge::lambda::Error> {
    realtime_edge::lambda::run_stream(trip_status_stream::handle).await
}
