//! The embedded `EventPublisher`: an in-process event bus that matches each event
//! against the rules of `template.yaml` (EventBridge pattern semantics, by quamina)
//! and hands each match to whoever runs the targets, as a [`Delivery`] on a bounded
//! channel. The bus never calls its owner: the local stack takes the deliveries
//! ([`EmbeddedBus::deliveries`]) and runs them with EventBridge's retries ([`run_targets`]).

use async_trait::async_trait;
use quamina::Quamina;
use realtime_domain::events::Envelope;
use realtime_domain::ports::{EventPublisher, PublishError};
use realtime_domain::retry::Backoff;
use serde_json::{json, Value};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};

/// One rule: events matching `pattern` go to the function `target`.
#[derive(Debug, Clone)]
pub struct BusRule {
    pub name: String,
    pub pattern: Value,
    pub target: String,
}

/// How a failing target is retried before the event is given up. EventBridge retries up
/// to 185 times over a day; locally 20 attempts with backoff capped at a second cover any
/// transient fault and still end within seconds.
const RETRIES: Backoff = Backoff {
    attempts: 20,
    base: Duration::from_millis(10),
    max: Duration::from_secs(1),
};

/// Matches waiting for their target (bounded: a stalled runner slows publishers down).
const QUEUE: usize = 4096;

/// One event for one target, handed to whoever runs the targets.
pub struct Delivery {
    pub target: String,
    pub event: Value,
    done: Option<oneshot::Sender<bool>>,
}

impl Delivery {
    /// A delivery nobody waits for (an asynchronous invoke).
    pub fn new(target: String, event: Value) -> Self {
        Self { target, event, done: None }
    }

    /// Reports the outcome: handled, or given up after the retries (both `true`: the event
    /// no longer depends on the bus), or not run at all (`false`: the runner is stopping).
    pub fn finish(self, ran: bool) {
        if let Some(done) = self.done {
            let _ = done.send(ran);
        }
    }
}

pub struct EmbeddedBus {
    matcher: Quamina<String>,
    rules: Vec<BusRule>,
    outbox: mpsc::Sender<Delivery>,
    inbox: Mutex<Option<mpsc::Receiver<Delivery>>>,
    tap: broadcast::Sender<Value>,
}

#[derive(Debug, thiserror::Error)]
#[error("rule {rule}: invalid event pattern: {reason}")]
pub struct RuleError {
    pub rule: String,
    pub reason: String,
}

impl EmbeddedBus {
    pub fn new(rules: Vec<BusRule>) -> Result<Self, RuleError> {
        let mut matcher = Quamina::new();
        for r in &rules {
            matcher.add_pattern(r.name.clone(), &r.pattern.to_string()).map_err(|e| RuleError {
                rule: r.name.clone(),
                reason: e.to_string(),
            })?;
        }
        let (outbox, inbox) = mpsc::channel(QUEUE);
        Ok(Self {
            matcher,
            rules,
            outbox,
            inbox: Mutex::new(Some(inbox)),
            tap: broadcast::channel(4096).0,
        })
    }

    /// The matches to run, for the one runner of the targets (taken once).
    pub fn deliveries(&self) -> Option<mpsc::Receiver<Delivery>> {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Every event put on the bus, matched or not (for the admin view and tests).
    pub fn tap(&self) -> broadcast::Receiver<Value> {
        self.tap.subscribe()
    }

    /// Puts one event on the bus (what `PutEvents` does for one entry); returns its id.
    /// Its targets run in the background, with retries.
    pub fn put(&self, source: &str, detail_type: &str, detail: Value, time: Option<String>) -> String {
        let (id, event) = self.envelop(source, detail_type, detail, time);
        for target in self.targets_for(&event) {
            let (outbox, event) = (self.outbox.clone(), event.clone());
            tokio::spawn(async move {
                let _ = outbox.send(Delivery { target, event, done: None }).await;
            });
        }
        id
    }

    /// Puts one event on the bus and resolves when every target has handled it (or given
    /// up after its retries). False when a target could not be run at all.
    pub async fn put_and_wait(&self, source: &str, detail_type: &str, detail: Value, time: Option<String>) -> bool {
        let (_, event) = self.envelop(source, detail_type, detail, time);
        let runs = self.targets_for(&event).into_iter().map(|target| {
            let event = event.clone();
            async move {
                let (done, ran) = oneshot::channel();
                let delivery = Delivery {
                    target,
                    event,
                    done: Some(done),
                };
                self.outbox.send(delivery).await.is_ok() && ran.await.unwrap_or(false)
            }
        });
        futures::future::join_all(runs).await.into_iter().all(|ok| ok)
    }

    fn envelop(&self, source: &str, detail_type: &str, detail: Value, time: Option<String>) -> (String, Value) {
        let id = ulid::Ulid::new().to_string();
        let event = json!({
            "version": "0",
            "id": id,
            "detail-type": detail_type,
            "source": source,
            "account": "000000000000",
            "time": time.unwrap_or_else(|| chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        });
        let _ = self.tap.send(event.clone());
        (id, event)
    }

    /// The target functions of the rules that match an EventBridge event.
    pub fn targets_for(&self, event: &Value) -> Vec<String> {
        let names = self.matcher.matches_for_event(event.to_string().as_bytes()).unwrap_or_default();
        self.rules
            .iter()
            .filter(|r| names.contains(&r.name))
            .map(|r| r.target.clone())
            .collect()
    }
}

/// Runs every delivery with `invoke` (Err means a retry may help), concurrently, with
/// EventBridge's retries, until the bus is gone.
pub async fn run_targets<F, Fut>(mut deliveries: mpsc::Receiver<Delivery>, invoke: F)
where
    F: Fn(String, Value) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    while let Some(d) = deliveries.recv().await {
        let invoke = invoke.clone();
        tokio::spawn(async move {
            let ran = invoke_with_retries(&invoke, &d.target, &d.event).await;
            d.finish(ran);
        });
    }
}

/// True once the target handled the event, or after it failed every attempt (the event is
/// given up, as EventBridge does after its retries); false when the stack is going away.
async fn invoke_with_retries<F, Fut>(invoke: &F, target: &str, event: &Value) -> bool
where
    F: Fn(String, Value) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    for attempt in 1..=RETRIES.attempts {
        match invoke(target.to_string(), event.clone()).await {
            Ok(()) => return true,
            Err(e) if e == SHUTTING_DOWN => return false,
            Err(e) if attempt < RETRIES.attempts => {
                tracing::debug!(%target, attempt, error = %e, "target failed; retrying");
                RETRIES.sleep(attempt).await;
            }
            Err(e) => tracing::error!(%target, error = %e, "target failed; event given up"),
        }
    }
    true
}

/// What a dispatch answers when its targets are gone (the stack is stopping).
pub const SHUTTING_DOWN: &str = "the stack is shutting down";

/// Publishing resolves once every target has handled the events: "published" means the
/// event no longer depends on this call (EventBridge's promise once `PutEvents` answers),
/// so the relay keeps a log entry on the feed until then, and a crash before it loses
/// nothing.
#[async_trait]
impl EventPublisher for EmbeddedBus {
    async fn publish(&self, events: &[Envelope]) -> Result<(), PublishError> {
        let mut runs = Vec::with_capacity(events.len());
        for e in events {
            let detail = serde_json::to_value(e).map_err(|err| PublishError::Invalid(err.to_string()))?;
            let time = e.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            runs.push(async move { (e.id.clone(), self.put_and_wait(&e.source, &e.event_type, detail, Some(time)).await) });
        }
        let failed: Vec<String> = futures::future::join_all(runs)
            .await
            .into_iter()
            .filter(|(_, ok)| !ok)
            .map(|(id, _)| id)
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(PublishError::Failed {
                ids: failed,
                reason: SHUTTING_DOWN.into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bus() -> EmbeddedBus {
        EmbeddedBus::new(vec![
            BusRule {
                name: "all".into(),
                pattern: json!({"source": [{"prefix": "realtime."}]}),
                target: "fanout".into(),
            },
            BusRule {
                name: "msgs".into(),
                pattern: json!({"detail-type": ["chat.message.stored"]}),
                target: "analytics".into(),
            },
        ])
        .unwrap()
    }

    #[test]
    fn rules_match_with_eventbridge_semantics() {
        let b = bus();
        let ev = |s: &str, t: &str| json!({"source": s, "detail-type": t, "detail": {}});
        assert_eq!(b.targets_for(&ev("realtime.chat", "chat.created")), vec!["fanout"]);
        let mut both = b.targets_for(&ev("realtime.chat", "chat.message.stored"));
        both.sort();
        assert_eq!(both, vec!["analytics", "fanout"]);
        assert!(b.targets_for(&ev("other", "x")).is_empty());
    }

    #[tokio::test]
    async fn targets_are_invoked_and_retried() {
        let b = bus();
        let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let c = calls.clone();
        tokio::spawn(run_targets(b.deliveries().unwrap(), move |target, ev: Value| {
            let c = c.clone();
            async move {
                let mut v = c.lock().unwrap();
                v.push((target, ev["detail-type"].as_str().unwrap_or_default().to_string()));
                // The first call fails: the bus must retry it.
                if v.len() == 1 {
                    Err("transient".to_string())
                } else {
                    Ok(())
                }
            }
        }));
        assert!(b.deliveries().is_none(), "one runner only");
        // Publishing waits for the target, retried.
        assert!(b.put_and_wait("realtime.chat", "chat.created", json!({}), None).await);
        assert_eq!(calls.lock().unwrap().len(), 2);
        b.put("realtime.chat", "chat.created", json!({}), None);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(calls.lock().unwrap().len(), 3);
    }

    #[test]
    fn an_invalid_pattern_is_refused() {
        let r = EmbeddedBus::new(vec![BusRule {
            name: "bad".into(),
            pattern: json!({"source": "not-a-list"}),
            target: "x".into(),
        }]);
        assert!(r.is_err());
    }
}
