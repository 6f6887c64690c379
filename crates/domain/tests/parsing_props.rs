//! Property tests of everything that parses client input at the edge: frames, request
//! ids, event-type patterns, channels, content filters and tokens. None may panic on
//! any input, and the parsers keep the laws below.

use proptest::prelude::*;
use proptest::test_runner::Config;
use realtime_domain::auth::{self, Claims, Role};
use realtime_domain::channels::Channel;
use realtime_domain::fanout::{filter_matches, validate_filter};
use realtime_domain::frames::{request_id, type_matches, ClientFrame};
use serde_json::{json, Map, Value};

const SECRET: &str = "prop-secret-prop-secret-0123456789";

/// 256 cases a property (proptest's default; `PROPTEST_CASES` raises it for a long hunt).
/// Findings become explicit cases here, not regression files next to the tests.
fn config() -> Config {
    Config {
        failure_persistence: None,
        ..Config::default()
    }
}

/// Keys that reach the interesting branches of the parsers, and some that reach none.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "action", "id", "channel", "events", "filter", "resume", "epoch", "after", "tripIds", "numeric",
            "prefix", "suffix", "anything-but", "exists", "equals-ignore-case", "wildcard", "shellstyle", "regexp",
            "cidr", "sub", "alg", "exp", "roles",
        ])
        .prop_map(str::to_string),
        1 => "\\PC{0,8}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        "\\PC{0,12}".prop_map(Value::from),
        prop::sample::select(vec![
            "subscribe",
            "ping",
            "chat:C1",
            "chat.*",
            "**",
            "<=",
            ">",
            "1.2.3.4/8",
            "a*b",
            "",
            "*"
        ])
        .prop_map(Value::from),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object with an `action`, known or not, and arbitrary other fields.
fn frame_value() -> impl Strategy<Value = Value> {
    let action = prop_oneof![
        4 => prop::sample::select(vec!["subscribe", "unsubscribe", "ping", "resume", "typing"]).prop_map(Value::from),
        1 => leaf(),
    ];
    (action, prop::collection::btree_map(key(), json(), 0..6)).prop_map(|(action, fields)| {
        let mut m: Map<String, Value> = fields.into_iter().collect();
        m.insert("action".into(), action);
        Value::Object(m)
    })
}

/// EventBridge-style content patterns, valid or nearly so.
fn filter() -> impl Strategy<Value = Value> {
    let op = prop::sample::select(vec!["<", "<=", "=", ">", ">=", "!", ""]);
    let operator = prop_oneof![
        (op.clone(), leaf()).prop_map(|(o, n)| json!({"numeric": [o, n]})),
        (op.clone(), any::<i32>(), op, any::<i32>()).prop_map(|(a, x, b, y)| json!({"numeric": [a, x, b, y]})),
        (
            prop::sample::select(vec![
                "prefix",
                "suffix",
                "equals-ignore-case",
                "wildcard",
                "shellstyle",
                "regexp",
                "cidr",
                "exists"
            ]),
            leaf()
        )
            .prop_map(|(k, v)| json!({ k: v })),
        prop_oneof![leaf(), prop::collection::vec(leaf(), 0..4).prop_map(Value::Array), json()].prop_map(|v| json!({"anything-but": v})),
        json(),
    ];
    let values = prop::collection::vec(prop_oneof![leaf(), operator], 0..4).prop_map(Value::Array);
    let field = prop_oneof![4 => values, 1 => json()];
    prop::collection::btree_map(key(), field, 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
        .prop_recursive(2, 16, 3, |inner| {
            prop::collection::btree_map(key(), inner, 1..3).prop_map(|m| Value::Object(m.into_iter().collect()))
        })
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["chat", "trip", "message", "stored", "a", "b"]).prop_map(str::to_string),
        1 => "[a-z*]{0,3}",
    ]
}

fn dotted(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..=max).prop_map(|s| s.join("."))
}

/// Literal patterns: segments without wildcards.
fn literal() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z_]{1,6}", 1..5).prop_map(|s| s.join("."))
}

fn valid_channel() -> impl Strategy<Value = Channel> {
    let id = "[A-Za-z0-9_-]{1,64}";
    prop_oneof![
        id.prop_map(Channel::Chat),
        id.prop_map(Channel::Trip),
        id.prop_map(Channel::User),
        Just(Channel::Drivers),
        Just(Channel::Admin),
    ]
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn client_frames_never_panic_on_any_string(s in "\\PC{0,200}") {
        let _ = serde_json::from_str::<ClientFrame>(&s);
        let _ = request_id(&s);
    }

    #[test]
    fn client_frames_never_panic_on_json_with_an_action_and_round_trip(v in frame_value()) {
        let text = v.to_string();
        let parsed = serde_json::from_str::<ClientFrame>(&text);
        prop_assert_eq!(parsed.is_ok(), serde_json::from_value::<ClientFrame>(v).is_ok());
        if let Ok(f) = parsed {
            let again = serde_json::to_string(&f).unwrap();
            prop_assert_eq!(serde_json::from_str::<ClientFrame>(&again).unwrap(), f);
        }
    }

    #[test]
    fn request_ids_are_bounded_and_taken_from_any_object(v in frame_value(), id in "\\PC{0,100}") {
        let mut v = v;
        v["id"] = Value::from(id.clone());
        let got = request_id(&v.to_string());
        prop_assert_eq!(got, Some(id.chars().take(64).collect::<String>()));
    }

    #[test]
    fn type_matching_never_panics(p in "\\PC{0,40}", t in "\\PC{0,40}", p2 in dotted(6), t2 in dotted(6)) {
        let _ = type_matches(&p, &t);
        let _ = type_matches(&p2, &t2);
    }

    #[test]
    fn a_literal_pattern_matches_exactly_itself(p in literal(), t in prop_oneof![literal(), dotted(5)]) {
        prop_assert!(type_matches(&p, &p));
        prop_assert_eq!(type_matches(&p, &t), p == t);
    }

    #[test]
    fn double_star_matches_everything(t in prop_oneof!["\\PC{0,40}", dotted(8)]) {
        prop_assert!(type_matches("**", &t));
    }

    #[test]
    fn single_stars_never_change_the_number_of_segments(t in dotted(6), p in prop::collection::vec(prop_oneof!["[a-z]{1,3}", Just("*".to_string())], 1..5)) {
        let p = p.join(".");
        let segments = |s: &str| s.split('.').count();
        prop_assert!(!type_matches("a.*", &t) || segments(&t) == 2, "a.* matched {}", t);
        if type_matches(&p, &t) {
            prop_assert_eq!(segments(&p), segments(&t));
        }
    }

    #[test]
    fn channels_never_panic_and_print_as_parsed(s in prop_oneof!["\\PC{0,80}", "(chat|trip|user|drivers|admin|nope)(:[A-Za-z0-9_ #:-]{0,70})?"]) {
        if let Ok(c) = s.parse::<Channel>() {
            prop_assert_eq!(c.to_string(), s);
        }
    }

    #[test]
    fn valid_channels_round_trip(c in valid_channel()) {
        prop_assert_eq!(c.to_string().parse::<Channel>(), Ok(c));
    }

    #[test]
    fn filters_never_panic_on_any_json(f in prop_oneof![filter(), json()], data in json()) {
        let valid = validate_filter(&f).is_ok();
        if filter_matches(&f, &data) {
            prop_assert!(valid, "matched with a filter validation refuses: {}", f);
        }
    }

    #[test]
    fn tokens_never_verify_without_the_secret(s in "\\PC{0,200}", now in any::<i64>()) {
        prop_assert!(auth::verify(SECRET, &s, now).is_err());
    }

    #[test]
    fn forged_tokens_never_verify(header in json(), claims in json(), sig in prop::collection::vec(any::<u8>(), 0..40), now in any::<i64>()) {
        let mut header = header;
        if header.is_object() {
            header["alg"] = "HS256".into();
        }
        let token = format!("{}.{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()), b64(&sig));
        prop_assert!(auth::verify(SECRET, &token, now).is_err());
    }

    #[test]
    fn tokens_signed_with_another_secret_never_verify(sub in "[a-z0-9]{1,20}", other in "\\PC{1,40}", exp in any::<i64>(), now in any::<i64>()) {
        prop_assume!(other != SECRET);
        let claims = Claims { sub, roles: vec![Role::Admin], name: None, exp };
        prop_assert!(auth::verify(SECRET, &auth::mint(&other, &claims), now).is_err());
        // The right secret verifies exactly when the token has not expired.
        prop_assert_eq!(auth::verify(SECRET, &auth::mint(SECRET, &claims), now).is_ok(), exp > now);
    }
}

/// Inputs at the limits the edge allows: a frame of 32 KB nests at most 128 deep in
/// serde_json; nothing may overflow the stack on the way.
#[test]
fn deep_nesting_is_refused_or_handled_without_overflow() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(serde_json::from_str::<ClientFrame>(&deep).is_err());
    assert_eq!(request_id(&deep), None);
    let mut filter = json!(["x"]);
    for _ in 0..120 {
        filter = json!({ "a": filter });
    }
    let _ = validate_filter(&filter);
    let _ = filter_matches(&filter, &filter);
}

/// The worst pattern a subscribe accepts (128 chars of `**`) against real event types,
/// which have at most three segments: the backtracking stays small.
#[test]
fn the_worst_accepted_pattern_is_cheap_on_real_event_types() {
    let worst = format!("{}.z", vec!["**"; 42].join("."));
    let started = std::time::Instant::now();
    for t in realtime_domain::events::EVENT_TYPES {
        assert!(!type_matches(&worst, t));
    }
    // ~0.1 s in a debug build; an explosion (longer types, no collapsing of `**`) takes minutes.
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
}
