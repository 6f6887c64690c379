//! `POST /api/chat/{chatId}/messages`: stores a member's message and announces `chat.message.stored`.

use realtime_domain::ids::ChatId;
use realtime_domain::{chat, Deps};
use realtime_edge::http::{self, HttpRequest, HttpResult};

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    let chat_id: ChatId = http::path_id(&req, "chatId")?;
    let body = http::json_body(&req)?;
    let (msg, created) = chat::send(&deps, &user, &chat_id, body, &http::cause(&req, &user)).await?;
    // A retried send (same clientMessageId) answers 200 with the stored message.
    Ok(http::json(if created { 201 } else { 200 }, &msg))
}
