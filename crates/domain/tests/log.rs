//! `realtime_domain::log` on the embedded adapters.

use realtime_domain::channels::Channel;
use realtime_domain::events::Envelope;
use realtime_domain::keys;
use realtime_domain::ports::Table;

use realtime_domain::events::{Cause, ConnectionChanged, Event};
use realtime_domain::log::*;
use realtime_embedded::sqlite::SqliteTable;

fn event() -> Envelope {
    Envelope::new(
        Event::ConnectionOpened(ConnectionChanged {
            connection_id: "c".into(),
            user_id: "u".into(),
        }),
        &Cause::default(),
    )
}

#[tokio::test]
async fn events_get_consecutive_seqs_once_and_replay_in_order() {
    let t = SqliteTable::in_memory();
    let ch = Channel::Chat("C1".into());
    let h0 = head(&t, &ch).await.unwrap();
    assert_eq!(h0.seq, 0);
    let evs: Vec<Envelope> = (0..5).map(|_| event()).collect();
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(
            append(&t, &ch, e, 3600).await.unwrap(),
            Appended::New(Head {
                epoch: h0.epoch.clone(),
                seq: i as u64 + 1
            })
        );
    }
    assert_eq!(
        append(&t, &ch, &evs[2], 3600).await.unwrap(),
        Appended::Duplicate {
            head: Head {
                epoch: h0.epoch.clone(),
                seq: 3
            },
            pushed: false
        }
    );
    mark_pushed(&t, &ch, &evs[2].id, 3600).await.unwrap();
    assert!(matches!(
        append(&t, &ch, &evs[2], 3600).await.unwrap(),
        Appended::Duplicate { pushed: true, .. }
    ));

    let Replay::Events { events, head, more } = replay(&t, &ch, &h0.epoch, 1, 2).await.unwrap() else {
        panic!("no replay")
    };
    assert_eq!(
        (events.iter().map(|e| e.0).collect::<Vec<_>>(), head.seq, more),
        (vec![2, 3], 5, true)
    );
    assert_eq!(events[0].1["id"], evs[1].id.as_str());
    assert_eq!(replay(&t, &ch, "other", 1, 10).await.unwrap(), Replay::Resync("epoch_changed"));
    assert_eq!(replay(&t, &ch, &h0.epoch, 9, 10).await.unwrap(), Replay::Resync("ahead_of_log"));
}

#[tokio::test]
async fn concurrent_events_on_one_channel_never_share_a_seq() {
    let t = std::sync::Arc::new(SqliteTable::in_memory());
    let ch = Channel::Chat("C2".into());
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (t, ch) = (t.clone(), ch.clone());
            tokio::spawn(async move { append(t.as_ref(), &ch, &event(), 3600).await })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        if let Appended::New(h) = task.await.unwrap().unwrap() {
            seqs.push(h.seq);
        }
    }
    seqs.sort();
    assert_eq!(seqs, (1..=40).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_trimmed_log_answers_resync_and_an_expired_one_starts_a_new_epoch() {
    let t = SqliteTable::in_memory();
    let ch = Channel::Chat("C3".into());
    let h = head(&t, &ch).await.unwrap();
    for _ in 0..3 {
        append(&t, &ch, &event(), 3600).await.unwrap();
    }
    // The oldest entry expired: what is left cannot replay from 0.
    t.delete(&keys::log("chat:C3"), &keys::log_seq(1), None).await.unwrap();
    assert_eq!(replay(&t, &ch, &h.epoch, 0, 10).await.unwrap(), Replay::Resync("log_trimmed"));
    assert!(matches!(replay(&t, &ch, &h.epoch, 1, 10).await.unwrap(), Replay::Events { ref events, .. } if events.len() == 2));
    // Every entry expired (DynamoDB has not deleted them yet): the next event opens a
    // new epoch, so seq 1 is never given twice in one epoch.
    let c = Channel::Chat("C4".into());
    let h = head(&t, &c).await.unwrap();
    for _ in 0..2 {
        append(&t, &c, &event(), -1).await.unwrap();
    }
    let Appended::New(after) = append(&t, &c, &event(), 3600).await.unwrap() else {
        panic!("not sequenced")
    };
    assert_ne!(after.epoch, h.epoch);
    assert_eq!(after.seq, 1);
    assert_eq!(replay(&t, &c, &h.epoch, 2, 10).await.unwrap(), Replay::Resync("epoch_changed"));
}
