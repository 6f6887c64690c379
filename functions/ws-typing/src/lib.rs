//! WebSocket `typing` (`{"action":"typing","chatId","isTyping"}`): the typing indicator of the
//! connection's user, as `POST /api/typing` sets it. No answer on success; errors are `error` frames.

use realtime_domain::chat::typing;
use realtime_domain::events::Cause;
use realtime_domain::frames::ClientFrame;
use realtime_domain::{ApiError, Deps};
use realtime_edge::ws::{self, WsRequest, WsResult};

pub async fn handle(deps: Deps, req: WsRequest) -> WsResult {
    let conn_id = ws::connection_id(&req)?;
    let ClientFrame::Typing(f) = ws::frame(&req)? else {
        return Err(ApiError::BadRequest("expected a typing frame".into()));
    };
    let conn = ws::connection(&deps, conn_id).await?;
    conn.token_live()?;
    let cause = Cause {
        correlation_id: req.request_context.request_id.clone().unwrap_or_default(),
        causation_id: None,
        actor: Some(realtime_domain::events::Actor {
            user_id: conn.user_id.clone(),
            role: None,
        }),
    };
    typing::set(&deps, &conn.user_id, &f.chat_id, f.is_typing, &cause).await?;
    Ok(ws::ok())
}
