//! The template model against the real `template.yaml` and small templates.

use super::*;
use serde_json::json;

const REAL: &str = include_str!("../../../../template.yaml");

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
            ("presence", "WsPresenceFunction"),
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
    // One schedule: the presence sweeper, every minute.
    let schedules: Vec<(&str, &str)> = t.schedules.iter().map(|s| (s.function.as_str(), s.expression.as_str())).collect();
    assert_eq!(schedules, [("PresenceSweepFunction", "rate(1 minute)")]);
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
