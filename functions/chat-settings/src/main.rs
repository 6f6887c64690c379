#[tokio::main]
async fn main() -> Result<(), realtime_shared::lambda::Error> {
    realtime_shared::lambda::run_http(chat_settings::handle).await
}
