//! `POST /api/typing {chatId, isTyping}`: the caller's typing indicator in a chat (`chat.typing.user`, TTL'd).

use realtime_domain::chat::typing::{self, SetTyping};
use realtime_domain::Deps;
use realtime_edge::http::{self, HttpRequest, HttpResult};

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    let body: SetTyping = http::json_body(&req)?;
    let status = typing::set(&deps, &user.sub, &body.chat_id, body.is_typing, &http::cause(&req, &user)).await?;
    Ok(http::json(200, &status))
}
