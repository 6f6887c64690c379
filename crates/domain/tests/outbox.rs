//! `realtime_domain::outbox` on the embedded adapters.

use realtime_domain::events::Envelope;
use realtime_domain::log;
use realtime_domain::ports::{TableError, TxOp};

use realtime_domain::channels::Channel;
use realtime_domain::events::{Cause, Event, TurnChanged};
use realtime_domain::outbox::*;
use realtime_domain::ports::{Condition, Item};
use std::sync::Arc;

fn turn(chat: &str, n: usize) -> Envelope {
    Envelope::new(
        Event::TurnChanged(TurnChanged {
            chat_id: chat.into(),
            next_user_id: Some(format!("u{n}")),
            next_role: None,
            timestamp: chrono::Utc::now(),
        }),
        &Cause::default(),
    )
}

#[tokio::test]
async fn writers_of_one_channel_get_consecutive_seqs_in_commit_order() {
    let e = realtime_embedded::testing::embedded("outbox-test-secret-0123");
    let deps = Arc::new(e.deps.clone());
    let tasks: Vec<_> = (0..30)
        .map(|n| {
            let deps = deps.clone();
            tokio::spawn(async move {
                let state = TxOp::Put {
                    item: Item::new("STATE", format!("{n}")),
                    cond: None,
                };
                commit(&deps, vec![state], &[turn("C1", n), turn("C1", n)]).await.unwrap()
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in tasks {
        let events = t.await.unwrap();
        // The two events of one commit are adjacent, causes first.
        assert_eq!(events[1].sequence[0].seq, events[0].sequence[0].seq + 1);
        seqs.extend(events.iter().map(|e| e.sequence[0].seq));
    }
    seqs.sort();
    assert_eq!(seqs, (1..=60).collect::<Vec<_>>());
    let head = log::head(deps.table.as_ref(), &Channel::Chat("C1".into())).await.unwrap();
    assert_eq!(head.seq, 60);
}

#[tokio::test]
async fn a_failed_state_condition_writes_nothing_and_names_the_callers_op() {
    let e = realtime_embedded::testing::embedded("outbox-test-secret-0123");
    let ops = vec![
        TxOp::Put {
            item: Item::new("STATE", "a"),
            cond: None,
        },
        TxOp::Put {
            item: Item::new("STATE", "b"),
            cond: Some(Condition::Exists),
        },
    ];
    let err = commit(&e.deps, ops, &[turn("C2", 1)]).await.unwrap_err();
    assert!(
        matches!(err, TableError::TransactionCanceled { ref failed } if failed == &vec![1]),
        "{err:?}"
    );
    let head = log::head(e.deps.table.as_ref(), &Channel::Chat("C2".into())).await.unwrap();
    assert_eq!(head.seq, 0);
}
