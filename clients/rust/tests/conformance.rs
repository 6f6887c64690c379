//! The shared conformance scenario (`clients/conformance/ordering.json`) against the Rust
//! [`ChannelOrder`]: the same frames in, the same frames out, the same `resume` requests at
//! the same times as the browser client's `ChannelOrder` (`web/realtime.js`), which runs it
//! too. Times are millisecond offsets from one base `Instant`.

use realtime_client::ChannelOrder;
use serde_json::Value;
use std::time::{Duration, Instant};

fn scenarios() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/ordering.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    doc["scenarios"].as_array().expect("a `scenarios` array").clone()
}

fn ms(v: &Value, what: &str) -> Duration {
    Duration::from_millis(v.as_u64().unwrap_or_else(|| panic!("{what}: not a number of ms: {v}")))
}

/// The order a scenario's `options` describe (every option is given; `tailCheckMs: null`
/// turns the tail check off).
fn order(s: &Value) -> ChannelOrder {
    let o = &s["options"];
    let channel = s["channel"].as_str().expect("a channel");
    ChannelOrder::new(channel)
        .with_gap_wait(ms(&o["gapWaitMs"], "gapWaitMs"))
        .with_filtered_gap_wait(ms(&o["filteredGapWaitMs"], "filteredGapWaitMs"))
        .with_filtered(o["filtered"].as_bool().expect("filtered"))
        .with_max_pending(o["maxPending"].as_u64().expect("maxPending") as usize)
        .with_resume_timeout(ms(&o["resumeTimeoutMs"], "resumeTimeoutMs"))
        .with_tail_check((!o["tailCheckMs"].is_null()).then(|| ms(&o["tailCheckMs"], "tailCheckMs")))
}

/// What the application got, as the scenario names it.
fn label(f: &Value) -> String {
    match (f["type"].as_str(), f["seq"].as_u64()) {
        (Some("event"), Some(seq)) => format!("event:{seq}"),
        (Some("event"), None) => format!("event:low:{}", f["event"]["id"].as_str().unwrap_or("?")),
        (Some("resync"), _) => format!("resync:{}", f["reason"].as_str().unwrap_or("?")),
        _ => format!("unexpected:{f}"),
    }
}

fn run(s: &Value) -> Result<(), String> {
    let name = s["name"].as_str().unwrap_or("?");
    let mut o = order(s);
    let base = Instant::now();
    let steps = s["steps"].as_array().ok_or(format!("{name}: no steps"))?;
    for (i, step) in steps.iter().enumerate() {
        let now = base + ms(&step["at"], "at");
        let fail = |what: &str, want: &Value, got: &Value| {
            Err(format!(
                "scenario {name:?}, step {i} ({what} at {}): want {want}, got {got}",
                step["at"]
            ))
        };
        if let Some(want) = step.get("subscribing") {
            let got = o.subscribing(now).unwrap_or(Value::Null);
            if &got != want {
                return fail("subscribing", want, &got);
            }
        } else if let Some(frame) = step.get("frame") {
            let got: Vec<Value> = o.accept_at(frame.clone(), now).iter().map(|f| label(f).into()).collect();
            let got = Value::Array(got);
            if got != step["deliver"] {
                return fail("frame", &step["deliver"], &got);
            }
        } else if let Some(want) = step.get("tick") {
            let got = o.resume_request_at(now).unwrap_or(Value::Null);
            if &got != want {
                return fail("tick", want, &got);
            }
        } else if let Some(want) = step.get("deadline") {
            let got = o
                .gap_deadline()
                .map_or(Value::Null, |d| (d.duration_since(base).as_millis() as u64).into());
            if &got != want {
                return fail("deadline", want, &got);
            }
        } else if step.get("resumeFailed").is_some() {
            o.resume_failed(now);
        } else if step.get("subscribeFailed").is_some() {
            o.subscribe_failed(now);
        } else {
            return Err(format!("scenario {name:?}, step {i}: an unknown step {step}"));
        }
    }
    Ok(())
}

#[test]
fn every_scenario_of_the_shared_conformance_file_passes() {
    let all = scenarios();
    assert!(!all.is_empty(), "no scenarios");
    let failures: Vec<String> = all.iter().filter_map(|s| run(s).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} scenarios fail:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}
