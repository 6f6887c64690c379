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

mod intrinsics;
mod routing;
mod sam;
#[cfg(test)]
mod tests;
mod websocket;

use intrinsics::*;
use routing::*;
pub use routing::{match_path, percent_decode, rate_seconds};

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

    /// The streaming function URL route that serves `path`, with its path parameters.
    pub fn match_stream(&self, path: &str) -> Option<(&StreamRoute, Vec<(String, String)>)> {
        self.stream_routes
            .iter()
            .filter_map(|r| match_path(&r.path, path).map(|params| (r, params)))
            .max_by_key(|(r, _)| specificity(&r.path))
    }
}

pub(super) fn resource_type(body: &Mapping) -> Option<&str> {
    body.get("Type").and_then(Value::as_str)
}

pub(super) fn find<'a>(resources: &[(&str, &'a Mapping)], id: &str, kind: &str) -> Option<&'a Mapping> {
    resources
        .iter()
        .find(|(rid, body)| *rid == id && resource_type(body) == Some(kind))
        .map(|(_, body)| *body)
}

pub(super) fn is_disabled(props: &Value) -> bool {
    props.get("Enabled").and_then(Value::as_bool) == Some(false) || props.get("State").and_then(Value::as_str) == Some("DISABLED")
}

pub(super) fn property(resource: &str, property: &str, expected: &'static str) -> TemplateError {
    TemplateError::Property {
        resource: resource.to_owned(),
        property: property.to_owned(),
        expected,
    }
}

pub(super) fn reference(resource: &str, property: &str, target: &str, expected: &'static str) -> TemplateError {
    TemplateError::Reference {
        resource: resource.to_owned(),
        property: property.to_owned(),
        target: target.to_owned(),
        expected,
    }
}
