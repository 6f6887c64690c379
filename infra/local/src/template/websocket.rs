//! The WebSocket API: its routes, integrations and authorizer.

use super::*;

impl Template {
    /// The WebSocket API that `Properties.ApiId` of an `AWS::ApiGatewayV2` resource names.
    pub(super) fn ws_api_of(id: &str, props: &Mapping, resources: &[(&str, &Mapping)]) -> Result<String, TemplateError> {
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
    pub(super) fn read_ws_authorizer(&self, id: &str, body: &Mapping, resources: &[(&str, &Mapping)]) -> Result<Authorizer, TemplateError> {
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
    pub(super) fn read_ws_route(&self, id: &str, body: &Mapping, resources: &[(&str, &Mapping)]) -> Result<WsRoute, TemplateError> {
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
