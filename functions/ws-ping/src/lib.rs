//! WebSocket `ping`: answers `pong` (keeps the connection under API Gateway's idle timeout).

use realtime_domain::frames::{ClientFrame, ServerFrame};
use realtime_domain::{ApiError, Deps};
use realtime_edge::ws::{self, WsRequest, WsResult};

pub async fn handle(deps: Deps, req: WsRequest) -> WsResult {
    let conn_id = ws::connection_id(&req)?;
    let ClientFrame::Ping(f) = ws::frame(&req)? else {
        return Err(ApiError::BadRequest("expected a ping frame".into()));
    };
    ws::reply(&deps, conn_id, &ServerFrame::Pong { id: f.id }).await?;
    Ok(ws::ok())
}
