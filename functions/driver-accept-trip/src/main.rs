#[tokio::main]
async fn main() -> Result<(), realtime_shared::lambda::Error> {
    realtime_shared::lambda::run_http(driver_accept_trip::handle).await
}
