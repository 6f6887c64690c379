//! WebSocket `$connect`: stores the connection of the user the authorizer let in (its context in
//! `requestContext.authorizer`); invoked directly, it verifies the JWT itself (subprotocol
//! `bearer.<jwt>` or `?token=`).

use realtime_domain::auth;
use realtime_domain::events::{Cause, ConnectionChanged, Envelope, Event, Priority};
use realtime_domain::{connections, ApiError, Deps};
use realtime_edge::ws::{self, WsRequest, WsResult};

/// The subprotocol the server speaks; API Gateway requires it echoed on `$connect`.
pub const SUBPROTOCOL: &str = "realtime.v1";

pub async fn handle(deps: Deps, req: WsRequest) -> WsResult {
    let conn_id = ws::connection_id(&req)?;
    let protocols = ws::header(&req, "sec-websocket-protocol");
    let user = match auth::claims_from_context(&req.request_context.authorizer.fields) {
        Some(user) => user,
        None => {
            let token = protocols
                .and_then(auth::token_from_protocols)
                .or_else(|| req.query_string_parameters.first("token"))
                .ok_or_else(|| ApiError::Unauthorized("missing token".into()))?;
            auth::verify(deps.config.jwt_secret.expose(), token, realtime_domain::ports::table::now_epoch())
                .map_err(|e| ApiError::Unauthorized(e.to_string()))?
        }
    };
    connections::open(&deps, conn_id, &user).await?;
    realtime_edge::stats::connection_opened(deps.table.as_ref()).await;
    let opened = Event::ConnectionOpened(ConnectionChanged {
        connection_id: conn_id.into(),
        user_id: user.sub.clone(),
    });
    let cause = Cause {
        correlation_id: req.request_context.request_id.clone().unwrap_or_default(),
        ..Cause::default()
    };
    if let Err(e) = deps
        .publisher
        .publish(&[Envelope::new(opened, &cause).with_priority(Priority::Low)])
        .await
    {
        tracing::warn!(error = %e, "connection.opened not published");
    }
    let mut resp = ws::ok();
    if protocols.is_some_and(|p| p.split(',').any(|p| p.trim() == SUBPROTOCOL)) {
        resp.headers
            .insert("sec-websocket-protocol", http::HeaderValue::from_static(SUBPROTOCOL));
    }
    Ok(resp)
}
