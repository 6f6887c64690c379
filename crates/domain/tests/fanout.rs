//! `realtime_domain::fanout` on the embedded adapters.

use realtime_domain::channels::{channels_for, Channel};
use realtime_domain::connections::{self};
use realtime_domain::deps::Deps;
use realtime_domain::events::Envelope;
use realtime_domain::ports::PushError;

use realtime_domain::fanout::*;
use serde_json::json;

use realtime_domain::auth::Claims;
use realtime_domain::config::Config;
use realtime_domain::events::{Cause, ConnectionChanged, Event, Position};
use realtime_domain::ports::{ConnectionInfo, ConnectionPusher};
use realtime_embedded::hub::{Hub, Outbound};
use realtime_embedded::sqlite::SqliteTable;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Throttles the first `fails` posts, then posts to the hub.
struct Flaky {
    hub: Arc<Hub>,
    fails: AtomicU32,
}

#[async_trait::async_trait]
impl ConnectionPusher for Flaky {
    async fn post(&self, id: &str, data: &[u8]) -> Result<(), PushError> {
        if self
            .fails
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(PushError::Throttled);
        }
        self.hub.post(id, data).await
    }
    async fn close(&self, id: &str) -> Result<(), PushError> {
        self.hub.close(id).await
    }
    async fn info(&self, id: &str) -> Result<ConnectionInfo, PushError> {
        self.hub.info(id).await
    }
}

/// `seq` differs per test: the per-process dedupe is keyed by the pusher's address.
async fn one_subscriber(fails: u32, seq: u64) -> (Deps, Envelope, realtime_embedded::hub::Outgoing) {
    let hub = Arc::new(Hub::new());
    let rx = hub.register("c1", None);
    let bus = Arc::new(realtime_embedded::bus::EmbeddedBus::new(Vec::new()).unwrap());
    let pusher = Arc::new(Flaky {
        hub,
        fails: AtomicU32::new(fails),
    });
    let deps = Deps::new(
        Arc::new(SqliteTable::in_memory()),
        bus,
        pusher,
        Config::local("a-secret-of-thirty-two-bytes-or-more!"),
    );
    let claims = Claims {
        sub: "u1".into(),
        roles: Vec::new(),
        name: None,
        exp: i64::MAX,
    };
    connections::open(&deps, "c1", &claims).await.unwrap();
    let conn = connections::get(deps.table.as_ref(), "c1").await.unwrap().unwrap();
    let mut event = Envelope::new(
        Event::ConnectionOpened(ConnectionChanged {
            connection_id: "c9".into(),
            user_id: "u9".into(),
        }),
        &Cause::default(),
    );
    let channel = channels_for(&event).into_iter().next().expect("a channel");
    connections::subscribe(deps.table.as_ref(), &conn, &channel, &[], None)
        .await
        .unwrap();
    event.sequence = vec![Position {
        channel: channel.to_string(),
        epoch: "E".into(),
        seq,
    }];
    (deps, event, rx)
}

#[tokio::test]
async fn a_throttled_push_of_a_seqd_event_goes_again_in_a_later_round() {
    let (deps, event, mut rx) = one_subscriber(PUSH_ROUNDS - 1, 7).await;
    let report = deliver(&deps, &event).await.unwrap();
    assert_eq!((report.delivered, report.throttled), (1, 0), "{report:?}");
    let Some(Outbound::Text(frame)) = rx.try_recv().ok() else {
        panic!("no frame")
    };
    assert!(frame.contains("\"seq\":7"), "{frame}");
}

#[tokio::test(start_paused = true)]
async fn a_push_throttled_every_round_is_counted_once() {
    let (deps, event, mut rx) = one_subscriber(THROTTLED_ROUNDS, 8).await;
    let report = deliver(&deps, &event).await.unwrap();
    assert_eq!((report.delivered, report.throttled), (0, 1), "{report:?}");
    assert!(rx.try_recv().is_err());
}

/// EventBridge delivers at least once: a redelivery of an event without a seq (after a
/// later channel of it failed, say) pushes nothing to channels it reached.
#[tokio::test]
async fn a_redelivered_event_without_a_seq_is_pushed_once() {
    let (deps, mut event, mut rx) = one_subscriber(0, 0).await;
    event.sequence.clear();
    // The admin channel, which has no log (so no seq) at all.
    assert_eq!(channels_for(&event), [Channel::Admin]);
    let first = deliver(&deps, &event).await.unwrap();
    assert_eq!((first.delivered, first.duplicates), (1, 0), "{first:?}");
    assert!(matches!(rx.try_recv(), Ok(Outbound::Text(_))));
    let again = deliver(&deps, &event).await.unwrap();
    assert_eq!((again.delivered, again.duplicates), (0, again.channels), "{again:?}");
    assert!(rx.try_recv().is_err());
}

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
