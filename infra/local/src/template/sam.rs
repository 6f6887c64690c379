//! SAM resources: the HTTP API (its authorizers and CORS), the functions with their
//! events (HTTP routes, EventBridge rules, schedules, DynamoDB streams) and URLs.

use super::*;

impl Template {
    /// The authorizers of a SAM `HttpApi` (`Auth.Authorizers`); returns its default authorizer.
    pub(super) fn read_http_api(&mut self, id: &str, body: &Mapping) -> Result<Option<String>, TemplateError> {
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

    pub(super) fn read_function(
        &mut self,
        id: &str,
        body: &Mapping,
        default_authorizers: &HashMap<String, String>,
    ) -> Result<(), TemplateError> {
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
    pub(super) fn read_function_url(&mut self, id: &str, body: &Mapping, url: &Value) -> Result<(), TemplateError> {
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
}
