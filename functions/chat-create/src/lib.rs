//! `POST /api/chat`: creates a chat; the caller joins as organizer.

use realtime_domain::{chat, Deps};
use realtime_edge::http::{self, HttpRequest, HttpResult};

pub async fn handle(deps: Deps, req: HttpRequest) -> HttpResult {
    let user = http::authenticate(&deps, &req)?;
    let body = http::json_body(&req)?;
    let view = chat::create(&deps, &user, body, &http::cause(&req, &user)).await?;
    Ok(http::json(201, &view))
}
