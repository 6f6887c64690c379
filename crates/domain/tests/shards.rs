//! Sharded subscriptions and the sharded fan-out on the embedded adapters: subscriptions
//! spread over shards and are found again, a channel grows as it fills, every shard's
//! subscribers get an event once, and the posts keep to the budget.

use realtime_domain::auth::Claims;
use realtime_domain::channels::Channel;
use realtime_domain::config::Config;
use realtime_domain::connections;
use realtime_domain::deps::Deps;
use realtime_domain::events::{Cause, Envelope, Event, MessageStored, Position};
use realtime_domain::fanout::deliver;
use realtime_domain::ports::{Query, Table};
use realtime_domain::shards;
use realtime_embedded::hub::Hub;
use realtime_embedded::simulator::{Behaviour, SimulatedApiGateway};
use realtime_embedded::sqlite::SqliteTable;
use std::sync::Arc;
use std::time::Duration;

fn deps(pusher: Arc<dyn realtime_domain::ports::ConnectionPusher>) -> Deps {
    let bus = Arc::new(realtime_embedded::bus::EmbeddedBus::new(Vec::new()).unwrap());
    Deps::new(
        Arc::new(SqliteTable::in_memory()),
        bus,
        pusher,
        Config::local("a-secret-of-thirty-two-bytes-or-more!"),
    )
}

async fn subscribe(deps: &Deps, id: &str, channel: &Channel) {
    let claims = Claims {
        sub: format!("user-{id}"),
        roles: Vec::new(),
        name: None,
        exp: i64::MAX,
    };
    connections::open(deps, id, &claims).await.unwrap();
    let conn = connections::get(deps.table.as_ref(), id).await.unwrap().unwrap();
    connections::subscribe(deps.table.as_ref(), &conn, channel, &[], None)
        .await
        .unwrap();
}

async fn shard_sizes(table: &dyn Table, channel: &str) -> Vec<usize> {
    let n = shards::count(table, channel).await.unwrap();
    let mut sizes = Vec::new();
    for s in 0..n {
        sizes.push(connections::shard_subscribers(table, channel, s).await.unwrap().0.len());
    }
    sizes
}

fn message(chat: &str, seq: u64) -> Envelope {
    let mut e = Envelope::new(
        Event::MessageStored(MessageStored {
            id: format!("m{seq}"),
            chat_id: chat.into(),
            sender_id: "u".into(),
            sender_role: "user".into(),
            content: "hello, everyone".into(),
            client_message_id: None,
            created_at: chrono::Utc::now(),
        }),
        &Cause::default(),
    );
    e.sequence = vec![Position {
        channel: format!("chat:{chat}"),
        epoch: "E".into(),
        seq,
    }];
    e
}

#[tokio::test]
async fn every_shard_gets_the_event_once_and_unsubscribe_finds_the_shard() {
    let hub = Arc::new(Hub::new());
    let deps = deps(hub.clone());
    let channel = Channel::Chat("big".into());
    shards::ensure(deps.table.as_ref(), "chat:big", 8).await.unwrap();
    let mut inboxes = Vec::new();
    for i in 0..200 {
        let id = format!("c{i}");
        inboxes.push(hub.register(&id, None));
        subscribe(&deps, &id, &channel).await;
    }
    let sizes = shard_sizes(deps.table.as_ref(), "chat:big").await;
    assert_eq!(sizes.len(), 8);
    assert_eq!(sizes.iter().sum::<usize>(), 200);
    assert!(sizes.iter().all(|n| *n > 5), "spread: {sizes:?}");
    // Subscribing again (a new filter, say) keeps the shard, even after the channel grew.
    shards::ensure(deps.table.as_ref(), "chat:big", 16).await.unwrap();
    subscribe(&deps, "c7", &channel).await;
    assert_eq!(connections::subscribers(deps.table.as_ref(), &channel).await.unwrap().len(), 200);

    let report = deliver(&deps, &message("big", 1)).await.unwrap();
    assert_eq!(
        (report.delivered, report.shards, report.undelivered),
        (200, 16 + 1, 0),
        "{report:?}"
    );
    for rx in &mut inboxes {
        assert!(rx.try_recv().is_ok());
        assert!(rx.try_recv().is_err(), "one frame each");
    }
    // A redelivery pushes nothing again.
    let again = deliver(&deps, &message("big", 1)).await.unwrap();
    assert_eq!(again.delivered, 0);

    // Unsubscribe and the connection's removal find the recorded shard.
    connections::unsubscribe(deps.table.as_ref(), "c1", &channel).await.unwrap();
    connections::remove(deps.table.as_ref(), "c2").await.unwrap();
    let left: Vec<String> = connections::subscribers(deps.table.as_ref(), &channel)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.connection_id)
        .collect();
    assert_eq!(left.len(), 198);
    assert!(!left.contains(&"c1".to_string()) && !left.contains(&"c2".to_string()));
    assert!(connections::subscription(deps.table.as_ref(), "c3", &channel)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn a_channel_grows_as_it_fills() {
    let deps = deps(Arc::new(Hub::new()));
    let channel = Channel::Chat("growing".into());
    assert_eq!(shards::count(deps.table.as_ref(), "chat:growing").await.unwrap(), 1);
    for i in 0..2_600 {
        subscribe(&deps, &format!("conn-{i:05}"), &channel).await;
    }
    // ~2,600 subscriptions, a target of 1,000 a shard: grown past 2 (the estimate samples
    // one connection in 16, so it may be off by a few hundred).
    let count = shards::count(deps.table.as_ref(), "chat:growing").await.unwrap();
    assert!((2..=4).contains(&count), "{count}");
    let sizes = shard_sizes(deps.table.as_ref(), "chat:growing").await;
    assert_eq!(sizes.iter().sum::<usize>(), 2_600);
    // Everyone leaves: the estimate is back near 0, and no shard holds anything.
    for i in 0..2_600 {
        connections::remove(deps.table.as_ref(), &format!("conn-{i:05}")).await.unwrap();
    }
    assert!(shard_sizes(deps.table.as_ref(), "chat:growing").await.iter().all(|n| *n == 0));
    let estimate = deps
        .table
        .query(Query::new(shards::pk("chat:growing", 0)))
        .await
        .unwrap()
        .items
        .iter()
        .find(|i| i.sk == shards::SHARDS)
        .and_then(|i| i.get("estimate").and_then(|v| v.as_u64()));
    assert_eq!(estimate, Some(0));
}

/// 3,000 subscribers over 4 shards against a simulated API Gateway (5 ms posts) with a
/// budget of 2,000 posts/s: no second holds more posts than the budget, nobody is lost,
/// and a deadline that comes first leaves the rest counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_keep_to_the_budget_and_what_is_late_is_counted() {
    let api = Arc::new(SimulatedApiGateway::new(Behaviour {
        median: Duration::from_millis(5),
        p99: Duration::from_millis(10),
        rate: 10_000.0,
        burst: 5_000.0,
        gone: 0.0,
    }));
    let mut deps = deps(api.clone());
    let mut config = (*deps.config).clone();
    config.post_budget = 2_000.0;
    deps.config = Arc::new(config);
    let channel = Channel::Chat("budget".into());
    shards::ensure(deps.table.as_ref(), "chat:budget", 4).await.unwrap();
    for i in 0..3_000 {
        subscribe(&deps, &format!("b{i}"), &channel).await;
    }
    let t = std::time::Instant::now();
    let report = deliver(&deps, &message("budget", 1)).await.unwrap();
    let took = t.elapsed();
    let c = api.counts();
    assert_eq!((report.delivered, report.undelivered), (3_000, 0), "{report:?}");
    assert!(c.peak_per_sec <= 2_000, "{c:?}");
    assert!(took >= Duration::from_millis(1_400), "3,000 posts at 2,000/s took {took:?}");

    // A deadline of 1 s: about 2,000 posted, the rest counted as left to resume.
    let mut config = (*deps.config).clone();
    config.fanout_deadline_secs = 1;
    deps.config = Arc::new(config);
    let report = deliver(&deps, &message("budget", 2)).await.unwrap();
    assert_eq!(report.delivered + report.undelivered, 3_000, "{report:?}");
    assert!(report.undelivered > 500, "{report:?}");
}

/// Hands the jobs over by keeping them (the test runs them).
#[derive(Default)]
struct Kept(std::sync::Mutex<Vec<realtime_domain::ports::ShardJob>>);

#[async_trait::async_trait]
impl realtime_domain::ports::ShardDispatcher for Kept {
    async fn dispatch(&self, jobs: Vec<realtime_domain::ports::ShardJob>) -> Result<(), realtime_domain::ports::DispatchError> {
        self.0.lock().unwrap().extend(jobs);
        Ok(())
    }
}

#[tokio::test]
async fn a_sharded_offer_skips_busy_drivers_read_once_for_every_shard() {
    use realtime_domain::trips::model::{Place, TripType};
    use realtime_domain::trips::payloads::TripOfferCreated;
    let hub = Arc::new(Hub::new());
    let kept = Arc::new(Kept::default());
    let deps = deps(hub.clone()).with_dispatcher(kept.clone());
    shards::ensure(deps.table.as_ref(), "drivers", 4).await.unwrap();
    let mut inboxes = Vec::new();
    for i in 0..40 {
        let id = format!("d{i}");
        inboxes.push(hub.register(&id, None));
        subscribe(&deps, &id, &Channel::Drivers).await;
    }
    // Two drivers are on a trip.
    for busy in ["user-d3", "user-d30"] {
        let item = realtime_domain::ports::Item::new(realtime_domain::keys::BUSY_DRIVERS, busy);
        deps.table.put(item, None).await.unwrap();
    }
    let place = |name: &str| Place {
        name: name.into(),
        lat: 48.85,
        lng: 2.35,
    };
    let now = chrono::Utc::now();
    let offer = Envelope::new(
        Event::TripOfferCreated(TripOfferCreated {
            trip_id: "T1".into(),
            trip_type: TripType::Private,
            title: "airport".into(),
            origin: place("home"),
            destination: place("airport"),
            departure_time: now,
            total_seats: 1,
            price_per_seat: 100,
            estimated_earnings: 100,
            distance_km: 1.0,
            urgency: "high".into(),
            acceptance_deadline: now,
        }),
        &Cause::default(),
    );
    let mut report = deliver(&deps, &offer).await.unwrap();
    let jobs = std::mem::take(&mut *kept.0.lock().unwrap());
    assert_eq!(jobs.len(), 3, "shards 1..3 handed over");
    for job in jobs {
        let mut skip = job.skip.clone().expect("the busy set travels with the job");
        skip.sort();
        assert_eq!(skip, ["user-d3", "user-d30"]);
        report.add(realtime_domain::fanout::deliver_shard(&deps, job).await.unwrap());
    }
    assert_eq!((report.delivered, report.busy), (38, 2), "{report:?}");
    for (i, rx) in inboxes.iter_mut().enumerate() {
        assert_eq!(rx.try_recv().is_ok(), i != 3 && i != 30, "driver d{i}");
    }
}
