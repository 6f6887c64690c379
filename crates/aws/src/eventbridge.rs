//! The AWS `EventPublisher`: EventBridge `PutEvents`.
//!
//! Entries: `Source` = the envelope's source, `DetailType` = its type, `Detail` = the
//! envelope as JSON, `Time` = when it occurred. A call carries at most 10 entries and
//! 256 KB (sized by AWS's rule); the entries a response reports as failed
//! (`FailedEntryCount`, an `ErrorCode` at the same index) are re-sent, alone, with
//! jittered exponential backoff, and so is a whole call that failed for a reason that
//! may pass (throttling, 5xx, network). What is still unsent after the attempts comes
//! back as `PublishError::Failed` with the envelope ids, for the outbox to keep.

use async_trait::async_trait;
use aws_sdk_eventbridge::config::http::HttpResponse;
use aws_sdk_eventbridge::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use realtime_domain::events::Envelope;
use realtime_domain::ports::{EventPublisher, PublishError};
use std::ops::Range;
use std::time::Duration;

/// At most this many entries in one `PutEvents` call.
pub const MAX_ENTRIES_PER_CALL: usize = 10;
/// At most this many bytes (AWS's entry size, summed) in one `PutEvents` call; also
/// the largest single entry.
pub const MAX_BYTES_PER_CALL: usize = 256 * 1024;
/// What AWS counts for an entry's `Time`.
const TIME_BYTES: usize = 14;

pub use realtime_domain::retry::Backoff;

pub struct EventBridgePublisher {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
    backoff: Backoff,
}

impl EventBridgePublisher {
    /// 5 attempts, 50 ms base.
    pub const DEFAULT_BACKOFF: Backoff = Backoff::new(5, Duration::from_millis(50));

    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
            backoff: Self::DEFAULT_BACKOFF,
        }
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn bus_name(&self) -> &str {
        &self.bus_name
    }
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, events: &[Envelope]) -> Result<(), PublishError> {
        let entries = entries_for(events, &self.bus_name)?;
        let call = SdkCall { client: &self.client };
        send_all(&call, entries, self.backoff).await
    }
}

/// One envelope's entry, checked against the size limit; refuses the whole publish
/// (nothing is sent) when one entry is too large or cannot be serialised.
fn entries_for(events: &[Envelope], bus_name: &str) -> Result<Vec<Pending>, PublishError> {
    events
        .iter()
        .map(|e| {
            let detail = serde_json::to_string(e).map_err(|err| PublishError::Invalid(format!("event {}: {err}", e.id)))?;
            let entry = PutEventsRequestEntry::builder()
                .source(&e.source)
                .detail_type(&e.event_type)
                .detail(detail)
                .event_bus_name(bus_name)
                .time(aws_smithy_types::DateTime::from_secs_and_nanos(
                    e.occurred_at.timestamp(),
                    e.occurred_at.timestamp_subsec_nanos(),
                ))
                .build();
            let size = entry_size(&entry);
            if size > MAX_BYTES_PER_CALL {
                return Err(PublishError::Invalid(format!(
                    "event {} ({}) is {size} bytes as an EventBridge entry; the limit is {MAX_BYTES_PER_CALL}",
                    e.id, e.event_type
                )));
            }
            Ok(Pending {
                id: e.id.clone(),
                size,
                entry,
            })
        })
        .collect()
}

/// An entry's size as AWS counts it for the 256 KB limit: 14 bytes for `Time` when
/// present, plus the UTF-8 bytes of `Source`, `DetailType`, `Detail` and each resource.
pub fn entry_size(entry: &PutEventsRequestEntry) -> usize {
    let time = if entry.time().is_some() { TIME_BYTES } else { 0 };
    time + entry.source().map_or(0, str::len)
        + entry.detail_type().map_or(0, str::len)
        + entry.detail().map_or(0, str::len)
        + entry.resources().iter().map(String::len).sum::<usize>()
}

/// Splits entries (given by their sizes, in order) into consecutive calls of at most
/// `max_entries` entries and `max_bytes` bytes. An entry larger than `max_bytes` (the
/// caller refuses those first) gets a call of its own.
pub fn chunks(sizes: &[usize], max_entries: usize, max_bytes: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0usize);
    for (i, &size) in sizes.iter().enumerate() {
        let count = i - start;
        if count > 0 && (count >= max_entries || bytes + size > max_bytes) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

/// An entry not yet accepted by EventBridge, with the envelope id it carries.
#[derive(Debug, Clone)]
struct Pending {
    id: String,
    size: usize,
    entry: PutEventsRequestEntry,
}

/// A whole `PutEvents` call that failed.
#[derive(Debug, Clone)]
struct CallError {
    /// Whether trying again may help (throttling, 5xx, network).
    retryable: bool,
    reason: String,
}

/// "Send one batch": the SDK in production, a script in the unit tests.
#[async_trait]
trait PutEventsCall: Send + Sync {
    async fn put_events(&self, entries: Vec<PutEventsRequestEntry>) -> Result<PutEventsOutput, CallError>;
}

struct SdkCall<'a> {
    client: &'a aws_sdk_eventbridge::Client,
}

#[async_trait]
impl PutEventsCall for SdkCall<'_> {
    async fn put_events(&self, entries: Vec<PutEventsRequestEntry>) -> Result<PutEventsOutput, CallError> {
        self.client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| classify(&e))
    }
}

/// Error codes of AWS services that mean "later may work".
pub(crate) fn is_transient_code(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "Throttling"
            | "ThrottledException"
            | "TooManyRequestsException"
            | "LimitExceededException"
            | "RequestLimitExceeded"
            | "InternalException"
            | "InternalFailure"
            | "InternalServerError"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
    )
}

/// Whether a whole call that failed may pass if tried again (throttling, 5xx,
/// network), and a readable reason.
fn classify<E>(err: &SdkError<E, HttpResponse>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let retryable = match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(se) => se.err().code().is_some_and(is_transient_code) || is_transient_status(se.raw().status().as_u16()),
        _ => false,
    };
    CallError {
        retryable,
        reason: DisplayErrorContext(err).to_string(),
    }
}

/// HTTP statuses that mean "later may work".
pub(crate) fn is_transient_status(status: u16) -> bool {
    status == 429 || status >= 500
}

/// Sends every entry, chunk by chunk, re-sending failed entries; the ids still unsent
/// after the attempts make the error.
async fn send_all(call: &dyn PutEventsCall, entries: Vec<Pending>, backoff: Backoff) -> Result<(), PublishError> {
    let sizes: Vec<usize> = entries.iter().map(|p| p.size).collect();
    let mut unsent = Vec::new();
    let mut reasons = Vec::new();
    for range in chunks(&sizes, MAX_ENTRIES_PER_CALL, MAX_BYTES_PER_CALL) {
        if let Err((ids, reason)) = send_chunk(call, entries[range].to_vec(), backoff).await {
            unsent.extend(ids);
            if !reasons.contains(&reason) {
                reasons.push(reason);
            }
        }
    }
    if unsent.is_empty() {
        Ok(())
    } else {
        Err(PublishError::Failed {
            ids: unsent,
            reason: reasons.join("; "),
        })
    }
}

async fn send_chunk(call: &dyn PutEventsCall, mut pending: Vec<Pending>, backoff: Backoff) -> Result<(), (Vec<String>, String)> {
    let mut reason = String::from("no attempt made");
    for attempt in 0..backoff.attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(backoff.delay(attempt - 1)).await;
        }
        match call.put_events(pending.iter().map(|p| p.entry.clone()).collect()).await {
            Ok(out) => {
                let (failed, why) = failed_entries(pending, &out);
                if failed.is_empty() {
                    return Ok(());
                }
                tracing::warn!(attempt, failed = failed.len(), reason = %why, "PutEvents: entries failed; re-sending them");
                pending = failed;
                reason = why;
            }
            Err(e) => {
                tracing::warn!(attempt, retryable = e.retryable, reason = %e.reason, "PutEvents call failed");
                reason = e.reason;
                if !e.retryable {
                    break;
                }
            }
        }
    }
    Err((pending.into_iter().map(|p| p.id).collect(), reason))
}

/// The entries of `sent` that the response reports as failed, and why. An entry is
/// failed when its result (same index) has an `ErrorCode` or is missing; when the
/// response counts failures but none can be told apart, every entry is re-sent
/// (EventBridge delivers at least once anyway, and consumers dedupe on the id).
fn failed_entries(sent: Vec<Pending>, out: &PutEventsOutput) -> (Vec<Pending>, String) {
    if out.failed_entry_count() <= 0 {
        return (Vec::new(), String::new());
    }
    let results = out.entries();
    let mut codes: Vec<String> = Vec::new();
    let mut failed = Vec::new();
    let mut ok = Vec::new();
    for (i, p) in sent.into_iter().enumerate() {
        match results.get(i) {
            Some(r) if r.error_code().is_none() => ok.push(p),
            Some(r) => {
                let code = format!("{}: {}", r.error_code().unwrap_or_default(), r.error_message().unwrap_or_default());
                if !codes.contains(&code) {
                    codes.push(code);
                }
                failed.push(p);
            }
            None => failed.push(p),
        }
    }
    if failed.is_empty() {
        failed = ok;
    }
    let reason = if codes.is_empty() {
        format!("FailedEntryCount = {} without per-entry error codes", out.failed_entry_count())
    } else {
        codes.join(", ")
    };
    (failed, reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    use realtime_domain::events::{Cause, ConnectionChanged, Event};
    use std::collections::VecDeque;
    use std::sync::Mutex;

    fn envelope(n: usize) -> Envelope {
        let mut e = Envelope::new(
            Event::ConnectionOpened(ConnectionChanged {
                connection_id: format!("c{n}"),
                user_id: "u".into(),
            }),
            &Cause::default(),
        );
        e.id = format!("E{n}");
        e
    }

    fn pending(n: usize) -> Vec<Pending> {
        entries_for(&(0..n).map(envelope).collect::<Vec<_>>(), "bus").unwrap()
    }

    #[test]
    fn chunks_respect_the_entry_count() {
        assert_eq!(chunks(&[1; 25], 10, 1000), vec![0..10, 10..20, 20..25]);
        assert_eq!(chunks(&[1; 10], 10, 1000), vec![0..10]);
        assert_eq!(chunks(&[], 10, 1000), Vec::<Range<usize>>::new());
    }

    #[test]
    fn chunks_respect_the_byte_limit() {
        assert_eq!(chunks(&[40, 40, 40, 40], 10, 100), vec![0..2, 2..4]);
        // Exactly at the limit fits; one more byte does not.
        assert_eq!(chunks(&[50, 50, 1], 10, 100), vec![0..2, 2..3]);
        // Both limits at once.
        assert_eq!(chunks(&[1, 1, 1, 98, 1, 2], 3, 100), vec![0..3, 3..5, 5..6]);
        // An oversized entry (refused earlier by `publish`) goes alone.
        assert_eq!(chunks(&[10, 200, 10], 10, 100), vec![0..1, 1..2, 2..3]);
    }

    #[test]
    fn entries_carry_the_envelope_and_are_sized_by_the_aws_rule() {
        let e = envelope(1);
        let p = &entries_for(std::slice::from_ref(&e), "bus").unwrap()[0];
        assert_eq!(p.entry.source(), Some("realtime.connections"));
        assert_eq!(p.entry.detail_type(), Some("connection.opened"));
        assert_eq!(p.entry.event_bus_name(), Some("bus"));
        assert_eq!(p.entry.time().map(|t| t.secs()), Some(e.occurred_at.timestamp()));
        let back: Envelope = serde_json::from_str(p.entry.detail().unwrap()).unwrap();
        assert_eq!(back, e);
        let expected = 14 + "realtime.connections".len() + "connection.opened".len() + p.entry.detail().unwrap().len();
        assert_eq!(p.size, expected);
    }

    #[test]
    fn an_entry_over_256_kb_is_invalid() {
        let mut e = envelope(1);
        e.data = serde_json::json!({ "blob": "x".repeat(MAX_BYTES_PER_CALL) });
        assert!(matches!(entries_for(&[envelope(0), e], "bus"), Err(PublishError::Invalid(m)) if m.contains("E1")));
    }

    /// Answers each call from a script and records the envelope ids each call carried.
    struct Script {
        answers: Mutex<VecDeque<Result<PutEventsOutput, CallError>>>,
        calls: Mutex<Vec<Vec<String>>>,
    }

    impl Script {
        fn new(answers: Vec<Result<PutEventsOutput, CallError>>) -> Self {
            Self {
                answers: Mutex::new(answers.into()),
                calls: Mutex::new(Vec::new()),
            }
        }
        fn calls(&self) -> Vec<Vec<String>> {
            self.calls.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl PutEventsCall for Script {
        async fn put_events(&self, entries: Vec<PutEventsRequestEntry>) -> Result<PutEventsOutput, CallError> {
            let ids: Vec<String> = entries
                .iter()
                .map(|e| serde_json::from_str::<Envelope>(e.detail().unwrap()).unwrap().id)
                .collect();
            let n = ids.len();
            self.calls.lock().unwrap().push(ids);
            // Once the script is exhausted, every entry succeeds.
            self.answers
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| Ok(answer(&vec![None; n])))
        }
    }

    /// A response: `None` = accepted, `Some(code)` = failed with that code.
    fn answer(codes: &[Option<&str>]) -> PutEventsOutput {
        let entries = codes
            .iter()
            .enumerate()
            .map(|(i, c)| match c {
                None => PutEventsResultEntry::builder().event_id(format!("eb-{i}")).build(),
                Some(code) => PutEventsResultEntry::builder().error_code(*code).error_message("nope").build(),
            })
            .collect();
        let failed = codes.iter().filter(|c| c.is_some()).count() as i32;
        PutEventsOutput::builder()
            .failed_entry_count(failed)
            .set_entries(Some(entries))
            .build()
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    const FAST: Backoff = Backoff::new(5, Duration::from_millis(50));

    #[tokio::test(start_paused = true)]
    async fn only_failed_entries_are_re_sent() {
        let t = Some("ThrottlingException");
        let script = Script::new(vec![Ok(answer(&[None, t, None, t])), Ok(answer(&[None, t])), Ok(answer(&[None]))]);
        send_all(&script, pending(4), FAST).await.unwrap();
        assert_eq!(
            script.calls(),
            vec![ids(&["E0", "E1", "E2", "E3"]), ids(&["E1", "E3"]), ids(&["E3"])]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn entries_still_failing_after_the_attempts_are_reported() {
        let t = Some("InternalFailure");
        let script = Script::new(vec![
            Ok(answer(&[t, None, t])),
            Ok(answer(&[t, t])),
            Ok(answer(&[None, t])),
            Ok(answer(&[t])),
            Ok(answer(&[t])),
        ]);
        let err = send_all(&script, pending(3), FAST).await.unwrap_err();
        match err {
            PublishError::Failed { ids: unsent, reason } => {
                assert_eq!(unsent, ids(&["E2"]));
                assert!(reason.contains("InternalFailure"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(script.calls().len(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_call_is_retried_and_later_chunks_still_go() {
        let throttled = || {
            Err(CallError {
                retryable: true,
                reason: "ThrottlingException: slow down".into(),
            })
        };
        let script = Script::new(vec![throttled(), throttled()]);
        send_all(&script, pending(12), FAST).await.unwrap();
        let calls = script.calls();
        let first: Vec<String> = (0..10).map(|i| format!("E{i}")).collect();
        assert_eq!(calls, vec![first.clone(), first.clone(), first, ids(&["E10", "E11"])]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_call_error_is_not_retried_and_names_every_unsent_id() {
        let denied = Err(CallError {
            retryable: false,
            reason: "AccessDeniedException".into(),
        });
        let throttled = || {
            Err(CallError {
                retryable: true,
                reason: "ThrottlingException".into(),
            })
        };
        // First chunk: refused for good. Second chunk: throttled on every attempt.
        let script = Script::new(vec![denied, throttled(), throttled(), throttled(), throttled(), throttled()]);
        let err = send_all(&script, pending(11), FAST).await.unwrap_err();
        let PublishError::Failed { ids: unsent, reason } = err else {
            panic!("unexpected {err:?}")
        };
        assert_eq!(unsent, (0..11).map(|i| format!("E{i}")).collect::<Vec<_>>());
        assert!(reason.contains("AccessDenied") && reason.contains("Throttling"), "{reason}");
        assert_eq!(script.calls().len(), 1 + 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_count_without_codes_re_sends_the_whole_call() {
        let odd = PutEventsOutput::builder().failed_entry_count(1).build();
        let script = Script::new(vec![Ok(odd)]);
        send_all(&script, pending(2), FAST).await.unwrap();
        assert_eq!(script.calls(), vec![ids(&["E0", "E1"]), ids(&["E0", "E1"])]);
    }
}
