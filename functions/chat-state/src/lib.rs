//! `GET /api/chat/{chatId}/state`: the whole session (participants, turn, recent messages,
//! who is typing, completion, settings) in one answer, from one DynamoDB Query.

use realtime_domain::ids::ChatId;
use realtime_domain::{chat, Deps};
use realtime_edge::http::{self, HttpRequest, HttpResult};

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    let chat_id: ChatId = http::path_id(&req, "chatId")?;
    let state = chat::session::state(&deps, &user, &chat_id).await?;
    Ok(http::json(200, &state))
}
