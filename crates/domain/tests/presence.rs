//! Presence at scale on the embedded adapters: a burst of subscription changes makes one
//! reconcile a second, not one each, and a channel over the listing cap counts everyone.

use realtime_domain::auth::Claims;
use realtime_domain::channels::Channel;
use realtime_domain::config::Config;
use realtime_domain::connections;
use realtime_domain::deps::Deps;
use realtime_domain::keys;
use realtime_domain::presence::{self, MAX_MEMBERS};
use realtime_embedded::hub::Hub;
use realtime_embedded::sqlite::SqliteTable;
use std::sync::Arc;

fn deps() -> Deps {
    let bus = Arc::new(realtime_embedded::bus::EmbeddedBus::new(Vec::new()).unwrap());
    let mut config = Config::local("a-secret-of-thirty-two-bytes-or-more!");
    config.presence_grace_secs = 0;
    Deps::new(Arc::new(SqliteTable::in_memory()), bus, Arc::new(Hub::new()), config)
}

async fn subscribe(deps: &Deps, n: usize, channel: &Channel) {
    let id = format!("c{n}");
    let claims = Claims {
        sub: format!("user-{n}"),
        roles: Vec::new(),
        name: None,
        exp: i64::MAX,
    };
    connections::open(deps, &id, &claims).await.unwrap();
    let conn = connections::get(deps.table.as_ref(), &id).await.unwrap().unwrap();
    connections::subscribe(deps.table.as_ref(), &conn, channel, &[], None)
        .await
        .unwrap();
}

/// How many reconciles have written the channel's state (its version).
async fn reconciles(deps: &Deps, channel: &Channel) -> i64 {
    let state = deps.table.get(&keys::presence(&channel.to_string()), keys::STATE).await.unwrap();
    state.and_then(|s| s.i64("version")).unwrap_or(0)
}

#[tokio::test]
async fn a_burst_of_subscribes_makes_one_reconcile_a_second_not_one_each() {
    let deps = deps();
    let channel: Channel = "chat:storm".parse().unwrap();
    let n = 300;
    for i in 0..n {
        subscribe(&deps, i, &channel).await;
    }
    // Every subscriber settles at once, as the subscribe function does after its answer.
    let settles: Vec<_> = (0..n)
        .map(|_| {
            let (deps, channel) = (deps.clone(), channel.clone());
            tokio::spawn(async move { presence::settle(&deps, &channel).await })
        })
        .collect();
    for s in settles {
        s.await.unwrap().unwrap();
    }
    let p = presence::read(deps.table.as_ref(), &channel).await.unwrap();
    assert_eq!((p.members.len(), p.occupancy), (n, n as u32));
    // The burst may straddle a second: one claim each side, nothing more.
    let made = reconciles(&deps, &channel).await;
    assert!((1..=2).contains(&made), "{made} reconciles for {n} settles");
}

#[tokio::test]
async fn over_the_cap_occupancy_counts_everyone_and_the_unlisted_are_listed_when_there_is_room() {
    let deps = deps();
    let channel: Channel = "chat:big".parse().unwrap();
    let n = MAX_MEMBERS + 10;
    for i in 0..n {
        subscribe(&deps, i, &channel).await;
    }
    presence::settle(&deps, &channel).await.unwrap();
    let p = presence::read(deps.table.as_ref(), &channel).await.unwrap();
    assert_eq!((p.members.len(), p.occupancy), (MAX_MEMBERS, n as u32));

    // Ten listed members go: they leave, and ten of the unlisted take their places.
    let gone: Vec<String> = p.members.iter().take(10).map(|m| m.user_id.clone()).collect();
    for u in &gone {
        let i: usize = u.trim_start_matches("user-").parse().unwrap();
        connections::unsubscribe(deps.table.as_ref(), &format!("c{i}"), &channel)
            .await
            .unwrap();
    }
    presence::settle(&deps, &channel).await.unwrap();
    let p = presence::read(deps.table.as_ref(), &channel).await.unwrap();
    assert_eq!((p.members.len(), p.occupancy), (MAX_MEMBERS, MAX_MEMBERS as u32));
    assert!(p.members.iter().all(|m| !gone.contains(&m.user_id)));
}

#[tokio::test]
async fn under_the_cap_a_read_s_occupancy_and_members_agree_while_joiners_wait_for_their_second() {
    let deps = deps();
    let channel: Channel = "chat:agree".parse().unwrap();
    for i in 0..3 {
        subscribe(&deps, i, &channel).await;
    }
    let first = presence::reconcile(&deps, &channel).await.unwrap();
    assert_eq!(first.joined, 3);
    // Two more within the same second: they wait for the next one, and are not counted yet.
    for i in 3..5 {
        subscribe(&deps, i, &channel).await;
    }
    let second = presence::reconcile(&deps, &channel).await.unwrap();
    let p = presence::read(deps.table.as_ref(), &channel).await.unwrap();
    assert_eq!(p.occupancy as usize, p.members.len(), "{second:?}");
    if second.joined == 0 {
        assert!(second.deferred_ms.is_some());
        assert_eq!((p.members.len(), second.occupancy), (3, 3));
    }
    // At the next second (its wake-up), everyone is listed and counted.
    if let Some(at) = second.deferred_ms {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        tokio::time::sleep(std::time::Duration::from_millis((at - now).max(0) as u64 + 5)).await;
        presence::reconcile(&deps, &channel).await.unwrap();
    }
    let p = presence::read(deps.table.as_ref(), &channel).await.unwrap();
    assert_eq!((p.members.len(), p.occupancy), (5, 5));
}
