//! The model of `template.yaml` that the local stack serves: its functions (with the binary
//! each one builds), the WebSocket routes, the HTTP API routes, the Lambda authorizers that guard
//! them, the EventBridge rules and the schedules. The local stack serves exactly what the template declares, so local and cloud
//! cannot drift; `tests/tests/parity.rs` checks the template against the function crates.
//!
//! CloudFormation intrinsic functions arrive in two spellings: the short-form YAML tags
//! (`!Ref X`, `!Sub "..."`, `!GetAtt X.Arn`, `!Join [...]`, which `serde_yaml` hands over as
//! [`Value::Tagged`]) and the long form (`{Ref: X}`, `{"Fn::Sub": ...}`, ...). Both are first
//! rewritten to the long form; the few values the model needs (a route's target, an
//! integration's URI) are then rendered to a string in which every reference reads `${Name}`
//! or `${Name.Attribute}`, the way `Fn::Sub` writes them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

/// What the local stack needs to know about `template.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Every `AWS::Serverless::Function`, in template order.
    pub functions: Vec<FunctionDef>,
    /// Every route of the WebSocket API (`$connect`, `$disconnect`, `$default`, actions).
    pub ws_routes: Vec<WsRoute>,
    /// Every `HttpApi` event of a function.
    pub http_routes: Vec<HttpRoute>,
    /// Every `EventBridgeRule` (or `CloudWatchEvent`) event of a function.
    pub rules: Vec<Rule>,
    /// Every enabled `Schedule` or `ScheduleV2` event of a function.
    pub schedules: Vec<Schedule>,
    /// Every enabled `DynamoDB` (stream) event of a function.
    pub table_streams: Vec<TableStream>,
    /// Every Lambda authorizer: `AWS::ApiGatewayV2::Authorizer`s and those of a SAM `HttpApi`'s `Auth`.
    pub authorizers: Vec<Authorizer>,
    /// Every function URL with response streaming (a function's `FunctionUrlConfig` with
    /// `InvokeMode: RESPONSE_STREAM`), at the path its function answers.
    pub stream_routes: Vec<StreamRoute>,
    /// The HTTP API's `CorsConfiguration` (API Gateway answers the preflight itself).
    pub http_cors: Option<Cors>,
}

/// A CORS setting (`CorsConfiguration` of an HTTP API, `Cors` of a function URL).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cors {
    pub allow_origins: Vec<String>,
    pub allow_headers: Vec<String>,
    pub allow_methods: Vec<String>,
    pub max_age: Option<u64>,
}

impl Cors {
    fn read(v: &Value) -> Cors {
        let list = |k: &str| -> Vec<String> {
            v.get(k)
                .and_then(Value::as_sequence)
                .map(|s| s.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        Cors {
            allow_origins: list("AllowOrigins"),
            allow_headers: list("AllowHeaders"),
            allow_methods: list("AllowMethods"),
            max_age: v.get("MaxAge").and_then(Value::as_u64),
        }
    }

    /// The `Access-Control-Allow-Origin` answer for a request's `Origin`, if allowed.
    pub fn allow_origin(&self, origin: &str) -> Option<String> {
        if self.allow_origins.iter().any(|o| o == "*") {
            Some("*".into())
        } else {
            self.allow_origins
                .iter()
                .any(|o| o.eq_ignore_ascii_case(origin))
                .then(|| origin.to_owned())
        }
    }
}

/// A function of the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionDef {
    /// Its logical id, e.g. `WsConnectFunction`.
    pub logical_id: String,
    /// The binary it runs (`Metadata.BuildProperties.Binary`), e.g. `ws-connect`; also the
    /// name of its crate under `functions/`.
    pub binary: String,
}

/// A route of the WebSocket API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsRoute {
    /// The route key: `$connect`, `$disconnect`, `$default` or an `action` value.
    pub route_key: String,
    /// The logical id of the function the route's integration invokes.
    pub function: String,
    /// The name of the authorizer API Gateway runs first (`AuthorizationType: CUSTOM`).
    pub authorizer: Option<String>,
}

/// A route of the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    /// The method, upper case (`POST`, or `ANY`).
    pub method: String,
    /// The path template, e.g. `/api/chat/{chatId}/messages`.
    pub path: String,
    /// The logical id of the function.
    pub function: String,
    /// The name of the authorizer API Gateway runs first: the event's `Auth.Authorizer`, else its
    /// API's `DefaultAuthorizer` (`NONE` opts out).
    pub authorizer: Option<String>,
}

/// A function URL whose function streams its answer (server-sent events). A function URL has
/// no routes: every path reaches the function. `Metadata.UrlPath` of the function names the
/// path (template) it answers, e.g. `/api/realtime/trip-status/{tripId}`; the local stack
/// serves the function there, on its one address, with no authorizer (`AuthType: NONE`: the
/// function checks the caller itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRoute {
    pub path: String,
    /// The logical id of the function.
    pub function: String,
    /// The function URL's `Cors`.
    pub cors: Option<Cors>,
}

/// A Lambda authorizer: API Gateway invokes its function before the routes that use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorizer {
    /// The `AWS::ApiGatewayV2::Authorizer`'s logical id, or `HttpApiLogicalId.Name` for one in the
    /// `Auth.Authorizers` of a SAM `HttpApi`.
    pub name: String,
    /// The logical id of its function.
    pub function: String,
    pub kind: AuthorizerKind,
    /// Request parameters that must all be present and non-empty, else API Gateway answers 401
    /// without invoking the function.
    pub identity_sources: Vec<IdentitySource>,
}

/// What API Gateway sends an authorizer and how it reads the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizerKind {
    /// A WebSocket API `REQUEST` authorizer: `methodArn` in, an IAM policy out.
    WebSocket,
    /// An HTTP API Lambda authorizer, payload format 2.0: `routeArn` in, `{"isAuthorized"}` out
    /// with simple responses, else an IAM policy.
    Http { simple_responses: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    Header(String),
    Query(String),
}

/// An EventBridge rule that invokes a function.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// `FunctionLogicalId.EventName`, e.g. `FanoutFunction.RealtimeEvents`.
    pub name: String,
    /// The event pattern, as EventBridge reads it.
    pub pattern: serde_json::Value,
    /// The logical id of the target function.
    pub function: String,
}

/// A DynamoDB stream of the table that invokes a function with its records.
#[derive(Debug, Clone, PartialEq)]
pub struct TableStream {
    /// `FunctionLogicalId.EventName`.
    pub name: String,
    /// The `FilterCriteria` patterns (a record goes to the function when any matches).
    pub filters: Vec<serde_json::Value>,
    pub batch_size: usize,
    /// The logical id of the target function.
    pub function: String,
}

/// A schedule that invokes a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// `FunctionLogicalId.EventName`.
    pub name: String,
    /// The schedule expression, e.g. `rate(1 minute)`.
    pub expression: String,
    /// The logical id of the target function.
    pub function: String,
}

/// Why `template.yaml` could not be read into a [`Template`].
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The file could not be read.
    #[error("cannot read template {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not YAML.
    #[error("template is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    /// The template has no `Resources` mapping.
    #[error("template has no Resources mapping")]
    NoResources,
    /// A property the model needs is missing or has the wrong shape.
    #[error("resource {resource}: {property} is missing or malformed ({expected})")]
    Property {
        resource: String,
        property: String,
        expected: &'static str,
    },
    /// A reference points at a resource that is missing or of the wrong type.
    #[error("resource {resource}: {property} refers to {target}, which is not {expected}")]
    Reference {
        resource: String,
        property: String,
        target: String,
        expected: &'static str,
    },
    /// The template uses a construct the local stack cannot serve.
    #[error("resource {resource}: {message}")]
    Unsupported { resource: String, message: String },
}

const FUNCTION_TYPE: &str = "AWS::Serverless::Function";
const WS_API_TYPE: &str = "AWS::ApiGatewayV2::Api";
const WS_ROUTE_TYPE: &str = "AWS::ApiGatewayV2::Route";
const WS_INTEGRATION_TYPE: &str = "AWS::ApiGatewayV2::Integration";
const WS_AUTHORIZER_TYPE: &str = "AWS::ApiGatewayV2::Authorizer";
const HTTP_API_TYPE: &str = "AWS::Serverless::HttpApi";

impl Template {
    /// Reads the model out of the text of a SAM template.
    pub fn parse(yaml: &str) -> Result<Template, TemplateError> {
        let doc: Value = serde_yaml::from_str(yaml)?;
        let doc = long_form(doc);
        let resources = doc.get("Resources").and_then(Value::as_mapping).ok_or(TemplateError::NoResources)?;
        let resources: Vec<(&str, &Mapping)> = resources
            .iter()
            .filter_map(|(id, body)| Some((id.as_str()?, body.as_mapping()?)))
            .collect();

        let mut template = Template {
            functions: Vec::new(),
            ws_routes: Vec::new(),
            http_routes: Vec::new(),
            rules: Vec::new(),
            schedules: Vec::new(),
            table_streams: Vec::new(),
            authorizers: Vec::new(),
            stream_routes: Vec::new(),
            http_cors: None,
        };
        // HTTP API authorizers first: a function's routes name them. Their functions are checked
        // once every function is known.
        let mut default_authorizers = HashMap::new();
        for &(id, body) in &resources {
            if resource_type(body) == Some(HTTP_API_TYPE) {
                if let Some(default) = template.read_http_api(id, body)? {
                    default_authorizers.insert(id.to_owned(), default);
                }
            }
        }
        for &(id, body) in &resources {
            if resource_type(body) == Some(FUNCTION_TYPE) {
                template.read_function(id, body, &default_authorizers)?;
            }
        }
        for a in &template.authorizers {
            if template.function(&a.function).is_none() {
                let (api, name) = a.name.split_once('.').unwrap_or((&a.name, ""));
                let what = format!("Properties.Auth.Authorizers.{name}.FunctionArn");
                return Err(reference(api, &what, &a.function, "an AWS::Serverless::Function"));
            }
        }
        for &(id, body) in &resources {
            if resource_type(body) == Some(WS_AUTHORIZER_TYPE) {
                let authorizer = template.read_ws_authorizer(id, body, &resources)?;
                template.authorizers.push(authorizer);
            }
        }
        for &(id, body) in &resources {
            if resource_type(body) == Some(WS_ROUTE_TYPE) {
                let route = template.read_ws_route(id, body, &resources)?;
                template.ws_routes.push(route);
            }
        }
        Ok(template)
    }

    /// Reads and parses the template at `path`.
    pub fn load(path: &Path) -> Result<Template, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Template::parse(&text)
    }

    /// The function with this logical id.
    pub fn function(&self, logical_id: &str) -> Option<&FunctionDef> {
        self.functions.iter().find(|f| f.logical_id == logical_id)
    }

    /// The binary of the function with this logical id.
    pub fn binary_of(&self, logical_id: &str) -> Option<&str> {
        self.function(logical_id).map(|f| f.binary.as_str())
    }

    /// The WebSocket route with exactly this key (no fallback to `$default`).
    pub fn ws_route(&self, route_key: &str) -> Option<&WsRoute> {
        self.ws_routes.iter().find(|r| r.route_key == route_key)
    }

    /// The route API Gateway WebSocket would pick for a message whose `action` is `action`
    /// (`None` when the message has no usable action): that action's route, else `$default`.
    pub fn ws_route_for_action(&self, action: Option<&str>) -> Option<&WsRoute> {
        action
            .filter(|a| !a.starts_with('$'))
            .and_then(|a| self.ws_route(a))
            .or_else(|| self.ws_route("$default"))
    }

    /// The HTTP route that serves `method` and `path`, with its path parameters. Like API
    /// Gateway, the most specific route wins: literal segments over `{param}` over
    /// `{proxy+}`, and an exact method over `ANY`.
    pub fn match_http(&self, method: &str, path: &str) -> Option<(&HttpRoute, Vec<(String, String)>)> {
        let method = method.to_ascii_uppercase();
        self.http_routes
            .iter()
            .filter(|r| r.method == method || r.method == "ANY")
            .filter_map(|r| match_path(&r.path, path).map(|params| (r, params)))
            .max_by_key(|(r, _)| (specificity(&r.path), r.method != "ANY"))
    }

    /// The authorizer with this name.
    pub fn authorizer(&self, name: &str) -> Option<&Authorizer> {
        self.authorizers.iter().find(|a| a.name == name)
    }

    /// The rules whose target is this function.
    pub fn rules_of(&self, logical_id: &str) -> impl Iterator<Item = &Rule> {
        let logical_id = logical_id.to_owned();
        self.rules.iter().filter(move |r| r.function == logical_id)
    }

    /// The authorizers of a SAM `HttpApi` (`Auth.Authorizers`); returns its default authorizer.
    fn read_http_api(&mut self, id: &str, body: &Mapping) -> Result<Option<String>, TemplateError> {
        if let Some(cors) = body.get("Properties").and_then(|p| p.get("CorsConfiguration")) {
            self.http_cors = Some(Cors::read(cors));
        }
        let Some(auth) = body.get("Properties").and_then(|p| p.get("Auth")) else {
            return Ok(None);
        };
        let unsupported = |message: String| TemplateError::Unsupported {
            resource: id.to_owned(),
            message,
        };
        let empty = Mapping::new();
        let authorizers = match auth.get("Authorizers") {
            None => &empty,
            Some(a) => a
                .as_mapping()
                .ok_or_else(|| property(id, "Properties.Auth.Authorizers", "a mapping"))?,
        };
        for (name, def) in authorizers {
            let name = name
                .as_str()
                .ok_or_else(|| property(id, "Properties.Auth.Authorizers", "string authorizer names"))?;
            let what = format!("Properties.Auth.Authorizers.{name}");
            if def.get("JwtConfiguration").is_some() {
                return Err(unsupported(format!(
                    "{what} is a JWT authorizer; only Lambda authorizers are served"
                )));
            }
            let function = def
                .get("FunctionArn")
                .and_then(render)
                .and_then(|arn| function_of_arn(&arn))
                .ok_or_else(|| property(id, &format!("{what}.FunctionArn"), "!GetAtt <function>.Arn"))?;
            // `"2.0"`, or 2.0 when left unquoted.
            let version = match def.get("AuthorizerPayloadFormatVersion") {
                Some(Value::String(v)) => v.clone(),
                Some(Value::Number(n)) => format!("{:.1}", n.as_f64().unwrap_or_default()),
                _ => String::new(),
            };
            if version != "2.0" {
                return Err(unsupported(format!(
                    "{what} has AuthorizerPayloadFormatVersion {version:?}; only \"2.0\" is served"
                )));
            }
            let mut identity_sources = Vec::new();
            let identity = def.get("Identity");
            for (key, source) in [
                ("Headers", IdentitySource::Header as fn(String) -> _),
                ("QueryStrings", IdentitySource::Query),
            ] {
                let Some(names) = identity.and_then(|i| i.get(key)) else {
                    continue;
                };
                let names = names
                    .as_sequence()
                    .ok_or_else(|| property(id, &format!("{what}.Identity.{key}"), "a list of names"))?;
                for n in names {
                    let n = n
                        .as_str()
                        .ok_or_else(|| property(id, &format!("{what}.Identity.{key}"), "a list of names"))?;
                    identity_sources.push(source(n.to_owned()));
                }
            }
            if let Some(other) = ["StageVariables", "Context"]
                .iter()
                .find(|k| identity.and_then(|i| i.get(**k)).is_some())
            {
                return Err(unsupported(format!(
                    "{what}.Identity.{other} is not served; use Headers or QueryStrings"
                )));
            }
            self.authorizers.push(Authorizer {
                name: format!("{id}.{name}"),
                function,
                kind: AuthorizerKind::Http {
                    simple_responses: def.get("EnableSimpleResponses").and_then(Value::as_bool).unwrap_or(false),
                },
                identity_sources,
            });
        }
        let Some(default) = auth.get("DefaultAuthorizer") else {
            return Ok(None);
        };
        let default = default
            .as_str()
            .filter(|d| authorizers.contains_key(*d))
            .ok_or_else(|| property(id, "Properties.Auth.DefaultAuthorizer", "the name of one of its Authorizers"))?;
        Ok(Some(format!("{id}.{default}")))
    }

    fn read_function(&mut self, id: &str, body: &Mapping, default_authorizers: &HashMap<String, String>) -> Result<(), TemplateError> {
        let binary = body
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|p| p.get("Binary"))
            .and_then(Value::as_str)
            .filter(|b| !b.is_empty())
            .ok_or_else(|| property(id, "Metadata.BuildProperties.Binary", "a binary name"))?;
        self.functions.push(FunctionDef {
            logical_id: id.to_owned(),
            binary: binary.to_owned(),
        });
        if let Some(url) = body.get("Properties").and_then(|p| p.get("FunctionUrlConfig")) {
            self.read_function_url(id, body, url)?;
        }

        let Some(events) = body.get("Properties").and_then(|p| p.get("Events")) else {
            return Ok(());
        };
        let events = events.as_mapping().ok_or_else(|| property(id, "Properties.Events", "a mapping"))?;
        for (name, event) in events {
            let name = name
                .as_str()
                .ok_or_else(|| property(id, "Properties.Events", "string event names"))?;
            let what = format!("Properties.Events.{name}");
            let kind = event
                .get("Type")
                .and_then(Value::as_str)
                .ok_or_else(|| property(id, &format!("{what}.Type"), "a string"))?;
            let empty = Value::Mapping(Mapping::new());
            let props = event.get("Properties").unwrap_or(&empty);
            let full_name = format!("{id}.{name}");
            match kind {
                "HttpApi" => {
                    let path = props
                        .get("Path")
                        .and_then(Value::as_str)
                        .filter(|p| p.starts_with('/'))
                        .ok_or_else(|| property(id, &format!("{what}.Properties.Path"), "a path starting with /"))?;
                    let method = props
                        .get("Method")
                        .and_then(Value::as_str)
                        .filter(|m| !m.is_empty())
                        .ok_or_else(|| property(id, &format!("{what}.Properties.Method"), "an HTTP method"))?;
                    let method = method.to_ascii_uppercase();
                    // Without ApiId the route is on SAM's implicit API, which has no authorizers here.
                    let api = props.get("ApiId").and_then(render).and_then(|a| single_reference(&a));
                    let authorizer = match props.get("Auth").and_then(|a| a.get("Authorizer")) {
                        None => api.as_ref().and_then(|a| default_authorizers.get(a)).cloned(),
                        Some(Value::String(n)) if n == "NONE" => None,
                        Some(n) => {
                            let full = format!("{}.{}", api.as_deref().unwrap_or_default(), n.as_str().unwrap_or_default());
                            if self.authorizer(&full).is_none() {
                                return Err(reference(
                                    id,
                                    &format!("{what}.Properties.Auth.Authorizer"),
                                    &full,
                                    "an authorizer of its API",
                                ));
                            }
                            Some(full)
                        }
                    };
                    self.http_routes.push(HttpRoute {
                        method: if method == "X-AMAZON-APIGATEWAY-ANY-METHOD" {
                            "ANY".into()
                        } else {
                            method
                        },
                        path: path.to_owned(),
                        function: id.to_owned(),
                        authorizer,
                    });
                }
                "EventBridgeRule" | "CloudWatchEvent" => {
                    if is_disabled(props) {
                        continue;
                    }
                    let pattern = props
                        .get("Pattern")
                        .ok_or_else(|| property(id, &format!("{what}.Properties.Pattern"), "an event pattern"))?;
                    let pattern = to_json(pattern).map_err(|expected| TemplateError::Property {
                        resource: id.to_owned(),
                        property: format!("{what}.Properties.Pattern"),
                        expected,
                    })?;
                    if !pattern.is_object() {
                        return Err(property(id, &format!("{what}.Properties.Pattern"), "a mapping"));
                    }
                    self.rules.push(Rule {
                        name: full_name,
                        pattern,
                        function: id.to_owned(),
                    });
                }
                "Schedule" | "ScheduleV2" => {
                    if is_disabled(props) {
                        continue;
                    }
                    let key = if kind == "Schedule" { "Schedule" } else { "ScheduleExpression" };
                    let expression = props
                        .get(key)
                        .and_then(Value::as_str)
                        .ok_or_else(|| property(id, &format!("{what}.Properties.{key}"), "a schedule expression"))?;
                    self.schedules.push(Schedule {
                        name: full_name,
                        expression: expression.to_owned(),
                        function: id.to_owned(),
                    });
                }
                "DynamoDB" => {
                    if is_disabled(props) {
                        continue;
                    }
                    let mut filters = Vec::new();
                    let listed = props
                        .get("FilterCriteria")
                        .and_then(|f| f.get("Filters"))
                        .and_then(Value::as_sequence)
                        .cloned()
                        .unwrap_or_default();
                    for f in listed {
                        let pattern = f
                            .get("Pattern")
                            .and_then(Value::as_str)
                            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
                            .ok_or_else(|| property(id, &format!("{what}.Properties.FilterCriteria"), "Filters of JSON Pattern strings"))?;
                        filters.push(pattern);
                    }
                    let batch_size = props.get("BatchSize").and_then(Value::as_u64).unwrap_or(100) as usize;
                    self.table_streams.push(TableStream {
                        name: full_name,
                        filters,
                        batch_size: batch_size.clamp(1, 10_000),
                        function: id.to_owned(),
                    });
                }
                other => {
                    return Err(TemplateError::Unsupported {
                        resource: id.to_owned(),
                        message: format!("event {name} has type {other}, which the local stack cannot serve"),
                    });
                }
            }
        }
        Ok(())
    }

    /// A function URL: only `InvokeMode: RESPONSE_STREAM` with `AuthType: NONE` is served, at
    /// the function's `Metadata.UrlPath`.
    fn read_function_url(&mut self, id: &str, body: &Mapping, url: &Value) -> Result<(), TemplateError> {
        let what = "Properties.FunctionUrlConfig";
        let unsupported = |message: String| TemplateError::Unsupported {
            resource: id.to_owned(),
            message,
        };
        let mode = url.get("InvokeMode").and_then(Value::as_str).unwrap_or("BUFFERED");
        if mode != "RESPONSE_STREAM" {
            return Err(unsupported(format!(
                "{what}.InvokeMode is {mode}; the local stack serves function URLs with RESPONSE_STREAM only"
            )));
        }
        match url.get("AuthType").and_then(Value::as_str) {
            Some("NONE") => {}
            Some(other) => {
                return Err(unsupported(format!(
                    "{what}.AuthType is {other}; the local stack serves AuthType NONE only (the function checks the caller)"
                )))
            }
            None => return Err(property(id, &format!("{what}.AuthType"), "NONE")),
        }
        let path = body
            .get("Metadata")
            .and_then(|m| m.get("UrlPath"))
            .and_then(Value::as_str)
            .filter(|p| p.starts_with('/'))
            .ok_or_else(|| property(id, "Metadata.UrlPath", "the path its function URL answers, starting with /"))?;
        self.stream_routes.push(StreamRoute {
            path: path.to_owned(),
            function: id.to_owned(),
            cors: url.get("Cors").map(Cors::read),
        });
        Ok(())
    }

    /// The streaming function URL route that serves `path`, with its path parameters.
    pub fn match_stream(&self, path: &str) -> Option<(&StreamRoute, Vec<(String, String)>)> {
        self.stream_routes
            .iter()
            .filter_map(|r| match_path(&r.path, path).map(|params| (r, params)))
            .max_by_key(|(r, _)| specificity(&r.path))
    }

    /// The WebSocket API that `Properties.ApiId` of an `AWS::ApiGatewayV2` resource names.
    fn ws_api_of(id: &str, props: &Mapping, resources: &[(&str, &Mapping)]) -> Result<String, TemplateError> {
        let api = props
            .get("ApiId")
            .and_then(render)
            .and_then(|s| single_reference(&s))
            .ok_or_else(|| property(id, "Properties.ApiId", "a reference to an API"))?;
        let api_protocol = find(resources, &api, WS_API_TYPE)
            .and_then(|b| b.get("Properties"))
            .and_then(|p| p.get("ProtocolType"))
            .and_then(Value::as_str)
            .ok_or_else(|| reference(id, "Properties.ApiId", &api, "an AWS::ApiGatewayV2::Api"))?;
        if api_protocol != "WEBSOCKET" {
            return Err(TemplateError::Unsupported {
                resource: id.to_owned(),
                message: format!(
                    "routes and authorizers of the {api_protocol} API {api} are not served; declare HTTP routes as HttpApi events of a function"
                ),
            });
        }
        Ok(api)
    }

    /// A WebSocket `REQUEST` authorizer: `AuthorizerUri` (`.../functions/${Function.Arn}/invocations`)
    /// names its function, `IdentitySource` (`route.request.header.X`, `route.request.querystring.X`)
    /// what must be present.
    fn read_ws_authorizer(&self, id: &str, body: &Mapping, resources: &[(&str, &Mapping)]) -> Result<Authorizer, TemplateError> {
        let props = body
            .get("Properties")
            .and_then(Value::as_mapping)
            .ok_or_else(|| property(id, "Properties", "a mapping"))?;
        Self::ws_api_of(id, props, resources)?;
        let unsupported = |message: String| TemplateError::Unsupported {
            resource: id.to_owned(),
            message,
        };
        match props.get("AuthorizerType").and_then(Value::as_str) {
            Some("REQUEST") => {}
            other => return Err(unsupported(format!("AuthorizerType {other:?} is not served; only REQUEST"))),
        }
        let function = props
            .get("AuthorizerUri")
            .and_then(render)
            .and_then(|uri| function_of_uri(&uri))
            .ok_or_else(|| {
                property(
                    id,
                    "Properties.AuthorizerUri",
                    "arn:...:lambda:path/2015-03-31/functions/${Function.Arn}/invocations",
                )
            })?;
        if self.function(&function).is_none() {
            return Err(reference(id, "Properties.AuthorizerUri", &function, "an AWS::Serverless::Function"));
        }
        let sources: Vec<String> = match props.get("IdentitySource") {
            None => Vec::new(),
            Some(Value::String(s)) => s.split(',').map(|p| p.trim().to_owned()).collect(),
            Some(Value::Sequence(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| property(id, "Properties.IdentitySource", "a list of strings"))?,
            Some(_) => return Err(property(id, "Properties.IdentitySource", "a list of strings")),
        };
        let identity_sources = sources
            .iter()
            .map(|s| {
                if let Some(h) = s.strip_prefix("route.request.header.") {
                    Ok(IdentitySource::Header(h.to_owned()))
                } else if let Some(q) = s.strip_prefix("route.request.querystring.") {
                    Ok(IdentitySource::Query(q.to_owned()))
                } else {
                    Err(unsupported(format!(
                        "identity source {s:?} is not served; only headers and query strings"
                    )))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Authorizer {
            name: id.to_owned(),
            function,
            kind: AuthorizerKind::WebSocket,
            identity_sources,
        })
    }

    /// Route → its `Target` (`integrations/${Integration}`) → the integration's
    /// `IntegrationUri` (`.../functions/${Function.Arn}/invocations`) → the function.
    fn read_ws_route(&self, id: &str, body: &Mapping, resources: &[(&str, &Mapping)]) -> Result<WsRoute, TemplateError> {
        let props = body
            .get("Properties")
            .and_then(Value::as_mapping)
            .ok_or_else(|| property(id, "Properties", "a mapping"))?;
        Self::ws_api_of(id, props, resources)?;

        let route_key = props
            .get("RouteKey")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| property(id, "Properties.RouteKey", "a route key"))?;

        let integration = props
            .get("Target")
            .and_then(render)
            .and_then(|t| t.strip_prefix("integrations/").and_then(single_reference))
            .ok_or_else(|| property(id, "Properties.Target", "integrations/<a reference to an integration>"))?;
        let integration_body = find(resources, &integration, WS_INTEGRATION_TYPE)
            .ok_or_else(|| reference(id, "Properties.Target", &integration, "an AWS::ApiGatewayV2::Integration"))?;

        let function = integration_body
            .get("Properties")
            .and_then(|p| p.get("IntegrationUri"))
            .and_then(render)
            .and_then(|uri| function_of_uri(&uri))
            .ok_or_else(|| {
                property(
                    &integration,
                    "Properties.IntegrationUri",
                    "arn:...:lambda:path/2015-03-31/functions/${Function.Arn}/invocations",
                )
            })?;
        if self.function(&function).is_none() {
            return Err(reference(
                &integration,
                "Properties.IntegrationUri",
                &function,
                "an AWS::Serverless::Function",
            ));
        }
        let authorizer = match props.get("AuthorizationType").and_then(Value::as_str) {
            None | Some("NONE") => None,
            Some("CUSTOM") => {
                let authorizer = props
                    .get("AuthorizerId")
                    .and_then(render)
                    .and_then(|a| single_reference(&a))
                    .ok_or_else(|| property(id, "Properties.AuthorizerId", "a reference to an authorizer"))?;
                if self.authorizer(&authorizer).is_none() {
                    return Err(reference(
                        id,
                        "Properties.AuthorizerId",
                        &authorizer,
                        "an AWS::ApiGatewayV2::Authorizer",
                    ));
                }
                // As in API Gateway: the other routes run on an already authorized connection.
                if route_key != "$connect" {
                    return Err(TemplateError::Unsupported {
                        resource: id.to_owned(),
                        message: format!("route {route_key} has an authorizer; WebSocket APIs authorize $connect only"),
                    });
                }
                Some(authorizer)
            }
            Some(other) => {
                return Err(TemplateError::Unsupported {
                    resource: id.to_owned(),
                    message: format!("AuthorizationType {other} is not served; only NONE and CUSTOM"),
                })
            }
        };
        Ok(WsRoute {
            route_key: route_key.to_owned(),
            function,
            authorizer,
        })
    }
}

/// Matches an HTTP route path template against a request path: `Some(path params)` or `None`.
///
/// `{name}` matches one non-empty segment, `{name+}` (last only) the non-empty rest of the
/// path. Literal segments match exactly (case-sensitive, as in API Gateway). A query string
/// on `path` is ignored. Parameter values are percent-decoded, as API Gateway passes them.
pub fn match_path(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let template_segments: Vec<&str> = template.strip_prefix('/')?.split('/').collect();
    let path = path.strip_prefix('/')?;
    let mut path_segments = path.split('/');
    let mut params = Vec::new();
    let last = template_segments.len() - 1;
    for (i, segment) in template_segments.iter().enumerate() {
        let param = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
        match param {
            Some(name) if i == last && name.ends_with('+') => {
                let rest: Vec<&str> = path_segments.by_ref().collect();
                let rest = rest.join("/");
                if rest.is_empty() {
                    return None;
                }
                params.push((name.trim_end_matches('+').to_owned(), percent_decode(&rest)));
                return Some(params);
            }
            Some(name) => {
                let value = path_segments.next().filter(|v| !v.is_empty())?;
                params.push((name.to_owned(), percent_decode(value)));
            }
            None => {
                if path_segments.next()? != *segment {
                    return None;
                }
            }
        }
    }
    path_segments.next().is_none().then_some(params)
}

/// Seconds between runs of a `rate(N unit)` schedule expression (`minute(s)`, `hour(s)`,
/// `day(s)`); `None` for anything else, `cron(...)` included.
pub fn rate_seconds(expression: &str) -> Option<u64> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let mut words = inner.split_whitespace();
    let count: u64 = words.next()?.parse().ok()?;
    let unit = words.next()?;
    if words.next().is_some() || count == 0 {
        return None;
    }
    let per_unit = match unit {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3_600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    count.checked_mul(per_unit)
}

/// How specific a route path is, for picking among matching routes.
fn specificity(path: &str) -> (usize, usize) {
    let segments = path.split('/').filter(|s| !s.is_empty());
    let (mut literal, mut single) = (0, 0);
    for segment in segments {
        if segment.ends_with("+}") {
            continue;
        } else if segment.starts_with('{') {
            single += 1;
        } else {
            literal += 1;
        }
    }
    (literal, single)
}

fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| raw.to_owned())
}

fn resource_type(body: &Mapping) -> Option<&str> {
    body.get("Type").and_then(Value::as_str)
}

fn find<'a>(resources: &[(&str, &'a Mapping)], id: &str, kind: &str) -> Option<&'a Mapping> {
    resources
        .iter()
        .find(|(rid, body)| *rid == id && resource_type(body) == Some(kind))
        .map(|(_, body)| *body)
}

fn is_disabled(props: &Value) -> bool {
    props.get("Enabled").and_then(Value::as_bool) == Some(false) || props.get("State").and_then(Value::as_str) == Some("DISABLED")
}

fn property(resource: &str, property: &str, expected: &'static str) -> TemplateError {
    TemplateError::Property {
        resource: resource.to_owned(),
        property: property.to_owned(),
        expected,
    }
}

fn reference(resource: &str, property: &str, target: &str, expected: &'static str) -> TemplateError {
    TemplateError::Reference {
        resource: resource.to_owned(),
        property: property.to_owned(),
        target: target.to_owned(),
        expected,
    }
}

/// Rewrites the short-form intrinsic tags into the long form: `!Ref X` → `{Ref: X}`,
/// `!GetAtt X.Y` → `{"Fn::GetAtt": [X, Y]}`, `!Condition C` → `{Condition: C}`,
/// `!Sub`/`!Join`/... → `{"Fn::Sub": ...}`/`{"Fn::Join": ...}`/...
fn long_form(value: Value) -> Value {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = long_form(tagged.value);
            let (key, inner) = match name {
                "Ref" | "Condition" => (name.to_owned(), inner),
                "GetAtt" => {
                    let inner = match inner {
                        Value::String(s) => match s.split_once('.') {
                            Some((resource, attribute)) => Value::Sequence(vec![resource.into(), attribute.into()]),
                            None => Value::String(s),
                        },
                        other => other,
                    };
                    ("Fn::GetAtt".to_owned(), inner)
                }
                other => (format!("Fn::{other}"), inner),
            };
            let mut map = Mapping::new();
            map.insert(Value::String(key), inner);
            Value::Mapping(map)
        }
        Value::Sequence(items) => Value::Sequence(items.into_iter().map(long_form).collect()),
        Value::Mapping(map) => Value::Mapping(map.into_iter().map(|(k, v)| (k, long_form(v))).collect()),
        other => other,
    }
}

/// The single intrinsic function a mapping stands for, if it is one: `(name, argument)`.
fn intrinsic(value: &Value) -> Option<(&str, &Value)> {
    let map = value.as_mapping()?;
    if map.len() != 1 {
        return None;
    }
    let (key, argument) = map.iter().next()?;
    let key = key.as_str()?;
    (key == "Ref" || key.starts_with("Fn::")).then_some((key, argument))
}

/// Renders a string-valued expression with every reference written `${Name}` or
/// `${Name.Attribute}`. `None` for what cannot be rendered (conditions, lookups, ...).
fn render(value: &Value) -> Option<String> {
    if let Some(s) = value.as_str() {
        return Some(s.to_owned());
    }
    let (name, argument) = intrinsic(value)?;
    match name {
        "Ref" => Some(format!("${{{}}}", argument.as_str()?)),
        "Fn::GetAtt" => match argument {
            Value::String(s) => Some(format!("${{{s}}}")),
            Value::Sequence(parts) if parts.len() == 2 => Some(format!("${{{}.{}}}", parts[0].as_str()?, parts[1].as_str()?)),
            _ => None,
        },
        "Fn::Sub" => match argument {
            Value::String(s) => Some(s.clone()),
            Value::Sequence(parts) if parts.len() == 2 => {
                let mut text = parts[0].as_str()?.to_owned();
                for (var, replacement) in parts[1].as_mapping()? {
                    let placeholder = format!("${{{}}}", var.as_str()?);
                    text = text.replace(&placeholder, &render(replacement)?);
                }
                Some(text)
            }
            _ => None,
        },
        "Fn::Join" => {
            let parts = argument.as_sequence()?;
            let [delimiter, items] = parts.as_slice() else {
                return None;
            };
            let rendered: Option<Vec<String>> = items.as_sequence()?.iter().map(render).collect();
            Some(rendered?.join(delimiter.as_str()?))
        }
        _ => None,
    }
}

/// `Name` when `text` is exactly one `${Name}` reference.
fn single_reference(text: &str) -> Option<String> {
    let name = text.strip_prefix("${")?.strip_suffix('}')?;
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric());
    valid.then(|| name.to_owned())
}

/// The function whose `${Function.Arn}` a Lambda integration URI invokes.
fn function_of_uri(uri: &str) -> Option<String> {
    let rest = uri.split_once(":lambda:path/")?.1;
    let rest = rest.split_once("/functions/")?.1;
    function_of_arn(rest.strip_suffix("/invocations")?)
}

/// `Function` when `arn` is exactly `${Function.Arn}`.
fn function_of_arn(arn: &str) -> Option<String> {
    let name = arn.strip_prefix("${")?.strip_suffix(".Arn}")?;
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric());
    valid.then(|| name.to_owned())
}

/// Converts plain YAML data (no intrinsic functions) to JSON.
fn to_json(value: &Value) -> Result<serde_json::Value, &'static str> {
    if intrinsic(value).is_some() {
        return Err("plain data without intrinsic functions");
    }
    Ok(match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into()
            } else if let Some(u) = n.as_u64() {
                u.into()
            } else {
                let f = n.as_f64().ok_or("finite numbers")?;
                serde_json::Number::from_f64(f)
                    .map(serde_json::Value::Number)
                    .ok_or("finite numbers")?
            }
        }
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Sequence(items) => serde_json::Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Value::Mapping(map) => {
            let mut object = serde_json::Map::new();
            for (k, v) in map {
                let key = k.as_str().ok_or("string keys")?;
                object.insert(key.to_owned(), to_json(v)?);
            }
            serde_json::Value::Object(object)
        }
        Value::Tagged(_) => return Err("plain data without YAML tags"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const REAL: &str = include_str!("../../../template.yaml");

    fn real() -> Template {
        Template::parse(REAL).expect("template.yaml parses")
    }

    #[test]
    fn real_template_functions_and_binaries() {
        let t = real();
        let pairs: Vec<(&str, &str)> = t.functions.iter().map(|f| (f.logical_id.as_str(), f.binary.as_str())).collect();
        for expected in [
            ("WsConnectFunction", "ws-connect"),
            ("WsDisconnectFunction", "ws-disconnect"),
            ("WsSubscribeFunction", "ws-subscribe"),
            ("WsUnsubscribeFunction", "ws-unsubscribe"),
            ("WsPingFunction", "ws-ping"),
            ("WsDefaultFunction", "ws-default"),
            ("ChatCreateFunction", "chat-create"),
            ("ChatJoinFunction", "chat-join"),
            ("ChatSendMessageFunction", "chat-send-message"),
            ("FanoutFunction", "fanout"),
        ] {
            assert!(pairs.contains(&expected), "{expected:?} missing from {pairs:?}");
        }
        assert_eq!(t.binary_of("FanoutFunction"), Some("fanout"));
        assert_eq!(t.function("ChatJoinFunction").map(|f| f.binary.as_str()), Some("chat-join"));
        assert!(t.function("NoSuchFunction").is_none());
        assert!(t.binary_of("EventsTable").is_none());
    }

    #[test]
    fn real_template_ws_routes() {
        let t = real();
        let mut routes: Vec<(&str, &str)> = t.ws_routes.iter().map(|r| (r.route_key.as_str(), r.function.as_str())).collect();
        routes.sort();
        assert_eq!(
            routes,
            vec![
                ("$connect", "WsConnectFunction"),
                ("$default", "WsDefaultFunction"),
                ("$disconnect", "WsDisconnectFunction"),
                ("driver:subscribe", "WsDriverSubscribeFunction"),
                ("passenger:subscribe", "WsPassengerSubscribeFunction"),
                ("ping", "WsPingFunction"),
                ("resume", "WsResumeFunction"),
                ("subscribe", "WsSubscribeFunction"),
                ("typing", "WsTypingFunction"),
                ("unsubscribe", "WsUnsubscribeFunction"),
            ]
        );
        let guarded: Vec<(&str, Option<&str>)> = t
            .ws_routes
            .iter()
            .filter(|r| r.authorizer.is_some())
            .map(|r| (r.route_key.as_str(), r.authorizer.as_deref()))
            .collect();
        assert_eq!(guarded, vec![("$connect", Some("WsConnectAuthorizer"))]);
        assert_eq!(
            t.ws_route_for_action(Some("ping")).map(|r| r.function.as_str()),
            Some("WsPingFunction")
        );
        assert_eq!(
            t.ws_route_for_action(Some("dance")).map(|r| r.function.as_str()),
            Some("WsDefaultFunction")
        );
        assert_eq!(t.ws_route_for_action(None).map(|r| r.function.as_str()), Some("WsDefaultFunction"));
        // A client cannot reach $connect by sending {"action":"$connect"}.
        assert_eq!(
            t.ws_route_for_action(Some("$connect")).map(|r| r.function.as_str()),
            Some("WsDefaultFunction")
        );
    }

    #[test]
    fn real_template_http_routes() {
        let t = real();
        let mut routes: Vec<(&str, &str, &str)> = t
            .http_routes
            .iter()
            .filter(|r| r.path.starts_with("/api/chat") || r.path == "/api/typing")
            .map(|r| (r.method.as_str(), r.path.as_str(), r.function.as_str()))
            .collect();
        routes.sort();
        assert_eq!(
            routes,
            vec![
                ("GET", "/api/chat/{chatId}/analytics", "ChatAnalyticsFunction"),
                ("GET", "/api/chat/{chatId}/messages", "ChatHistoryFunction"),
                ("GET", "/api/chat/{chatId}/state", "ChatStateFunction"),
                ("POST", "/api/chat", "ChatCreateFunction"),
                ("POST", "/api/chat/{chatId}/complete", "ChatCompleteFunction"),
                ("POST", "/api/chat/{chatId}/messages", "ChatSendMessageFunction"),
                ("POST", "/api/chat/{chatId}/participants", "ChatJoinFunction"),
                ("POST", "/api/typing", "ChatTypingFunction"),
                ("PUT", "/api/chat/{chatId}/settings", "ChatSettingsFunction"),
            ]
        );
        // GET and POST of one path are two routes.
        let (history, _) = t.match_http("GET", "/api/chat/C1/messages").expect("history");
        assert_eq!(history.function, "ChatHistoryFunction");
        let (route, params) = t.match_http("post", "/api/chat/C1/messages").expect("route");
        assert_eq!(route.function, "ChatSendMessageFunction");
        assert_eq!(params, vec![("chatId".to_owned(), "C1".to_owned())]);
        assert!(t.match_http("GET", "/api/chat").is_none());
        assert!(t.match_http("POST", "/api/chat/C1").is_none());
        // The HttpApi's DefaultAuthorizer guards every route but the public health check.
        for r in t.http_routes.iter().filter(|r| r.path != "/api/websocket/health") {
            assert_eq!(r.authorizer.as_deref(), Some("HttpApi.JwtAuthorizer"), "{r:?}");
        }
    }

    #[test]
    fn real_template_trip_routes_and_stream() {
        let t = real();
        let mut routes: Vec<(&str, &str, &str)> = t
            .http_routes
            .iter()
            .filter(|r| {
                [
                    "/api/trips",
                    "/api/bookings",
                    "/api/passengers/",
                    "/api/drivers/",
                    "/api/events/",
                    "/api/websocket/",
                ]
                .iter()
                .any(|p| r.path.starts_with(p))
            })
            .map(|r| (r.method.as_str(), r.path.as_str(), t.binary_of(&r.function).unwrap_or_default()))
            .collect();
        routes.sort();
        let mut expected = vec![
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
        ];
        expected.sort();
        assert_eq!(routes, expected);
        let health = t.match_http("GET", "/api/websocket/health").expect("health").0;
        assert_eq!(health.authorizer, None, "the health check is public");
        // The SSE function is a streaming function URL, served at its Metadata.UrlPath.
        assert_eq!(
            t.stream_routes,
            vec![StreamRoute {
                path: "/api/realtime/trip-status/{tripId}".into(),
                function: "TripStatusStreamFunction".into(),
                cors: Some(Cors {
                    allow_origins: vec!["*".into()],
                    allow_headers: vec!["Authorization".into(), "Last-Event-ID".into()],
                    allow_methods: vec!["GET".into()],
                    max_age: None,
                }),
            }]
        );
        let cors = t.http_cors.as_ref().expect("the HTTP API's CorsConfiguration");
        assert_eq!(cors.allow_origins, vec!["*"]);
        assert_eq!(cors.max_age, Some(600));
        assert!(cors.allow_headers.contains(&"Idempotency-Key".to_string()));
        assert_eq!(cors.allow_origin("https://app.example"), Some("*".into()));
        let only = Cors {
            allow_origins: vec!["https://app.example".into()],
            ..Cors::default()
        };
        assert_eq!(only.allow_origin("https://APP.example"), Some("https://APP.example".into()));
        assert_eq!(only.allow_origin("https://evil.example"), None);
        assert!(t.match_http("GET", "/api/realtime/trip-status/T1").is_none());
        let (route, params) = t.match_stream("/api/realtime/trip-status/T1").expect("stream route");
        assert_eq!(t.binary_of(&route.function), Some("trip-status-stream"));
        assert_eq!(params, vec![("tripId".to_owned(), "T1".to_owned())]);
        assert!(t.match_stream("/api/realtime/trip-status/T1/x").is_none());
    }

    #[test]
    fn function_urls_must_stream_without_auth_and_name_their_path() {
        let doc = |url: &str, meta: &str| {
            format!(
                "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Metadata:\n      BuildProperties: {{Binary: f}}\n{meta}    Properties:\n      FunctionUrlConfig: {url}\n"
            )
        };
        let ok = Template::parse(&doc("{AuthType: NONE, InvokeMode: RESPONSE_STREAM}", "      UrlPath: /s/{id}\n")).unwrap();
        assert_eq!(ok.match_stream("/s/1").map(|(r, _)| r.function.as_str()), Some("F"));
        for (url, meta, needle) in [
            ("{AuthType: NONE}", "      UrlPath: /s\n", "RESPONSE_STREAM"),
            ("{AuthType: AWS_IAM, InvokeMode: RESPONSE_STREAM}", "      UrlPath: /s\n", "AWS_IAM"),
            ("{InvokeMode: RESPONSE_STREAM}", "      UrlPath: /s\n", "AuthType"),
            ("{AuthType: NONE, InvokeMode: RESPONSE_STREAM}", "", "Metadata.UrlPath"),
        ] {
            let err = Template::parse(&doc(url, meta)).unwrap_err().to_string();
            assert!(err.contains(needle), "{url} {meta:?}: {err}");
        }
    }

    #[test]
    fn real_template_authorizers() {
        let t = real();
        assert_eq!(
            t.authorizers,
            vec![
                Authorizer {
                    name: "HttpApi.JwtAuthorizer".into(),
                    function: "AuthorizerFunction".into(),
                    kind: AuthorizerKind::Http { simple_responses: true },
                    identity_sources: vec![IdentitySource::Header("Authorization".into())],
                },
                Authorizer {
                    name: "WsConnectAuthorizer".into(),
                    function: "AuthorizerFunction".into(),
                    kind: AuthorizerKind::WebSocket,
                    identity_sources: vec![],
                },
            ]
        );
        assert_eq!(t.binary_of("AuthorizerFunction"), Some("authorizer"));
    }

    #[test]
    fn real_template_fanout_rule() {
        let t = real();
        assert_eq!(t.rules.len(), 3, "{:?}", t.rules);
        let rule = t.rules.iter().find(|r| r.function == "FanoutFunction").expect("the fan-out rule");
        assert_eq!(rule.name, "FanoutFunction.RealtimeEvents");
        assert_eq!(rule.function, "FanoutFunction");
        assert_eq!(rule.pattern, json!({"source": [{"prefix": "realtime."}]}));
        assert_eq!(t.rules_of("FanoutFunction").count(), 1);
        assert_eq!(t.rules_of("ChatCreateFunction").count(), 0);
        // The assistant and the analytics extension: their own rules, on chat event types.
        let pattern = |f: &str| t.rules_of(f).next().map(|r| r.pattern.clone());
        assert_eq!(
            pattern("ChatAssistantFunction"),
            Some(json!({"source": ["realtime.chat"], "detail-type": ["chat.ai.requested"]}))
        );
        assert_eq!(
            pattern("ExtAnalyticsFunction").map(|p| p["detail-type"].clone()),
            Some(json!([
                "chat.message.stored",
                "chat.message.rejected",
                "chat.ai.completed",
                "chat.ai.failed"
            ]))
        );
        assert!(t.schedules.is_empty(), "{:?}", t.schedules);
        // The relay reads the table's stream: new log entries marked for it, nothing else.
        assert_eq!(t.table_streams.len(), 1);
        let relay = &t.table_streams[0];
        assert_eq!(
            (relay.name.as_str(), relay.function.as_str()),
            ("LogRelayFunction.LogEntries", "LogRelayFunction")
        );
        assert_eq!(
            relay.filters,
            vec![json!({"eventName": ["INSERT"], "dynamodb": {"NewImage": {"relay": {"BOOL": [true]}}}})]
        );
        assert_eq!(t.binary_of("LogRelayFunction"), Some("log-relay"));
    }

    const SMALL: &str = r#"
Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}
  HelloFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: rust-cargolambda, BuildProperties: {Binary: hello}}
    Properties:
      Events:
        Get:
          Type: HttpApi
          Properties: {Path: "/api/hello/{name}", Method: get}
        Any:
          Type: HttpApi
          Properties: {Path: "/api/files/{proxy+}", Method: any}
  SweepFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: sweep
    Properties:
      Events:
        Tick:
          Type: Schedule
          Properties: {Schedule: rate(1 minute)}
        Tock:
          Type: ScheduleV2
          Properties: {ScheduleExpression: rate(5 minutes)}
        Off:
          Type: Schedule
          Properties: {Schedule: rate(1 day), Enabled: false}
        Orders:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [shop.orders]
              detail-type: [order.placed]
              detail: {amount: [{numeric: [">", 10.5]}], gift: [true], note: [null]}
  LongIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: {Ref: Api}
      IntegrationType: AWS_PROXY
      IntegrationUri:
        Fn::Join:
          - ""
          - - "arn:aws:apigateway:"
            - {Ref: "AWS::Region"}
            - ":lambda:path/2015-03-31/functions/"
            - {"Fn::GetAtt": [HelloFunction, Arn]}
            - /invocations
  ShortIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub
        - arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn}/invocations
        - Fn: !GetAtt SweepFunction.Arn
  ConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: $connect
      Target: !Sub integrations/${LongIntegration}
  SweepRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: {Ref: Api}
      RouteKey: sweep
      Target: {"Fn::Join": ["/", [integrations, {Ref: ShortIntegration}]]}
"#;

    #[test]
    fn small_template_all_forms() {
        let t = Template::parse(SMALL).expect("parses");
        assert_eq!(
            t.functions,
            vec![
                FunctionDef {
                    logical_id: "HelloFunction".into(),
                    binary: "hello".into()
                },
                FunctionDef {
                    logical_id: "SweepFunction".into(),
                    binary: "sweep".into()
                },
            ]
        );
        assert_eq!(
            t.ws_routes,
            vec![
                WsRoute {
                    route_key: "$connect".into(),
                    function: "HelloFunction".into(),
                    authorizer: None,
                },
                WsRoute {
                    route_key: "sweep".into(),
                    function: "SweepFunction".into(),
                    authorizer: None,
                },
            ]
        );
        assert_eq!(
            t.http_routes,
            vec![
                HttpRoute {
                    method: "GET".into(),
                    path: "/api/hello/{name}".into(),
                    function: "HelloFunction".into(),
                    authorizer: None,
                },
                HttpRoute {
                    method: "ANY".into(),
                    path: "/api/files/{proxy+}".into(),
                    function: "HelloFunction".into(),
                    authorizer: None,
                },
            ]
        );
        assert_eq!(
            t.schedules,
            vec![
                Schedule {
                    name: "SweepFunction.Tick".into(),
                    expression: "rate(1 minute)".into(),
                    function: "SweepFunction".into()
                },
                Schedule {
                    name: "SweepFunction.Tock".into(),
                    expression: "rate(5 minutes)".into(),
                    function: "SweepFunction".into()
                },
            ]
        );
        assert_eq!(t.rules.len(), 1);
        assert_eq!(t.rules[0].name, "SweepFunction.Orders");
        assert_eq!(
            t.rules[0].pattern,
            json!({
                "source": ["shop.orders"],
                "detail-type": ["order.placed"],
                "detail": {"amount": [{"numeric": [">", 10.5]}], "gift": [true], "note": [null]}
            })
        );
        let (route, params) = t.match_http("DELETE", "/api/files/a/b%20c.txt").expect("ANY route");
        assert_eq!(route.method, "ANY");
        assert_eq!(params, vec![("proxy".to_owned(), "a/b c.txt".to_owned())]);
    }

    #[test]
    fn errors_name_the_offender() {
        let missing_binary = "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties: {}\n";
        let err = Template::parse(missing_binary).unwrap_err();
        assert!(
            matches!(err, TemplateError::Property { ref resource, .. } if resource == "F"),
            "{err}"
        );
        assert!(err.to_string().contains("Metadata.BuildProperties.Binary"), "{err}");

        let dangling = r#"
Resources:
  Api: {Type: AWS::ApiGatewayV2::Api, Properties: {ProtocolType: WEBSOCKET}}
  R:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Api, RouteKey: $default, Target: !Join [/, [integrations, !Ref Nope]]}
"#;
        let err = Template::parse(dangling).unwrap_err();
        assert!(
            matches!(err, TemplateError::Reference { ref target, .. } if target == "Nope"),
            "{err}"
        );

        let unknown_function = r#"
Resources:
  Api: {Type: AWS::ApiGatewayV2::Api, Properties: {ProtocolType: WEBSOCKET}}
  I:
    Type: AWS::ApiGatewayV2::Integration
    Properties: {ApiId: !Ref Api, IntegrationUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Ghost.Arn}/invocations"}
  R:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Api, RouteKey: $default, Target: !Sub "integrations/${I}"}
"#;
        let err = Template::parse(unknown_function).unwrap_err();
        assert!(
            matches!(err, TemplateError::Reference { ref target, .. } if target == "Ghost"),
            "{err}"
        );

        let bad_event = r#"
Resources:
  F:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: f}}
    Properties: {Events: {Q: {Type: SQS, Properties: {Queue: !GetAtt Q.Arn}}}}
"#;
        let err = Template::parse(bad_event).unwrap_err();
        assert!(matches!(err, TemplateError::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains("SQS"), "{err}");

        let intrinsic_pattern = r#"
Resources:
  F:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: f}}
    Properties: {Events: {E: {Type: EventBridgeRule, Properties: {Pattern: {source: [!Ref Src]}}}}}
"#;
        let err = Template::parse(intrinsic_pattern).unwrap_err();
        assert!(err.to_string().contains("F.E") || err.to_string().contains("Events.E"), "{err}");

        assert!(matches!(Template::parse("Foo: 1").unwrap_err(), TemplateError::NoResources));
        assert!(matches!(Template::parse(": : :\n\t- [").unwrap_err(), TemplateError::Yaml(_)));
        let err = Template::load(Path::new("/definitely/not/here/template.yaml")).unwrap_err();
        assert!(matches!(err, TemplateError::Io { .. }), "{err}");
    }

    #[test]
    fn http_api_routes_are_not_taken_for_ws_routes() {
        let yaml = r#"
Resources:
  H: {Type: AWS::ApiGatewayV2::Api, Properties: {ProtocolType: HTTP}}
  R: {Type: AWS::ApiGatewayV2::Route, Properties: {ApiId: !Ref H, RouteKey: GET /x, Target: integrations/abc}}
"#;
        let err = Template::parse(yaml).unwrap_err();
        assert!(
            matches!(err, TemplateError::Unsupported { ref resource, .. } if resource == "R"),
            "{err}"
        );
    }

    #[test]
    fn match_path_cases() {
        let p = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(match_path("/api/chat", "/api/chat"), Some(vec![]));
        assert_eq!(match_path("/api/chat", "/api/chat?x=1"), Some(vec![]));
        assert_eq!(match_path("/api/chat", "/api/chat/"), None);
        assert_eq!(match_path("/api/chat", "/api/chats"), None);
        assert_eq!(match_path("/api/chat", "/api"), None);
        assert_eq!(match_path("/api/chat", "/API/chat"), None);
        assert_eq!(match_path("/api/chat", "api/chat"), None);
        assert_eq!(
            match_path("/api/chat/{chatId}/messages", "/api/chat/C1/messages"),
            Some(vec![p("chatId", "C1")])
        );
        assert_eq!(match_path("/api/chat/{chatId}/messages", "/api/chat//messages"), None);
        assert_eq!(match_path("/api/chat/{chatId}/messages", "/api/chat/C1/messages/x"), None);
        assert_eq!(
            match_path("/a/{x}/b/{y}", "/a/1/b/two%2F2"),
            Some(vec![p("x", "1"), p("y", "two/2")])
        );
        assert_eq!(match_path("/a/{x}", "/a/%zz"), Some(vec![p("x", "%zz")]));
        assert_eq!(match_path("/a/{x}", "/a/100%"), Some(vec![p("x", "100%")]));
        assert_eq!(match_path("/files/{proxy+}", "/files/a/b/c"), Some(vec![p("proxy", "a/b/c")]));
        assert_eq!(match_path("/files/{proxy+}", "/files/"), None);
        assert_eq!(match_path("/files/{proxy+}", "/files"), None);
        assert_eq!(match_path("/", "/"), Some(vec![]));
    }

    #[test]
    fn most_specific_route_wins() {
        let t = Template {
            http_cors: None,
            functions: vec![],
            ws_routes: vec![],
            http_routes: vec![
                HttpRoute {
                    method: "ANY".into(),
                    path: "/api/{proxy+}".into(),
                    function: "Catch".into(),
                    authorizer: None,
                },
                HttpRoute {
                    method: "GET".into(),
                    path: "/api/chat/{chatId}".into(),
                    function: "Param".into(),
                    authorizer: None,
                },
                HttpRoute {
                    method: "GET".into(),
                    path: "/api/chat/stats".into(),
                    function: "Literal".into(),
                    authorizer: None,
                },
                HttpRoute {
                    method: "ANY".into(),
                    path: "/api/chat/stats".into(),
                    function: "AnyLiteral".into(),
                    authorizer: None,
                },
            ],
            rules: vec![],
            schedules: vec![],
            table_streams: vec![],
            authorizers: vec![],
            stream_routes: vec![],
        };
        let pick = |m: &str, p: &str| t.match_http(m, p).map(|(r, _)| r.function.clone());
        assert_eq!(pick("GET", "/api/chat/stats").as_deref(), Some("Literal"));
        assert_eq!(pick("POST", "/api/chat/stats").as_deref(), Some("AnyLiteral"));
        assert_eq!(pick("GET", "/api/chat/C1").as_deref(), Some("Param"));
        assert_eq!(pick("GET", "/api/trips/T1").as_deref(), Some("Catch"));
        assert_eq!(pick("GET", "/other"), None);
    }

    const AUTH: &str = r#"
Resources:
  Ws: {Type: AWS::ApiGatewayV2::Api, Properties: {ProtocolType: WEBSOCKET}}
  Http:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Main
        Authorizers:
          Main:
            FunctionArn: !GetAtt AuthFunction.Arn
            AuthorizerPayloadFormatVersion: 2.0
            EnableSimpleResponses: true
            Identity: {Headers: [Authorization], QueryStrings: [apiKey]}
          Policy:
            FunctionArn: {"Fn::GetAtt": [AuthFunction, Arn]}
            AuthorizerPayloadFormatVersion: "2.0"
  AuthFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: auth}}
  AppFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: app}}
    Properties:
      Events:
        Default: {Type: HttpApi, Properties: {ApiId: !Ref Http, Path: /a, Method: get}}
        Open: {Type: HttpApi, Properties: {ApiId: !Ref Http, Path: /b, Method: get, Auth: {Authorizer: NONE}}}
        Other: {Type: HttpApi, Properties: {ApiId: !Ref Http, Path: /c, Method: get, Auth: {Authorizer: Policy}}}
        Implicit: {Type: HttpApi, Properties: {Path: /d, Method: get}}
  WsAuth:
    Type: AWS::ApiGatewayV2::Authorizer
    Properties:
      Name: a
      ApiId: !Ref Ws
      AuthorizerType: REQUEST
      AuthorizerUri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${AuthFunction.Arn}/invocations
      IdentitySource: [route.request.header.Auth, route.request.querystring.token]
  I:
    Type: AWS::ApiGatewayV2::Integration
    Properties: {ApiId: !Ref Ws, IntegrationUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${AppFunction.Arn}/invocations"}
  Connect:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Ws, RouteKey: $connect, AuthorizationType: CUSTOM, AuthorizerId: !Ref WsAuth, Target: !Sub "integrations/${I}"}
"#;

    #[test]
    fn authorizers_guard_the_routes_that_name_them() {
        let t = Template::parse(AUTH).expect("parses");
        let http_main = t.authorizer("Http.Main").expect("Http.Main");
        assert_eq!(http_main.function, "AuthFunction");
        assert_eq!(http_main.kind, AuthorizerKind::Http { simple_responses: true });
        assert_eq!(
            http_main.identity_sources,
            vec![
                IdentitySource::Header("Authorization".into()),
                IdentitySource::Query("apiKey".into())
            ]
        );
        assert_eq!(
            t.authorizer("Http.Policy").map(|a| a.kind),
            Some(AuthorizerKind::Http { simple_responses: false })
        );
        let guard = |path: &str| t.match_http("GET", path).and_then(|(r, _)| r.authorizer.clone());
        assert_eq!(guard("/a").as_deref(), Some("Http.Main"));
        assert_eq!(guard("/b"), None);
        assert_eq!(guard("/c").as_deref(), Some("Http.Policy"));
        assert_eq!(guard("/d"), None);
        let ws = t.authorizer("WsAuth").expect("WsAuth");
        assert_eq!(
            (ws.kind, &ws.identity_sources),
            (
                AuthorizerKind::WebSocket,
                &vec![IdentitySource::Header("Auth".into()), IdentitySource::Query("token".into())]
            )
        );
        assert_eq!(t.ws_route("$connect").and_then(|r| r.authorizer.as_deref()), Some("WsAuth"));
    }

    #[test]
    fn authorizer_errors_name_the_offender() {
        let err = |from: &str, to: &str| Template::parse(&AUTH.replace(from, to)).unwrap_err();
        let e = err("RouteKey: $connect", "RouteKey: chat");
        assert!(
            matches!(e, TemplateError::Unsupported { ref resource, .. } if resource == "Connect"),
            "{e}"
        );
        let e = err("AuthorizerId: !Ref WsAuth", "AuthorizerId: !Ref Nope");
        assert!(matches!(e, TemplateError::Reference { ref target, .. } if target == "Nope"), "{e}");
        let e = err("AuthorizationType: CUSTOM", "AuthorizationType: AWS_IAM");
        assert!(e.to_string().contains("AWS_IAM"), "{e}");
        let e = err("AuthorizerType: REQUEST", "AuthorizerType: JWT");
        assert!(
            matches!(e, TemplateError::Unsupported { ref resource, .. } if resource == "WsAuth"),
            "{e}"
        );
        let e = err("route.request.querystring.token", "stageVariables.token");
        assert!(e.to_string().contains("stageVariables.token"), "{e}");
        let e = err("${AuthFunction.Arn}/invocations", "${Ghost.Arn}/invocations");
        assert!(matches!(e, TemplateError::Reference { ref target, .. } if target == "Ghost"), "{e}");
        let e = err("FunctionArn: !GetAtt AuthFunction.Arn", "FunctionArn: !GetAtt Ghost.Arn");
        assert!(
            matches!(e, TemplateError::Reference { ref resource, ref target, .. } if resource == "Http" && target == "Ghost"),
            "{e}"
        );
        let e = err("AuthorizerPayloadFormatVersion: 2.0", "AuthorizerPayloadFormatVersion: \"1.0\"");
        assert!(e.to_string().contains("1.0"), "{e}");
        let e = err("DefaultAuthorizer: Main", "DefaultAuthorizer: Nope");
        assert!(e.to_string().contains("DefaultAuthorizer"), "{e}");
        let e = err("Auth: {Authorizer: Policy}", "Auth: {Authorizer: Nope}");
        assert!(
            matches!(e, TemplateError::Reference { ref target, .. } if target == "Http.Nope"),
            "{e}"
        );
        let e = err(
            "FunctionArn: !GetAtt AuthFunction.Arn",
            "JwtConfiguration: {}\n            FunctionArn: !GetAtt AuthFunction.Arn",
        );
        assert!(e.to_string().contains("JWT"), "{e}");
    }

    #[test]
    fn rate_seconds_cases() {
        assert_eq!(rate_seconds("rate(1 minute)"), Some(60));
        assert_eq!(rate_seconds("rate(5 minutes)"), Some(300));
        assert_eq!(rate_seconds(" rate(2 hours) "), Some(7_200));
        assert_eq!(rate_seconds("rate(1 day)"), Some(86_400));
        assert_eq!(rate_seconds("rate(0 minutes)"), None);
        assert_eq!(rate_seconds("rate(10 seconds)"), None);
        assert_eq!(rate_seconds("rate(-1 minutes)"), None);
        assert_eq!(rate_seconds("rate(1 minute extra)"), None);
        assert_eq!(rate_seconds("rate(minute)"), None);
        assert_eq!(rate_seconds("cron(0/5 * * * ? *)"), None);
        assert_eq!(rate_seconds(&format!("rate({} days)", u64::MAX)), None);
    }
}
