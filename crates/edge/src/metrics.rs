//! CloudWatch embedded metric format: one JSON line on stdout per measurement, which
//! Lambda's log pipeline turns into metrics (no API calls, no agent).

use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "Realtime";

/// A metric value with its CloudWatch unit (`Count`, `Milliseconds`, ...).
pub type Metric<'a> = (&'a str, f64, &'a str);

/// The EMF line for `metrics`, dimensioned by function and, when given, route.
pub fn line(function: &str, route: Option<&str>, metrics: &[Metric<'_>], now_ms: i64) -> String {
    let dims: Vec<&str> = if route.is_some() {
        vec!["Function", "Route"]
    } else {
        vec!["Function"]
    };
    let defs: Vec<Value> = metrics.iter().map(|(name, _, unit)| json!({"Name": name, "Unit": unit})).collect();
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({"Timestamp": now_ms, "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [dims], "Metrics": defs}]}),
    );
    root.insert("Function".into(), function.into());
    if let Some(r) = route {
        root.insert("Route".into(), r.into());
    }
    for (name, value, _) in metrics {
        root.insert((*name).into(), json!(value));
    }
    Value::Object(root).to_string()
}

/// Prints the metrics in Lambda; elsewhere (the local stack, tests) it only traces them.
pub fn emit(route: Option<&str>, metrics: &[Metric<'_>]) {
    match std::env::var("AWS_LAMBDA_FUNCTION_NAME") {
        Ok(function) => println!("{}", line(&function, route, metrics, chrono::Utc::now().timestamp_millis())),
        Err(_) => tracing::debug!(?route, ?metrics, "metrics"),
    }
}

/// What a fan-out (or one of its workers) did, as metrics, with what only the caller knows.
pub fn fanout(report: &realtime_domain::fanout::Report, extra: &[Metric<'_>]) {
    let mut metrics = vec![
        ("Delivered", report.delivered as f64, "Count"),
        ("Stale", report.stale as f64, "Count"),
        ("Throttled", report.throttled as f64, "Count"),
        ("Failed", report.failed as f64, "Count"),
        ("Retries", report.retries as f64, "Count"),
        ("Undelivered", report.undelivered as f64, "Count"),
    ];
    metrics.extend_from_slice(extra);
    emit(None, &metrics);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_the_embedded_metric_format() {
        let l: Value = serde_json::from_str(&line(
            "fanout",
            None,
            &[("Delivered", 3.0, "Count"), ("LatencyMs", 1.5, "Milliseconds")],
            1000,
        ))
        .unwrap();
        assert_eq!(l["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(l["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Function"]]));
        assert_eq!(
            l["_aws"]["CloudWatchMetrics"][0]["Metrics"][1],
            json!({"Name": "LatencyMs", "Unit": "Milliseconds"})
        );
        assert_eq!((l["Delivered"].as_f64(), l["Function"].as_str()), (Some(3.0), Some("fanout")));
        let l: Value = serde_json::from_str(&line("chat-send-message", Some("POST /api/chat"), &[("Requests", 1.0, "Count")], 1)).unwrap();
        assert_eq!(l["Route"], "POST /api/chat");
    }
}
