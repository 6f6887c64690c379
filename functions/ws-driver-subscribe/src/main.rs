#[tokio::main]
async fn main() -> Result<(), realtime_shared::lambda::Error> {
    realtime_shared::lambda::run_ws(ws_driver_subscribe::handle).await
}
