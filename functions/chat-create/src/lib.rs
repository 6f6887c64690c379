//! `POST /api/chat`: creates a chat; the caller joins as organizer.

use realtime_shared::http::{self, HttpRequest, HttpResult};
use realtime_shared::{chat, Deps};

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    let body = http::json_body(&req)?;
    let view = chat::create(&deps, &user, body, &http::cause(&req, &user)).await?;
    Ok(http::json(201, &view))
}
