//! `GET /api/chat/{chatId}/messages?before=&limit=`: a participant pages through the history, newest first.

use realtime_domain::ids::ChatId;
use realtime_domain::{chat, Deps};
use realtime_edge::http::{self, HttpRequest, HttpResult};

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    let chat_id: ChatId = http::path_id(&req, "chatId")?;
    let page = chat::history(
        &deps,
        &user,
        &chat_id,
        http::query_param(&req, "before"),
        http::query_param(&req, "limit"),
    )
    .await?;
    Ok(http::json(200, &page))
}
