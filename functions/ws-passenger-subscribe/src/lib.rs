//! WebSocket `passenger:subscribe` `{tripIds}`: subscribes the connection to `trip:{id}` of each
//! trip its user has booked (the generic channel subscription, authorized against state). Each
//! trip answers `subscribed` or an `error` frame (`forbidden` for a trip not booked).

use realtime_domain::frames::ServerFrame;
use realtime_domain::trips::access::{self, PassengerSubscribe};
use realtime_domain::{connections, ApiError, Deps};
use realtime_edge::ws::{self, WsRequest, WsResult};

pub async fn handle(deps: Deps, req: WsRequest) -> WsResult {
    let conn_id = ws::connection_id(&req)?;
    let f: PassengerSubscribe = ws::frame(&req)?;
    if f.action != "passenger:subscribe" {
        return Err(ApiError::BadRequest("expected a passenger:subscribe frame".into()));
    }
    let channels = f.channels()?;
    let table = deps.table.as_ref();
    let conn = ws::connection(&deps, conn_id).await?;
    conn.token_live()?;
    let mut joined = Vec::new();
    for channel in channels {
        let realtime_domain::channels::Channel::Trip(trip_id) = &channel else {
            continue;
        };
        // Only trips the passenger has booked (admins: any).
        let allowed =
            conn.roles.contains(&realtime_domain::auth::Role::Admin) || access::is_passenger(table, trip_id, &conn.user_id).await?;
        if allowed {
            connections::subscribe(table, &conn, &channel, &[], None).await?;
            connections::acknowledge(&deps, conn_id, f.id.clone(), &channel).await?;
            joined.push(channel);
        } else {
            let refusal = ServerFrame::Error {
                id: f.id.clone(),
                code: "forbidden".into(),
                message: format!("no booking on trip {trip_id}"),
            };
            ws::reply(&deps, conn_id, &refusal).await?;
        }
    }
    realtime_domain::presence::settle_all(&deps, &joined).await;
    Ok(ws::ok())
}
