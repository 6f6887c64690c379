//! Parity: `template.yaml`, the function crates under `functions/` and the local stack's
//! registry (`realtime_local::registry::FUNCTIONS`) must describe the same system. Each test
//! collects every offender before failing, and names each one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use realtime_local::registry::{Kind, FUNCTIONS};
use realtime_local::template::{match_path, rate_seconds, Template};
use serde_yaml::Value;

/// The HTTP API routes of API.md that the function crates implement so far:
/// (method, path, binary). Add a row here when a route's function lands.
const IMPLEMENTED_HTTP_ROUTES: &[(&str, &str, &str)] = &[
    ("POST", "/api/chat", "chat-create"),
    ("POST", "/api/chat/{chatId}/participants", "chat-join"),
    ("POST", "/api/chat/{chatId}/messages", "chat-send-message"),
    ("GET", "/api/chat/{chatId}/messages", "chat-history"),
    ("GET", "/api/chat/{chatId}/state", "chat-state"),
    ("POST", "/api/typing", "chat-typing"),
    ("POST", "/api/chat/{chatId}/complete", "chat-complete"),
    ("PUT", "/api/chat/{chatId}/settings", "chat-settings"),
    ("GET", "/api/chat/{chatId}/analytics", "chat-analytics"),
    ("POST", "/api/trips", "trip-create"),
    ("GET", "/api/trips/{tripId}", "trip-get"),
    ("POST", "/api/bookings", "booking-create"),
    ("PATCH", "/api/bookings/{id}", "booking-cancel"),
    ("POST", "/api/passengers/bookings/{bookingId}/cancel", "booking-cancel"),
    ("POST", "/api/drivers/trips/accept/{tripId}", "driver-accept-trip"),
    ("PUT", "/api/drivers/trips/{tripId}/status", "driver-update-status"),
    ("GET", "/api/events/stats", "events-stats"),
    ("GET", "/api/websocket/stats", "websocket-stats"),
    ("GET", "/api/websocket/health", "websocket-health"),
    ("GET", "/api/channels/{channel}/presence", "channel-presence"),
];

/// The HTTP routes API.md leaves public (`Auth: {Authorizer: NONE}` in the template); every
/// other one must go through an authorizer.
const PUBLIC_HTTP_ROUTES: &[(&str, &str)] = &[("GET", "/api/websocket/health")];

/// The streaming function URLs (server-sent events) of API.md: (path, binary).
const STREAM_ROUTES: &[(&str, &str)] = &[("/api/realtime/trip-status/{tripId}", "trip-status-stream")];

/// The WebSocket routes every deployment needs.
const REQUIRED_WS_ROUTES: &[&str] = &["$connect", "$disconnect", "$default"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn template_path() -> PathBuf {
    root().join("template.yaml")
}

fn template() -> Template {
    let path = template_path();
    Template::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn raw_template() -> Value {
    let path = template_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn kind_of_binary(binary: &str) -> Option<Kind> {
    realtime_local::registry::handler(binary).map(|h| h.kind())
}

fn fail_if_any(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    );
}

/// The `name` of the `[package]` table of a Cargo.toml (a minimal reader: enough for the
/// `name = "..."` line every crate manifest has).
fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if !in_package {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() == "name" {
            let value = value.trim();
            let value = value.split('#').next().unwrap_or_default().trim();
            return value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).map(str::to_owned);
        }
    }
    None
}

/// The folders directly under `functions/` (none when the folder does not exist).
fn function_folders() -> BTreeSet<String> {
    let dir = root().join("functions");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return BTreeSet::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|name| !name.starts_with('.'))
        .collect()
}

/// The logical id a `!Ref X`, `{Ref: X}`, `!GetAtt X.Arn` or `{"Fn::GetAtt": [X, Arn]}` names.
fn referenced_id(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            match (tag.trim_start_matches('!'), &tagged.value) {
                ("Ref", Value::String(s)) => Some(s.clone()),
                ("GetAtt", Value::String(s)) => s.split('.').next().map(str::to_owned),
                _ => None,
            }
        }
        Value::Mapping(map) => {
            if let Some(Value::String(s)) = map.get("Ref") {
                return Some(s.clone());
            }
            match map.get("Fn::GetAtt")? {
                Value::String(s) => s.split('.').next().map(str::to_owned),
                Value::Sequence(parts) => parts.first()?.as_str().map(str::to_owned),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `(logical id, resource)` of every resource of this type in the raw template.
fn resources_of_type<'a>(raw: &'a Value, kind: &str) -> Vec<(String, &'a Value)> {
    raw.get("Resources")
        .and_then(Value::as_mapping)
        .map(|resources| {
            resources
                .iter()
                .filter(|(_, body)| body.get("Type").and_then(Value::as_str) == Some(kind))
                .filter_map(|(id, body)| Some((id.as_str()?.to_owned(), body)))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn template_functions_have_crates() {
    let template = template();
    let mut problems = Vec::new();
    for f in &template.functions {
        let dir = root().join("functions").join(&f.binary);
        let manifest = dir.join("Cargo.toml");
        let text = match std::fs::read_to_string(&manifest) {
            Ok(text) => text,
            Err(e) => {
                problems.push(format!(
                    "{} (binary {}) has no crate: cannot read functions/{}/Cargo.toml ({e})",
                    f.logical_id, f.binary, f.binary
                ));
                continue;
            }
        };
        match package_name(&text) {
            Some(name) if name == f.binary => {}
            Some(name) => problems.push(format!(
                "{} (binary {}): functions/{}/Cargo.toml names its package {name:?}, not {:?}",
                f.logical_id, f.binary, f.binary, f.binary
            )),
            None => problems.push(format!(
                "{} (binary {}): functions/{}/Cargo.toml has no [package] name",
                f.logical_id, f.binary, f.binary
            )),
        }
        // cargo-lambda builds the binary named like the package: src/main.rs, or a
        // src/bin/ target or [[bin]] section of that name.
        let has_binary = dir.join("src/main.rs").is_file()
            || dir.join(format!("src/bin/{}.rs", f.binary)).is_file()
            || dir.join(format!("src/bin/{}/main.rs", f.binary)).is_file()
            || text.contains("[[bin]]");
        if !has_binary {
            problems.push(format!(
                "{} (binary {}): functions/{}/ has no src/main.rs (nor a bin target {})",
                f.logical_id, f.binary, f.binary, f.binary
            ));
        }
    }
    fail_if_any("template functions without a matching crate", &problems);
}

#[test]
fn function_folders_are_template_functions() {
    let template = template();
    let binaries: BTreeSet<&str> = template.functions.iter().map(|f| f.binary.as_str()).collect();
    let problems: Vec<String> = function_folders()
        .into_iter()
        .filter(|folder| !binaries.contains(folder.as_str()))
        .map(|folder| format!("functions/{folder}/ is not the binary of any function in template.yaml"))
        .collect();
    fail_if_any("function crates missing from template.yaml", &problems);
}

#[test]
fn template_functions_are_in_the_registry() {
    let template = template();
    let problems: Vec<String> = template
        .functions
        .iter()
        .filter(|f| kind_of_binary(&f.binary).is_none())
        .map(|f| {
            format!(
                "{} (binary {}) is not in realtime_local::registry::FUNCTIONS: the local stack cannot run it",
                f.logical_id, f.binary
            )
        })
        .collect();
    fail_if_any("template functions missing from the local stack's registry", &problems);
}

#[test]
fn registry_entries_are_in_the_template() {
    let template = template();
    let mut problems: Vec<String> = FUNCTIONS
        .iter()
        .filter(|binary| !template.functions.iter().any(|f| f.binary == **binary))
        .map(|binary| format!("registry entry {binary} is not the binary of any function in template.yaml"))
        .collect();
    let mut seen = BTreeSet::new();
    for binary in FUNCTIONS {
        if !seen.insert(*binary) {
            problems.push(format!("registry lists {binary} more than once"));
        }
    }
    fail_if_any("registry entries missing from template.yaml", &problems);
}

#[test]
fn routes_and_rules_target_functions_of_the_right_kind() {
    let template = template();
    let mut problems = Vec::new();
    let mut check = |trigger: String, function: &str, want: Kind| {
        let Some(binary) = template.binary_of(function) else {
            problems.push(format!("{trigger} targets {function}, which is not a function of the template"));
            return;
        };
        match kind_of_binary(binary) {
            Some(kind) if kind == want => {}
            Some(kind) => problems.push(format!(
                "{trigger} targets {function} (binary {binary}), which the registry lists as Kind::{kind:?}, not Kind::{want:?}"
            )),
            None => problems.push(format!(
                "{trigger} targets {function} (binary {binary}), which is not in the registry"
            )),
        }
    };
    for r in &template.ws_routes {
        check(format!("WebSocket route {:?}", r.route_key), &r.function, Kind::Ws);
    }
    for r in &template.http_routes {
        check(format!("HTTP route {} {}", r.method, r.path), &r.function, Kind::Http);
    }
    for r in &template.rules {
        check(format!("EventBridge rule {}", r.name), &r.function, Kind::Event);
    }
    for s in &template.schedules {
        check(format!("schedule {}", s.name), &s.function, Kind::Event);
    }
    for a in &template.authorizers {
        check(format!("authorizer {}", a.name), &a.function, Kind::Authorizer);
    }
    for r in &template.stream_routes {
        check(format!("streaming function URL {}", r.path), &r.function, Kind::Stream);
    }
    fail_if_any("triggers that target the wrong kind of function", &problems);
}

/// Functions another function invokes: those its `LambdaInvokePolicy` names, whose name it
/// gets in an environment variable (`!Ref`) as well (the fan-out's worker).
fn invoked_functions() -> BTreeSet<String> {
    let raw = raw_template();
    let name_of = |v: &Value| match v {
        Value::Tagged(t) if t.tag == "!Ref" => t.value.as_str().map(str::to_string),
        _ => v.get("Ref").and_then(Value::as_str).map(str::to_string),
    };
    let mut out = BTreeSet::new();
    for (_, r) in raw["Resources"].as_mapping().into_iter().flatten() {
        let props = &r["Properties"];
        let env: Vec<String> = props["Environment"]["Variables"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(_, v)| name_of(v))
            .collect();
        for p in props["Policies"].as_sequence().into_iter().flatten() {
            if let Some(f) = name_of(&p["LambdaInvokePolicy"]["FunctionName"]) {
                assert!(env.contains(&f), "a function may invoke {f} but is not told its name");
                out.insert(f);
            }
        }
    }
    out
}

#[test]
fn every_function_has_a_trigger() {
    let template = template();
    let triggered: BTreeSet<&str> = template
        .ws_routes
        .iter()
        .map(|r| r.function.as_str())
        .chain(template.http_routes.iter().map(|r| r.function.as_str()))
        .chain(template.rules.iter().map(|r| r.function.as_str()))
        .chain(template.schedules.iter().map(|s| s.function.as_str()))
        .chain(template.authorizers.iter().map(|a| a.function.as_str()))
        .chain(template.stream_routes.iter().map(|r| r.function.as_str()))
        .chain(template.table_streams.iter().map(|s| s.function.as_str()))
        .collect();
    let invoked = invoked_functions();
    let problems: Vec<String> = template
        .functions
        .iter()
        .filter(|f| !triggered.contains(f.logical_id.as_str()) && !invoked.contains(&f.logical_id))
        .map(|f| {
            format!(
                "{} (binary {}) has no WebSocket route, HTTP route, rule, schedule, table stream or authorizer, and no function may invoke it",
                f.logical_id, f.binary
            )
        })
        .collect();
    fail_if_any("functions nothing invokes", &problems);
}

#[test]
fn authorizer_functions_serve_authorizers_only() {
    let template = template();
    let mut problems = Vec::new();
    for f in &template.functions {
        if kind_of_binary(&f.binary) != Some(Kind::Authorizer) {
            continue;
        }
        if !template.authorizers.iter().any(|a| a.function == f.logical_id) {
            problems.push(format!(
                "{} (binary {}) is a Kind::Authorizer function that no authorizer of template.yaml names",
                f.logical_id, f.binary
            ));
        }
    }
    // An authorizer on $connect and on the HTTP routes: every connection and request is checked.
    if template.ws_route("$connect").is_some_and(|r| r.authorizer.is_none()) {
        problems.push("the WebSocket $connect route has no authorizer".into());
    }
    let public = |r: &&realtime_local::template::HttpRoute| PUBLIC_HTTP_ROUTES.contains(&(r.method.as_str(), r.path.as_str()));
    for r in template.http_routes.iter().filter(|r| r.authorizer.is_none() && !public(r)) {
        problems.push(format!("HTTP route {} {} has no authorizer", r.method, r.path));
    }
    fail_if_any("authorizers", &problems);
}

#[test]
fn ws_routes_include_connect_disconnect_and_default() {
    let template = template();
    let problems: Vec<String> = REQUIRED_WS_ROUTES
        .iter()
        .filter(|key| template.ws_route(key).is_none())
        .map(|key| format!("the WebSocket API has no {key:?} route"))
        .collect();
    fail_if_any("missing WebSocket routes", &problems);
}

#[test]
fn no_two_routes_share_a_key() {
    let template = template();
    let mut problems = Vec::new();

    let mut ws: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in &template.ws_routes {
        ws.entry(r.route_key.as_str()).or_default().push(r.function.as_str());
    }
    for (key, functions) in ws.iter().filter(|(_, f)| f.len() > 1) {
        problems.push(format!(
            "WebSocket route key {key:?} is declared {} times: {functions:?}",
            functions.len()
        ));
    }

    // API Gateway ignores parameter names: /chat/{id} and /chat/{chatId} are the same route.
    let shape = |path: &str| -> String {
        path.split('/')
            .map(|s| {
                if s.starts_with('{') && s.ends_with("+}") {
                    "{+}"
                } else if s.starts_with('{') {
                    "{}"
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut http: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for r in &template.http_routes {
        http.entry((r.method.clone(), shape(&r.path)))
            .or_default()
            .push(format!("{} {} -> {}", r.method, r.path, r.function));
    }
    for ((method, path), routes) in http.iter().filter(|(_, r)| r.len() > 1) {
        problems.push(format!("HTTP route {method} {path} is declared {} times: {routes:?}", routes.len()));
    }

    let mut binaries: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for f in &template.functions {
        binaries.entry(f.binary.as_str()).or_default().push(f.logical_id.as_str());
    }
    for (binary, ids) in binaries.iter().filter(|(_, ids)| ids.len() > 1) {
        problems.push(format!("binary {binary} is built by more than one function: {ids:?}"));
    }
    fail_if_any("duplicate routes or binaries", &problems);
}

#[test]
fn http_routes_are_exactly_the_implemented_api_routes() {
    let template = template();
    let mut problems = Vec::new();
    let actual: BTreeSet<(String, String, String)> = template
        .http_routes
        .iter()
        .map(|r| {
            let binary = template.binary_of(&r.function).unwrap_or("<no such function>");
            (r.method.clone(), r.path.clone(), binary.to_owned())
        })
        .collect();
    let expected: BTreeSet<(String, String, String)> = IMPLEMENTED_HTTP_ROUTES
        .iter()
        .map(|(m, p, b)| ((*m).to_owned(), (*p).to_owned(), (*b).to_owned()))
        .collect();
    for (method, path, binary) in expected.difference(&actual) {
        problems.push(format!("template.yaml lacks the API.md route {method} {path} (served by {binary})"));
    }
    for (method, path, binary) in actual.difference(&expected) {
        problems.push(format!(
            "template.yaml declares {method} {path} (served by {binary}), which is not an implemented API.md route"
        ));
    }
    fail_if_any("HTTP routes differ from API.md", &problems);

    // And a request to each route finds exactly that route.
    for (method, path, binary) in IMPLEMENTED_HTTP_ROUTES {
        let concrete: String = path
            .split('/')
            .map(|s| if s.starts_with('{') { "X1" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let found = template.match_http(method, &concrete);
        let found_binary = found.as_ref().and_then(|(r, _)| template.binary_of(&r.function));
        assert_eq!(found_binary, Some(*binary), "{method} {concrete} should reach {binary}");
        assert!(match_path(path, &concrete).is_some(), "{path} should match {concrete}");
    }
}

#[test]
fn schedules_have_supported_expressions() {
    let template = template();
    let problems: Vec<String> = template
        .schedules
        .iter()
        .filter(|s| rate_seconds(&s.expression).is_none())
        .map(|s| {
            format!(
                "schedule {} has expression {:?}; the local stack runs only rate(N minute(s)|hour(s)|day(s))",
                s.name, s.expression
            )
        })
        .collect();
    fail_if_any("schedules the local stack cannot run", &problems);
}

#[test]
fn ws_functions_may_be_invoked_by_api_gateway() {
    let template = template();
    let raw = raw_template();
    let permitted: BTreeSet<String> = resources_of_type(&raw, "AWS::Lambda::Permission")
        .into_iter()
        .filter_map(|(_, body)| {
            let props = body.get("Properties")?;
            let principal = props.get("Principal")?.as_str()?;
            (principal == "apigateway.amazonaws.com").then_some(())?;
            referenced_id(props.get("FunctionName")?)
        })
        .collect();
    let ws_functions: BTreeSet<&str> = template.ws_routes.iter().map(|r| r.function.as_str()).collect();
    let mut problems: Vec<String> = ws_functions
        .into_iter()
        .filter(|f| !permitted.contains(*f))
        .map(|f| format!("{f} serves a WebSocket route but has no AWS::Lambda::Permission for apigateway.amazonaws.com"))
        .collect();
    // SAM grants an HttpApi no permission on its Lambda authorizers by default either.
    for a in template.authorizers.iter().filter(|a| !permitted.contains(&a.function)) {
        problems.push(format!(
            "{} is the function of authorizer {} but has no AWS::Lambda::Permission for apigateway.amazonaws.com",
            a.function, a.name
        ));
    }
    fail_if_any("WebSocket functions API Gateway may not invoke", &problems);
}

#[test]
fn ws_deployment_depends_on_every_route() {
    let raw = raw_template();
    let routes: BTreeSet<String> = resources_of_type(&raw, "AWS::ApiGatewayV2::Route")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let deployments = resources_of_type(&raw, "AWS::ApiGatewayV2::Deployment");
    assert!(!deployments.is_empty(), "template.yaml has no AWS::ApiGatewayV2::Deployment");
    let mut problems = Vec::new();
    for (id, body) in deployments {
        let depends_on: BTreeSet<String> = match body.get("DependsOn") {
            Some(Value::String(s)) => [s.clone()].into(),
            Some(Value::Sequence(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => BTreeSet::new(),
        };
        for route in routes.difference(&depends_on) {
            problems.push(format!(
                "deployment {id} does not DependsOn route {route}: the route could be missing from the stage"
            ));
        }
    }
    fail_if_any("WebSocket deployment ordering", &problems);
}

#[test]
fn functions_build_with_cargo_lambda() {
    let raw = raw_template();
    let problems: Vec<String> = resources_of_type(&raw, "AWS::Serverless::Function")
        .into_iter()
        .filter(|(_, body)| body.get("Metadata").and_then(|m| m.get("BuildMethod")).and_then(Value::as_str) != Some("rust-cargolambda"))
        .map(|(id, _)| format!("{id} lacks Metadata.BuildMethod: rust-cargolambda"))
        .collect();
    fail_if_any("functions SAM cannot build", &problems);
}

#[test]
fn package_name_reader() {
    let manifest = "[package]\nname = \"ws-ping\" # the binary\nversion.workspace = true\n\n[dependencies]\nname = \"x\"\n";
    assert_eq!(package_name(manifest).as_deref(), Some("ws-ping"));
    assert_eq!(package_name("[dependencies]\nname = \"x\"\n"), None);
    assert_eq!(package_name("[lib]\nname = \"a\"\n[package]\nname=\"b\"\n").as_deref(), Some("b"));
}

#[test]
fn stream_routes_are_the_api_streams() {
    let template = template();
    let actual: BTreeSet<(String, String)> = template
        .stream_routes
        .iter()
        .map(|r| {
            (
                r.path.clone(),
                template.binary_of(&r.function).unwrap_or("<no such function>").to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = STREAM_ROUTES.iter().map(|(p, b)| ((*p).to_owned(), (*b).to_owned())).collect();
    assert_eq!(actual, expected, "streaming function URLs differ from API.md");
    // No HTTP API route shadows a stream (the local stack tries HTTP routes first).
    for (path, _) in STREAM_ROUTES {
        let concrete = path.replace("{tripId}", "T1");
        assert!(
            template.match_http("GET", &concrete).is_none(),
            "{concrete} is also an HTTP API route"
        );
    }
}
