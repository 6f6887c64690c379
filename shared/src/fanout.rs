//! The fan-out: an event from the bus goes to every matching subscriber of each of
//! its channels, sequenced and logged first, pushed with bounded concurrency; stale
//! connections found on the way are deleted.

use crate::channels::{channels_for, Channel};
use crate::connections::{self, Subscriber};
use crate::deps::Deps;
use crate::events::{Envelope, Priority};
use crate::frames::ServerFrame;
use crate::log;
use crate::ports::{PushError, TableError};
use futures::stream::{self, StreamExt};
use serde_json::Value;

/// What one fan-out did, for logs, metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub channels: usize,
    pub delivered: usize,
    pub stale: usize,
    pub throttled: usize,
    pub failed: usize,
    /// Channels skipped because this event id was already sequenced there.
    pub duplicates: usize,
}

/// Whether an EventBridge content pattern over `data` matches.
pub fn filter_matches(filter: &Value, data: &Value) -> bool {
    let mut q = quamina::Quamina::<u8>::new();
    q.add_pattern(0, &filter.to_string()).is_ok()
        && q.matches_for_event(data.to_string().as_bytes())
            .map(|m| !m.is_empty())
            .unwrap_or(false)
}

/// Checks a filter at subscribe time, so a bad one is refused there and not ignored later.
pub fn validate_filter(filter: &Value) -> Result<(), String> {
    if !filter.is_object() {
        return Err("filter must be a JSON object (an EventBridge content pattern)".into());
    }
    quamina::Quamina::<u8>::new()
        .add_pattern(0, &filter.to_string())
        .map_err(|e| e.to_string())
}

pub async fn deliver(deps: &Deps, event: &Envelope) -> Result<Report, TableError> {
    let mut report = Report::default();
    let retention = deps.config.log_retention_secs;
    let table = deps.table.as_ref();
    for channel in channels_for(event) {
        report.channels += 1;
        let logged = channel.is_logged() && event.priority > Priority::Low;
        let (seq, epoch) = if logged {
            match log::append(table, &channel, event, retention).await? {
                log::Appended::New(head) => (Some(head.seq), Some(head.epoch)),
                // A redelivery: push again only if the first delivery did not finish.
                log::Appended::Duplicate { pushed: true, .. } => {
                    report.duplicates += 1;
                    continue;
                }
                log::Appended::Duplicate { head, pushed: false } => (Some(head.seq), Some(head.epoch)),
            }
        } else {
            (None, None)
        };
        let subs = connections::subscribers(table, &channel).await?;
        let targets: Vec<&Subscriber> = subs
            .iter()
            .filter(|s| s.wants(&event.event_type) && s.filter.as_ref().is_none_or(|f| filter_matches(f, &event.data)))
            .collect();
        if !targets.is_empty() {
            let frame = ServerFrame::Event {
                channel: channel.to_string(),
                seq,
                epoch,
                event: Box::new(event.clone()),
            }
            .to_json();
            push_all(deps, &channel, &targets, frame.as_bytes(), &mut report).await;
        }
        if logged {
            // Best effort: without the mark a redelivery pushes the same seq again,
            // which clients drop as a duplicate.
            if let Err(e) = log::mark_pushed(table, &channel, &event.id, retention).await {
                tracing::warn!(%channel, error = %e, "could not mark the event pushed");
            }
        }
    }
    Ok(report)
}

async fn push_all(deps: &Deps, channel: &Channel, targets: &[&Subscriber], frame: &[u8], report: &mut Report) {
    // Owned ids and a shared frame keep the futures free of borrowed lifetimes.
    let frame: std::sync::Arc<[u8]> = frame.into();
    let ids: Vec<String> = targets.iter().map(|s| s.connection_id.clone()).collect();
    let results: Vec<(String, Result<(), PushError>)> = stream::iter(ids)
        .map(|id| {
            let (pusher, frame) = (deps.pusher.clone(), frame.clone());
            async move {
                let r = pusher.post(&id, &frame).await;
                (id, r)
            }
        })
        .buffer_unordered(deps.config.fanout_concurrency)
        .collect()
        .await;
    for (id, r) in results {
        match r {
            Ok(()) => report.delivered += 1,
            Err(PushError::Gone) => {
                report.stale += 1;
                // Only the stale connection goes; a failed cleanup is retried by TTL.
                if let Err(e) = connections::remove(deps.table.as_ref(), &id).await {
                    tracing::warn!(connection_id = %id, error = %e, "stale connection cleanup failed");
                }
            }
            Err(PushError::Throttled) => report.throttled += 1,
            Err(e) => {
                report.failed += 1;
                tracing::warn!(connection_id = %id, %channel, error = %e, "push failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_filters_use_eventbridge_semantics() {
        let f = json!({"distanceKm": [{"numeric": ["<=", 50]}], "tripType": ["PRIVATE"]});
        assert!(filter_matches(&f, &json!({"distanceKm": 20, "tripType": "PRIVATE"})));
        assert!(!filter_matches(&f, &json!({"distanceKm": 80, "tripType": "PRIVATE"})));
        assert!(!filter_matches(&f, &json!({"distanceKm": 20})));
        assert!(validate_filter(&f).is_ok());
        assert!(validate_filter(&json!({"a": "not-a-list"})).is_err());
        assert!(validate_filter(&json!([1])).is_err());
    }
}
