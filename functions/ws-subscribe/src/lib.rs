//! WebSocket `subscribe`: validates the frame, authorizes the channel against state, stores the subscription and answers `subscribed` with the channel's epoch and seq;
//! then the channel's presence catches up.

use realtime_domain::frames::ClientFrame;
use realtime_domain::{connections, fanout, presence, resume, ApiError, Deps};
use realtime_edge::ws::{self, WsRequest, WsResult};

/// Bounds on what one subscription may ask for.
const MAX_PATTERNS: usize = 20;
const MAX_PATTERN_LEN: usize = 128;

fn validate_patterns(events: &[String]) -> Result<(), ApiError> {
    if events.len() > MAX_PATTERNS {
        return Err(ApiError::BadRequest(format!("at most {MAX_PATTERNS} event patterns")));
    }
    let bad = |p: &String| {
        p.len() > MAX_PATTERN_LEN
            || p.split('.').any(|s| {
                s.is_empty()
                    || !s
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'*')
            })
    };
    match events.iter().find(|p| bad(p)) {
        Some(p) => Err(ApiError::BadRequest(format!(
            "invalid event pattern {:?}",
            p.chars().take(40).collect::<String>()
        ))),
        None => Ok(()),
    }
}

pub async fn handle(deps: Deps, req: WsRequest) -> WsResult {
    let conn_id = ws::connection_id(&req)?;
    let ClientFrame::Subscribe(f) = ws::frame(&req)? else {
        return Err(ApiError::BadRequest("expected a subscribe frame".into()));
    };
    let channel = ws::channel(&f.channel)?;
    validate_patterns(&f.events)?;
    if let Some(filter) = &f.filter {
        fanout::validate_filter(filter).map_err(|e| ApiError::BadRequest(format!("invalid filter: {e}")))?;
    }
    let table = deps.table.as_ref();
    let conn = ws::connection(&deps, conn_id).await?;
    connections::authorize(table, &conn, &channel).await?;
    connections::subscribe(table, &conn, &channel, &f.events, f.filter.as_ref()).await?;
    // Subscribed first, replayed second: nothing falls between the two (a live
    // event may arrive before a replayed one; clients order by seq).
    if let Some(from) = &f.resume {
        let replayed = resume::replay_to(&deps, conn_id, None, &channel, &from.epoch, from.after).await?;
        realtime_edge::stats::resumed(table, replayed.events, replayed.resync).await;
    }
    connections::acknowledge(&deps, conn_id, f.id, &channel).await?;
    // After the answer: a new member is announced (coalesced with others of the second).
    presence::settle_all(&deps, std::slice::from_ref(&channel)).await;
    Ok(ws::ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_bounded_and_plain() {
        assert!(validate_patterns(&["chat.*".into(), "trip.**".into()]).is_ok());
        assert!(validate_patterns(&["chat..x".into()]).is_err());
        assert!(validate_patterns(&["Chat.*".into()]).is_err());
        assert!(validate_patterns(&vec!["a".to_string(); 21]).is_err());
    }
}
