//! A function's handler, whatever its trigger, as one value: its kind follows from the
//! handler's signature (a WebSocket route takes a `WsRequest`, an HTTP route answers an
//! `HttpResult`, a stream a `StreamResult`, a bus rule takes a [`BusEvent`], ...), so a
//! function registered as the wrong kind does not compile. The Lambda `main` and the
//! local stack both start from it ([`IntoHandler::into_handler`], [`IntoHandler::run`]).

use crate::http::{HttpRequest, HttpResponse, HttpResult};
use crate::lambda::{self, EventError};
use crate::stream::{StreamResponse, StreamResult};
use crate::ws::{WsRequest, WsResponse, WsResult};
use futures::future::BoxFuture;
use realtime_domain::events::Envelope;
use realtime_domain::Deps;
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;

/// A domain event as an EventBridge rule delivers it: the envelope is the `detail`.
pub type BusEvent = aws_lambda_events::eventbridge::EventBridgeEvent<Envelope>;

/// How a function is triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An API Gateway WebSocket route (`ApiGatewayWebsocketProxyRequest`).
    Ws,
    /// An HTTP API route (`ApiGatewayV2httpRequest`).
    Http,
    /// An EventBridge rule or schedule target, or a DynamoDB stream.
    Event,
    /// A Lambda authorizer, invoked by API Gateway before the routes it guards.
    Authorizer,
    /// A function URL with response streaming (`InvokeMode: RESPONSE_STREAM`).
    Stream,
}

type Boxed<I, O> = Arc<dyn Fn(Deps, I) -> BoxFuture<'static, O> + Send + Sync>;

/// A handler wrapped exactly as its Lambda `main` wraps it (errors already answered).
#[derive(Clone)]
pub enum Handler {
    Ws(Boxed<WsRequest, WsResponse>),
    Http(Boxed<HttpRequest, HttpResponse>),
    /// The raw event in; a non-retryable failure is logged and dropped already.
    Event(Boxed<Value, Result<(), EventError>>),
    /// The answer, or the error message the invocation failed with (API Gateway reads it).
    Authorizer(Boxed<Value, Result<Value, String>>),
    Stream(Boxed<HttpRequest, StreamResponse>),
}

impl Handler {
    pub fn kind(&self) -> Kind {
        match self {
            Handler::Ws(_) => Kind::Ws,
            Handler::Http(_) => Kind::Http,
            Handler::Event(_) => Kind::Event,
            Handler::Authorizer(_) => Kind::Authorizer,
            Handler::Stream(_) => Kind::Stream,
        }
    }
}

/// What a function adds to the dependencies every function gets, once per cold start:
/// only the fan-out has one (its workers' invoker), so no other bootstrap links it.
pub type Setup = fn(Deps) -> BoxFuture<'static, Deps>;

fn no_setup(deps: Deps) -> BoxFuture<'static, Deps> {
    Box::pin(std::future::ready(deps))
}

/// Implemented for every handler signature a function may have; `M` tells them apart.
pub trait IntoHandler<M>: Copy + Send + Sync + 'static {
    fn into_handler(self) -> Handler;
    /// Serves Lambda invocations with this handler, its dependencies completed by `setup`.
    fn run_with(self, setup: Setup) -> impl Future<Output = Result<(), lambda::Error>>;
    /// Serves Lambda invocations with this handler (the function's `main`).
    fn run(self) -> impl Future<Output = Result<(), lambda::Error>> {
        self.run_with(no_setup)
    }
}

/// Markers: the handler's input and output types.
pub struct WsMarker;
pub struct HttpMarker;
pub struct StreamMarker;
pub struct BusMarker;
pub struct RawEventMarker;
pub struct AuthorizerMarker<E>(std::marker::PhantomData<E>);

impl<F, Fut> IntoHandler<WsMarker> for F
where
    F: Fn(Deps, WsRequest) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = WsResult> + Send + 'static,
{
    fn into_handler(self) -> Handler {
        Handler::Ws(Arc::new(move |d, r| Box::pin(crate::ws::serve(self, d, r))))
    }
    fn run_with(self, setup: Setup) -> impl Future<Output = Result<(), lambda::Error>> {
        lambda::run_ws(self, setup)
    }
}

impl<F, Fut> IntoHandler<HttpMarker> for F
where
    F: Fn(Deps, HttpRequest) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = HttpResult> + Send + 'static,
{
    fn into_handler(self) -> Handler {
        Handler::Http(Arc::new(move |d, r| Box::pin(crate::http::serve(self, d, r))))
    }
    fn run_with(self, setup: Setup) -> impl Future<Output = Result<(), lambda::Error>> {
        lambda::run_http(self, setup)
    }
}

impl<F, Fut> IntoHandler<StreamMarker> for F
where
    F: Fn(Deps, HttpRequest) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = StreamResult> + Send + 'static,
{
    fn into_handler(self) -> Handler {
        Handler::Stream(Arc::new(move |d, r| Box::pin(crate::stream::serve(self, d, r))))
    }
    fn run_with(self, setup: Setup) -> impl Future<Output = Result<(), lambda::Error>> {
        lambda::run_stream(self, setup)
    }
}

impl<F, Fut> IntoHandler<BusMarker> for F
where
    F: Fn(Deps, BusEvent) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<(), EventError>> + Send + 'static,
{
    fn into_handler(self) -> Handler {
        Handler::Event(Arc::new(move |d, e| Box::pin(lambda::serve_bus_event(self, d, e))))
    }
    fn run_with(self, setup: Setup) -> impl Future<Output = Result<(), lambda::Error>> {
        lambda::run_event(move |d, e| lambda::with_bus_event(self, d, e), setup)
    }
}

impl<F, Fut> IntoHandler<RawEventMarker> for F
where
    F: Fn(Deps, Value) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<(), EventError>> + Send + 'static,
{
    fn into_handler(self) -> Handler {
        Handler::Event(Arc::new(move |d, e| Box::pin(lambda::serve_event(self, d, e))))
    }
    fn run_with(self, setup: Setup) -> impl Future<Output = Result<(), lambda::Error>> {
        lambda::run_event(self, setup)
    }
}

impl<F, Fut, E> IntoHandler<AuthorizerMarker<E>> for F
where
    F: Fn(Deps, Value) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, E>> + Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    fn into_handler(self) -> Handler {
        Handler::Authorizer(Arc::new(move |d, e| {
            Box::pin(async move { self(d, e).await.map_err(|e| e.to_string()) })
        }))
    }
    fn run_with(self, setup: Setup) -> impl Future<Output = Result<(), lambda::Error>> {
        lambda::run_json(self, setup)
    }
}
