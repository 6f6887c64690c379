//! `POST /api/chat/{chatId}/complete`: the caller marks itself complete (`chat.completion.updated`,
//! then `chat.completion.ready` once when everybody has).

use realtime_domain::chat::completion;
use realtime_domain::ids::ChatId;
use realtime_domain::Deps;
use realtime_edge::http::{self, HttpRequest, HttpResult};

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    let chat_id: ChatId = http::path_id(&req, "chatId")?;
    // No body is needed; one that is sent must be JSON (an empty object at most).
    if !http::body_bytes(&req)?.iter().all(u8::is_ascii_whitespace) {
        let _: Empty = http::json_body(&req)?;
    }
    let status = completion::complete(&deps, &user, &chat_id, &http::cause(&req, &user)).await?;
    Ok(http::json(200, &status))
}

/// The body, when there is one: `{}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}
