//! `POST /api/chat/{chatId}/participants`: the caller joins the chat.

use realtime_domain::ids::ChatId;
use realtime_domain::{chat, Deps};
use realtime_edge::http::{self, HttpRequest, HttpResult};

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    let chat_id: ChatId = http::path_id(&req, "chatId")?;
    let body = http::json_body(&req)?;
    let p = chat::join(&deps, &user, &chat_id, body, &http::cause(&req, &user)).await?;
    Ok(http::json(200, &p))
}
