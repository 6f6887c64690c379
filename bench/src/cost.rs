//! What a delivered message costs on AWS, from the calls the counting ports saw and the
//! public list prices below. Lambda durations on AWS are dominated by the round trips
//! to DynamoDB, EventBridge and API Gateway, which the embedded adapters do not have:
//! they are modelled from the counted calls with the latencies in [`Model`].

use crate::counting::Counts;
use serde::Serialize;

/// AWS list prices, us-east-1, on-demand, as published on the AWS pricing pages
/// (DynamoDB after its November 2024 on-demand price cut); checked in 2025.
#[derive(Debug, Clone, Serialize)]
pub struct Prices {
    pub as_of: &'static str,
    /// DynamoDB on-demand, per million write / read request units. Transactional
    /// writes and reads cost two units per item-KB (counted so in [`Counts`]).
    pub dynamodb_wru_per_million: f64,
    pub dynamodb_rru_per_million: f64,
    /// EventBridge custom events (PutEvents entries, per 64 KB chunk).
    pub eventbridge_per_million: f64,
    /// Lambda requests, and GB-seconds on arm64 (the template's architecture).
    pub lambda_requests_per_million: f64,
    pub lambda_gb_second: f64,
    /// API Gateway HTTP API requests (first 300 M a month, 512 KB increments).
    pub http_api_per_million: f64,
    /// API Gateway WebSocket messages, sent or received (first 1 B a month, 32 KB
    /// increments) and connection minutes.
    pub websocket_messages_per_million: f64,
    pub websocket_connection_minutes_per_million: f64,
    /// AWS AppSync Events: per million operations (one per publish, one per delivery) and
    /// connection minutes.
    pub appsync_events_operations_per_million: f64,
    pub appsync_events_connection_minutes_per_million: f64,
}

pub const PRICES: Prices = Prices {
    as_of: "AWS list prices for us-east-1 as published in 2025 (DynamoDB on-demand after the Nov 2024 cut)",
    dynamodb_wru_per_million: 0.625,
    dynamodb_rru_per_million: 0.125,
    eventbridge_per_million: 1.00,
    lambda_requests_per_million: 0.20,
    lambda_gb_second: 0.000_013_333_4,
    http_api_per_million: 1.00,
    websocket_messages_per_million: 1.00,
    websocket_connection_minutes_per_million: 0.25,
    appsync_events_operations_per_million: 1.00,
    appsync_events_connection_minutes_per_million: 0.08,
};

/// How long AWS calls take from a Lambda function (typical same-region figures), and
/// the function's memory (the template's 256 MB).
#[derive(Debug, Clone, Serialize)]
pub struct Model {
    pub dynamodb_ms: f64,
    pub put_events_ms: f64,
    pub post_to_connection_ms: f64,
    /// Posts in flight at once in a fan-out (`FANOUT_CONCURRENCY`).
    pub fanout_concurrency: f64,
    pub memory_gb: f64,
}

pub const MODEL: Model = Model {
    dynamodb_ms: 5.0,
    put_events_ms: 10.0,
    post_to_connection_ms: 10.0,
    fanout_concurrency: 64.0,
    memory_gb: 0.25,
};

/// One published message's billable usage.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    pub subscribers: usize,
    pub dynamodb_requests: u64,
    pub rru: f64,
    pub wru: f64,
    pub put_events_entries: u64,
    pub lambda_invocations: f64,
    pub lambda_gb_seconds: f64,
    pub http_requests: f64,
    pub websocket_messages: f64,
    /// AppSync Events operations (publishes and deliveries).
    pub appsync_operations: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Dollars {
    pub dynamodb: f64,
    pub eventbridge: f64,
    pub lambda: f64,
    pub api_gateway: f64,
    pub total: f64,
}

impl Usage {
    pub fn dollars(&self, p: &Prices) -> Dollars {
        let m = 1e-6;
        let dynamodb = (self.wru * p.dynamodb_wru_per_million + self.rru * p.dynamodb_rru_per_million) * m;
        let eventbridge = self.put_events_entries as f64 * p.eventbridge_per_million * m;
        let lambda = self.lambda_invocations * p.lambda_requests_per_million * m + self.lambda_gb_seconds * p.lambda_gb_second;
        // AppSync is counted with the API Gateway: both are what clients connect to.
        let api_gateway = (self.http_requests * p.http_api_per_million
            + self.websocket_messages * p.websocket_messages_per_million
            + self.appsync_operations * p.appsync_events_operations_per_million)
            * m;
        Dollars {
            dynamodb,
            eventbridge,
            lambda,
            api_gateway,
            total: dynamodb + eventbridge + lambda + api_gateway,
        }
    }

    /// Dollars per million messages delivered (one message to N subscribers is N deliveries).
    pub fn per_million_delivered(&self, p: &Prices) -> Dollars {
        let d = self.dollars(p);
        let f = 1e6 / self.subscribers.max(1) as f64;
        Dollars {
            dynamodb: d.dynamodb * f,
            eventbridge: d.eventbridge * f,
            lambda: d.lambda * f,
            api_gateway: d.api_gateway * f,
            total: d.total * f,
        }
    }
}

/// Billed Lambda milliseconds of one invocation: its own compute plus its AWS round
/// trips (sequential, except the posts, `fanout_concurrency` at a time), rounded up.
pub fn lambda_ms(compute_ms: f64, c: &Counts, model: &Model) -> f64 {
    let posts = (c.post_to_connection as f64 / model.fanout_concurrency).ceil() * model.post_to_connection_ms;
    (compute_ms + c.dynamodb_requests() as f64 * model.dynamodb_ms + c.put_events as f64 * model.put_events_ms + posts).ceil()
}

/// This design: the HTTP route (authorizer answers cached per token, so no authorizer
/// invocation per message) and one fan-out invocation.
pub fn this_design(
    subscribers: usize,
    route: &Counts,
    route_compute_ms: f64,
    fanout: &Counts,
    fanout_compute_ms: f64,
    model: &Model,
) -> Usage {
    let ms =
        lambda_ms(route_compute_ms, route, model) + lambda_ms(fanout_compute_ms, fanout, model) + lambda_ms(1.0, &Counts::default(), model);
    Usage {
        subscribers,
        dynamodb_requests: route.dynamodb_requests() + fanout.dynamodb_requests(),
        rru: route.rru + fanout.rru,
        wru: route.wru + fanout.wru,
        put_events_entries: route.put_events_entries + fanout.put_events_entries,
        // The route, the log relay (a stream batch; one per message at low rates) and the fan-out.
        lambda_invocations: 3.0,
        lambda_gb_seconds: ms / 1000.0 * model.memory_gb,
        http_requests: 1.0,
        websocket_messages: (route.post_to_connection + fanout.post_to_connection) as f64,
        appsync_operations: 0.0,
    }
}

/// The same application on AWS AppSync Events, as a user would build it: the HTTP route and
/// its Lambda keep their reads and write the message once (a plain PutItem, no log, no
/// transaction), then publish to AppSync over HTTPS (one operation), which delivers to
/// each subscriber (one operation each). `route` is what our route counted; its reads are
/// kept but the channel head's (one GetItem, 1 RRU: it has no log), its writes become one
/// plain write of the message.
pub fn appsync_app(subscribers: usize, route: &Counts, route_compute_ms: f64, model: &Model) -> Usage {
    let reads = route.get_item.saturating_sub(1) + route.query;
    let ms = (route_compute_ms + (reads + 1) as f64 * model.dynamodb_ms + model.put_events_ms).ceil();
    Usage {
        subscribers,
        dynamodb_requests: reads + 1,
        rru: (route.rru - 1.0).max(0.5),
        wru: 1.0,
        put_events_entries: 0,
        lambda_invocations: 1.0,
        lambda_gb_seconds: ms / 1000.0 * model.memory_gb,
        http_requests: 1.0,
        websocket_messages: 0.0,
        appsync_operations: 1.0 + subscribers as f64,
    }
}

/// The usual API Gateway WebSocket chat sample: the message arrives on a WebSocket
/// route, one function Scans the whole connections table (every connection of every
/// room, `table_connections` items of `item_bytes`, eventually consistent, 1 MB pages)
/// and posts to each of the `subscribers` it targets. No log, no sequence, no outbox.
pub fn scan_sample(subscribers: usize, table_connections: usize, item_bytes: usize, model: &Model) -> Usage {
    let bytes = table_connections * item_bytes;
    let pages = bytes.div_ceil(1024 * 1024).max(1) as u64;
    let rru = (bytes.div_ceil(4096).max(1)) as f64 * 0.5;
    let posts = (subscribers as f64 / model.fanout_concurrency).ceil() * model.post_to_connection_ms;
    let ms = (2.0 + pages as f64 * model.dynamodb_ms * 2.0 + posts).ceil();
    Usage {
        subscribers,
        dynamodb_requests: pages,
        rru,
        wru: 0.0,
        put_events_entries: 0,
        lambda_invocations: 1.0,
        lambda_gb_seconds: ms / 1000.0 * model.memory_gb,
        http_requests: 0.0,
        // The inbound `sendmessage` frame and one post per subscriber.
        websocket_messages: 1.0 + subscribers as f64,
        appsync_operations: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_costs_at_least_its_websocket_message() {
        let u = scan_sample(1000, 1000, 50, &MODEL);
        let d = u.per_million_delivered(&PRICES);
        assert!(d.api_gateway >= 1.0 && d.total < 2.0, "{d:?}");
        assert_eq!(u.dynamodb_requests, 1);
    }
}
