//! The embedded `EventPublisher`: an in-process event bus that matches each event
//! against the rules of `template.yaml` (EventBridge pattern semantics, by quamina)
//! and invokes the rules' target functions, as EventBridge does, with retries.

use async_trait::async_trait;
use futures::future::BoxFuture;
use quamina::Quamina;
use realtime_domain::events::Envelope;
use realtime_domain::ports::{EventPublisher, PublishError};
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::broadcast;

/// One rule: events matching `pattern` go to the function `target`.
#[derive(Debug, Clone)]
pub struct BusRule {
    pub name: String,
    pub pattern: Value,
    pub target: String,
}

/// Invokes a target function with an EventBridge event; Err means "retry may help".
pub type Dispatch = Arc<dyn Fn(String, Value) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// How often a failing target is invoked before the event is given up. EventBridge
/// retries up to 185 times over a day; locally 20 attempts with backoff capped at a
/// second cover any transient fault and still end within seconds.
const ATTEMPTS: u32 = 20;
const MAX_BACKOFF_MS: u64 = 1000;

pub struct EmbeddedBus {
    matcher: Quamina<String>,
    rules: Vec<BusRule>,
    dispatch: OnceLock<Dispatch>,
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
        Ok(Self {
            matcher,
            rules,
            dispatch: OnceLock::new(),
            tap: broadcast::channel(4096).0,
        })
    }

    /// Sets how targets are invoked (once; the local stack wires its functions here,
    /// after the dependencies that the functions themselves need exist).
    pub fn set_dispatch(&self, d: Dispatch) {
        let _ = self.dispatch.set(d);
    }

    /// Every event put on the bus, matched or not (for the admin view and tests).
    pub fn tap(&self) -> broadcast::Receiver<Value> {
        self.tap.subscribe()
    }

    /// Puts one event on the bus (what `PutEvents` does for one entry); returns its id.
    /// Its targets run in the background, with retries.
    pub fn put(&self, source: &str, detail_type: &str, detail: Value, time: Option<String>) -> String {
        let (id, event) = self.envelop(source, detail_type, detail, time);
        let targets = self.targets_for(&event);
        if let Some(dispatch) = self.dispatch.get() {
            for target in targets {
                let (dispatch, event) = (dispatch.clone(), event.clone());
                tokio::spawn(async move { invoke_with_retries(dispatch, target, event).await });
            }
        }
        id
    }

    /// Puts one event on the bus and resolves when every target has handled it (or given
    /// up after its retries). False when a target could not be invoked at all.
    pub async fn put_and_wait(&self, source: &str, detail_type: &str, detail: Value, time: Option<String>) -> bool {
        let (_, event) = self.envelop(source, detail_type, detail, time);
        let Some(dispatch) = self.dispatch.get() else {
            return true;
        };
        let runs = self
            .targets_for(&event)
            .into_iter()
            .map(|target| invoke_with_retries(dispatch.clone(), target, event.clone()));
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

/// True once the target handled the event, or after it failed every attempt (the event is
/// given up, as EventBridge does after its retries); false when the stack is going away.
async fn invoke_with_retries(dispatch: Dispatch, target: String, event: Value) -> bool {
    for attempt in 1..=ATTEMPTS {
        match dispatch(target.clone(), event.clone()).await {
            Ok(()) => return true,
            Err(e) if e == SHUTTING_DOWN => return false,
            Err(e) if attempt < ATTEMPTS => {
                tracing::debug!(%target, attempt, error = %e, "target failed; retrying");
                let backoff = (10u64 << attempt.min(10)).min(MAX_BACKOFF_MS);
                tokio::time::sleep(Duration::from_millis(backoff / 2 + rand::random::<u64>() % (backoff / 2 + 1))).await;
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
        let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
        let c = calls.clone();
        b.set_dispatch(Arc::new(move |target, ev| {
            let c = c.clone();
            Box::pin(async move {
                let mut v = c.lock().unwrap();
                v.push((target, ev["detail-type"].as_str().unwrap_or_default().to_string()));
                // The first call fails: the bus must retry it.
                if v.len() == 1 {
                    Err("transient".into())
                } else {
                    Ok(())
                }
            })
        }));
        b.put("realtime.chat", "chat.created", json!({}), None);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(calls.lock().unwrap().len(), 2);
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
