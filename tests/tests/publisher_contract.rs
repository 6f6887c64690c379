//! The `EventPublisher` contract, run against both adapters: `EventBridgePublisher` on
//! moto (a bus, a rule `{"source":[{"prefix":"realtime."}]}` targeting an SQS queue that
//! the test reads) and `EmbeddedBus` (the same rule, targeting a dispatch that records).
//!
//! Both subjects are driven through `Subject` (a publisher and an observer of what the
//! rule delivered), so every case runs unchanged on each.

use anyhow::{ensure, Context};
use realtime_aws::eventbridge::EventBridgePublisher;
use realtime_aws::sdk::local_config;
use realtime_domain::events::{Cause, ConnectionChanged, Envelope, Event};
use realtime_domain::ports::{EventPublisher, PublishError};
use realtime_embedded::bus::{BusRule, EmbeddedBus};
use realtime_tests::moto::{self, Moto};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const RULE_PATTERN: &str = r#"{"source":[{"prefix":"realtime."}]}"#;
/// How long to wait for expected events at most (moto delivers synchronously, the
/// embedded bus within milliseconds).
const ARRIVAL: Duration = Duration::from_secs(5);
/// How long to keep watching after the expected events arrived, for duplicates or
/// events that should not have been delivered.
const SETTLE: Duration = Duration::from_millis(300);

/// Where the rule's target delivers, as EventBridge event JSON (`source`, `detail-type`,
/// `detail`, ...).
enum Observer {
    Queue { sqs: aws_sdk_sqs::Client, url: String },
    Recorder(mpsc::UnboundedReceiver<Value>),
}

impl Observer {
    /// What arrived since the last poll (does not wait).
    async fn poll(&mut self) -> anyhow::Result<Vec<Value>> {
        match self {
            Observer::Queue { sqs, url } => {
                let out = sqs
                    .receive_message()
                    .queue_url(url.as_str())
                    .max_number_of_messages(10)
                    .wait_time_seconds(0)
                    // Received messages stay invisible for the rest of the test.
                    .visibility_timeout(600)
                    .send()
                    .await
                    .context("ReceiveMessage")?;
                out.messages()
                    .iter()
                    .map(|m| serde_json::from_str(m.body().unwrap_or_default()).context("message body is not JSON"))
                    .collect()
            }
            Observer::Recorder(rx) => {
                let mut got = Vec::new();
                while let Ok(v) = rx.try_recv() {
                    got.push(v);
                }
                Ok(got)
            }
        }
    }
}

struct Subject {
    name: &'static str,
    publisher: Box<dyn EventPublisher>,
    observer: Observer,
    /// Whether the adapter refuses an entry over 256 KB the way EventBridge does.
    enforces_size_limit: bool,
    _moto: Option<Moto>,
}

impl Subject {
    /// Collects deliveries until `expected` arrived (or `ARRIVAL` passed), then for
    /// `SETTLE` more.
    async fn collect(&mut self, expected: usize) -> anyhow::Result<Vec<Value>> {
        let mut got = Vec::new();
        let deadline = Instant::now() + ARRIVAL;
        while got.len() < expected && Instant::now() < deadline {
            let batch = self.observer.poll().await?;
            if batch.is_empty() {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            got.extend(batch);
        }
        let settle = Instant::now() + SETTLE;
        while Instant::now() < settle {
            got.extend(self.observer.poll().await?);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok(got)
    }
}

async fn eventbridge_on_moto() -> anyhow::Result<Subject> {
    let moto = moto::start().await?;
    let config = local_config(&moto.endpoint);
    let eb = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);

    let bus = "realtime-contract";
    eb.create_event_bus().name(bus).send().await.context("CreateEventBus")?;
    let url = sqs
        .create_queue()
        .queue_name("observer")
        .send()
        .await
        .context("CreateQueue")?
        .queue_url
        .context("no queue url")?;
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .context("GetQueueAttributes")?;
    let queue_arn = attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .cloned()
        .context("no queue ARN")?;
    eb.put_rule()
        .name("to-observer")
        .event_bus_name(bus)
        .event_pattern(RULE_PATTERN)
        .send()
        .await
        .context("PutRule")?;
    eb.put_targets()
        .rule("to-observer")
        .event_bus_name(bus)
        .targets(aws_sdk_eventbridge::types::Target::builder().id("queue").arn(queue_arn).build()?)
        .send()
        .await
        .context("PutTargets")?;

    Ok(Subject {
        name: "EventBridgePublisher on moto",
        publisher: Box::new(EventBridgePublisher::new(eb, bus)),
        observer: Observer::Queue { sqs, url },
        enforces_size_limit: true,
        _moto: Some(moto),
    })
}

fn embedded_bus() -> anyhow::Result<Subject> {
    let rule = BusRule {
        name: "to-observer".into(),
        pattern: serde_json::from_str(RULE_PATTERN)?,
        target: "observer".into(),
    };
    let bus = EmbeddedBus::new(vec![rule])?;
    let (tx, rx) = mpsc::unbounded_channel();
    let deliveries = bus.deliveries().expect("a new bus has its deliveries");
    tokio::spawn(realtime_embedded::bus::run_targets(deliveries, move |target, event| {
        let tx = tx.clone();
        async move {
            assert_eq!(target, "observer");
            tx.send(event).map_err(|e| e.to_string())
        }
    }));
    Ok(Subject {
        name: "EmbeddedBus",
        publisher: Box::new(bus),
        observer: Observer::Recorder(rx),
        // The embedded bus takes any size (it has no wire format to limit): the size
        // limit is asserted for EventBridge only, and the domain must not rely on it
        // being enforced locally.
        enforces_size_limit: false,
        _moto: None,
    })
}

fn envelope(i: usize) -> Envelope {
    Envelope::new(
        Event::ConnectionOpened(ConnectionChanged {
            connection_id: format!("conn-{i}"),
            user_id: format!("user-{i}"),
        }),
        &Cause::default(),
    )
}

fn detail_id(v: &Value) -> String {
    v["detail"]["id"].as_str().unwrap_or_default().to_string()
}

/// Every published envelope arrived exactly once, and nothing else did.
fn ensure_exactly_once(published: &[Envelope], got: &[Value]) -> anyhow::Result<()> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for v in got {
        *counts.entry(detail_id(v)).or_default() += 1;
    }
    let dupes: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    ensure!(dupes.is_empty(), "delivered more than once: {dupes:?}");
    let missing: Vec<_> = published.iter().filter(|e| !counts.contains_key(&e.id)).map(|e| &e.id).collect();
    ensure!(missing.is_empty(), "never delivered: {missing:?}");
    ensure!(
        got.len() == published.len(),
        "{} delivered for {} published",
        got.len(),
        published.len()
    );
    Ok(())
}

async fn one_event_arrives_as_published(s: &mut Subject) -> anyhow::Result<()> {
    let e = envelope(1);
    s.publisher.publish(std::slice::from_ref(&e)).await?;
    let got = s.collect(1).await?;
    ensure!(got.len() == 1, "expected 1 delivery, got {}: {got:?}", got.len());
    let ev = &got[0];
    ensure!(ev["source"] == e.source.as_str(), "source: {}", ev["source"]);
    ensure!(ev["detail-type"] == e.event_type.as_str(), "detail-type: {}", ev["detail-type"]);
    ensure!(ev["detail"] == serde_json::to_value(&e)?, "detail: {}", ev["detail"]);
    let back: Envelope = serde_json::from_value(ev["detail"].clone())?;
    ensure!(back == e, "the detail does not read back as the envelope");
    let time = chrono::DateTime::parse_from_rfc3339(ev["time"].as_str().context("no time")?)?;
    ensure!(
        time.timestamp() == e.occurred_at.timestamp(),
        "time {time} != occurred_at {}",
        e.occurred_at
    );
    Ok(())
}

async fn more_than_one_batch_arrives_exactly_once(s: &mut Subject) -> anyhow::Result<()> {
    let events: Vec<Envelope> = (0..25).map(envelope).collect();
    s.publisher.publish(&events).await?;
    let got = s.collect(events.len()).await?;
    ensure_exactly_once(&events, &got)
}

async fn more_than_256_kb_in_total_arrives_exactly_once(s: &mut Subject) -> anyhow::Result<()> {
    // 3 × ~100 KB: fine one by one, too much for one call.
    let events: Vec<Envelope> = (0..3)
        .map(|i| {
            let mut e = envelope(100 + i);
            e.data = json!({ "blob": "x".repeat(100_000) });
            e
        })
        .collect();
    s.publisher.publish(&events).await?;
    let got = s.collect(events.len()).await?;
    ensure_exactly_once(&events, &got)?;
    ensure!(
        got.iter()
            .all(|v| v["detail"]["data"]["blob"].as_str().map(str::len) == Some(100_000)),
        "a blob was altered"
    );
    Ok(())
}

async fn an_event_the_rule_does_not_match_is_not_delivered(s: &mut Subject) -> anyhow::Result<()> {
    let mut other = envelope(200);
    other.source = "other.app".into();
    // A matching event published after it: once it arrived (and the settle time
    // passed), the unmatched one would have too.
    let marker = envelope(201);
    s.publisher.publish(std::slice::from_ref(&other)).await?;
    s.publisher.publish(std::slice::from_ref(&marker)).await?;
    let got = s.collect(1).await?;
    ensure!(!got.iter().any(|v| detail_id(v) == other.id), "the unmatched event was delivered");
    ensure_exactly_once(std::slice::from_ref(&marker), &got)
}

async fn an_entry_over_256_kb_is_refused(s: &mut Subject) -> anyhow::Result<()> {
    if !s.enforces_size_limit {
        // See `embedded_bus`: not enforced by the embedded adapter.
        return Ok(());
    }
    let small = envelope(300);
    let mut big = envelope(301);
    big.data = json!({ "blob": "x".repeat(256 * 1024) });
    let res = s.publisher.publish(&[small, big.clone()]).await;
    match res {
        Err(PublishError::Invalid(msg)) => ensure!(msg.contains(&big.id), "the error does not name the event: {msg}"),
        other => anyhow::bail!("expected PublishError::Invalid, got {other:?}"),
    }
    // Refused as a whole: nothing of that call was sent.
    let got = s.collect(0).await?;
    ensure!(got.is_empty(), "{} event(s) delivered from a refused call", got.len());
    Ok(())
}

/// The contract: every case, in order, on one subject.
async fn contract(mut s: Subject) -> anyhow::Result<()> {
    macro_rules! case {
        ($f:ident) => {{
            let t = Instant::now();
            $f(&mut s).await.with_context(|| format!("{}: {}", s.name, stringify!($f)))?;
            eprintln!("{}: {} ok in {:?}", s.name, stringify!($f), t.elapsed());
        }};
    }
    case!(one_event_arrives_as_published);
    case!(more_than_one_batch_arrives_exactly_once);
    case!(more_than_256_kb_in_total_arrives_exactly_once);
    case!(an_event_the_rule_does_not_match_is_not_delivered);
    case!(an_entry_over_256_kb_is_refused);
    Ok(())
}

#[tokio::test]
async fn eventbridge_publisher_on_moto_meets_the_contract() -> anyhow::Result<()> {
    let t = Instant::now();
    let subject = eventbridge_on_moto().await?;
    eprintln!("moto ready and wired in {:?}", t.elapsed());
    contract(subject).await
}

#[tokio::test]
async fn embedded_bus_meets_the_contract() -> anyhow::Result<()> {
    contract(embedded_bus()?).await
}
