//! The committed specs under `specs/` are exactly what the Rust types and
//! template.yaml generate: change a type or a route and this fails until
//! `cargo run -p realtime-local --bin realtime-specs` is run and its output committed.

use realtime_local::template::Template;
use realtime_tests::procs::workspace_root;

#[test]
fn committed_specs_match_the_types() {
    let template = Template::parse(realtime_local::stack::TEMPLATE).unwrap();
    let mut drift = Vec::new();
    for (name, generated) in realtime_local::specs::generate(&template) {
        let path = workspace_root().join("specs").join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(generated.as_str()) {
            drift.push(name);
        }
    }
    assert!(
        drift.is_empty(),
        "specs out of date: {drift:?}; run `cargo run -p realtime-local --bin realtime-specs` and commit specs/"
    );
}

#[test]
fn the_specs_cover_every_event_frame_and_route() {
    let template = Template::parse(realtime_local::stack::TEMPLATE).unwrap();
    let specs: std::collections::HashMap<_, _> = realtime_local::specs::generate(&template).into_iter().collect();
    let events = &specs["events.schema.json"];
    for t in realtime_domain::events::EVENT_TYPES {
        assert!(events.contains(&format!("\"{t}\"")), "events schema lacks {t}");
    }
    let client = &specs["client-frames.schema.json"];
    for action in ["subscribe", "unsubscribe", "resume", "ping", "typing"] {
        assert!(client.contains(&format!("\"{action}\"")), "client frames lack {action}");
    }
    let openapi: serde_json::Value = serde_json::from_str(&specs["openapi.json"]).unwrap();
    for r in &template.http_routes {
        assert!(
            openapi["paths"][&r.path][r.method.to_lowercase()].is_object(),
            "openapi lacks {} {}",
            r.method,
            r.path
        );
    }
    let asyncapi: serde_json::Value = serde_json::from_str(&specs["asyncapi.json"]).unwrap();
    assert_eq!(asyncapi["asyncapi"], "3.0.0");
}
