//! The table's change feed, as Lambda's event source mapping serves a DynamoDB stream:
//! new items that match a `DynamoDB` event's filters of `template.yaml` go, in batches,
//! to its function (the log relay). On SQLite the feed is the embedded table's own
//! (written in the commit of the item, removed once the function succeeded, so a crash
//! loses nothing); on DynamoDB (Local) it is the table's stream.

use crate::stack::Stack;
use crate::template::TableStream;
use quamina::Quamina;
use realtime_domain::ports::Item;
use realtime_edge::streams;
use realtime_embedded::bus::SHUTTING_DOWN;
use realtime_embedded::sqlite::SqliteTable;
use serde_json::Value;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Batches in flight at once (each holds up to the mapping's `BatchSize` records).
const IN_FLIGHT: usize = 32;
/// Invocations of one batch before it is given up (ESM's `MaximumRetryAttempts`).
const ATTEMPTS: u32 = 50;
/// The wait between them.
const BATCH_RETRY: realtime_domain::retry::Backoff = realtime_domain::retry::Backoff {
    attempts: ATTEMPTS,
    base: Duration::from_millis(20),
    max: Duration::from_secs(1),
};

/// Where the feed comes from.
pub enum Feed {
    Sqlite(SqliteTable),
    /// The table on DynamoDB (Local) at `endpoint`.
    Dynamo {
        client: aws_sdk_dynamodb::Client,
        endpoint: String,
        table: String,
    },
}

struct Filter(Quamina<usize>, usize);

impl Filter {
    fn new(stream: &TableStream) -> Self {
        let mut q = Quamina::new();
        for (i, p) in stream.filters.iter().enumerate() {
            if let Err(e) = q.add_pattern(i, &p.to_string()) {
                tracing::error!(stream = %stream.name, error = %e, "filter pattern refused");
            }
        }
        Filter(q, stream.filters.len())
    }
    /// Whether a record goes to the function (no filters: every record).
    fn passes(&self, record: &Value) -> bool {
        self.1 == 0 || self.0.matches_for_event(record.to_string().as_bytes()).is_ok_and(|m| !m.is_empty())
    }
}

/// Starts serving every `DynamoDB` event of the template from `feed` (a stream is read
/// from the moment this returns).
pub async fn start(stack: &Arc<Stack>, feed: Feed) -> anyhow::Result<()> {
    let Some(stream) = stack.template.table_streams.first().cloned() else {
        return Ok(());
    };
    if stack.template.table_streams.len() > 1 {
        tracing::warn!("the local stack serves the table's first stream mapping only");
    }
    let weak = Arc::downgrade(stack);
    match feed {
        Feed::Sqlite(table) => {
            tokio::spawn(run_sqlite(weak, table, stream));
        }
        Feed::Dynamo { client, endpoint, table } => {
            let mut reader = DynamoReader::new(&client, endpoint, &table).await?;
            reader.list_shards().await?;
            tokio::spawn(async move {
                if let Err(e) = reader.run(weak, stream).await {
                    tracing::error!(error = %e, "the table's stream is not served; logged events will not be published");
                }
            });
        }
    }
    Ok(())
}

/// Invokes the function with a batch until it succeeds (or the stack stops).
async fn invoke(weak: &Weak<Stack>, function: &str, event: &Value) -> bool {
    for attempt in 0..ATTEMPTS {
        let Some(stack) = weak.upgrade() else { return false };
        match stack.invoke_event(function, event.clone()).await {
            Ok(()) => return true,
            Err(e) if e == SHUTTING_DOWN => return false,
            Err(e) => {
                drop(stack);
                tracing::debug!(function, attempt, error = %e, "stream batch failed; retrying");
                BATCH_RETRY.sleep(attempt).await;
            }
        }
    }
    tracing::error!(function, "stream batch given up after {ATTEMPTS} attempts");
    true
}

async fn run_sqlite(weak: Weak<Stack>, table: SqliteTable, stream: TableStream) {
    let filter = Arc::new(Filter::new(&stream));
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut after = 0;
    loop {
        if weak.strong_count() == 0 {
            return;
        }
        let rows = match table.feed(after, stream.batch_size as u32).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "reading the feed failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(last) = rows.last().map(|r| r.0) else {
            // A write wakes us; the timeout notices a stopped stack.
            let _ = tokio::time::timeout(Duration::from_millis(250), table.changed()).await;
            continue;
        };
        after = last;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (weak, table, filter, function) = (weak.clone(), table.clone(), filter.clone(), stream.function.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
            let items: Vec<(String, Item)> = rows.into_iter().map(|(id, item)| (format!("{id:021}"), item)).collect();
            let event = batch(&items, &filter, "arn:local:dynamodb:table/realtime/stream/feed");
            if event.is_none() || invoke(&weak, &function, event.as_ref().unwrap_or(&Value::Null)).await {
                if let Err(e) = table.feed_ack(ids).await {
                    tracing::warn!(error = %e, "feed records not removed; they are relayed again");
                }
            }
        });
    }
}

/// The Lambda event of the records that pass the filters, if any.
fn batch(items: &[(String, Item)], filter: &Filter, arn: &str) -> Option<Value> {
    let event = streams::insert_event(items, arn);
    let records: Vec<Value> = event["Records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| filter.passes(r))
        .cloned()
        .collect();
    (!records.is_empty()).then(|| serde_json::json!({ "Records": records }))
}

/// DynamoDB Local's stream of the table, read from the records written after the stack
/// started (what survives a restart is the log itself; in AWS the mapping's checkpoint
/// keeps the rest). Spoken as plain JSON (the Streams API's wire format), whose records
/// are already what Lambda's event carries.
struct DynamoReader {
    http: hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, http_body_util::Full<bytes::Bytes>>,
    endpoint: String,
    arn: String,
    iterators: std::collections::HashMap<String, Option<String>>,
    /// The last record read from each shard: an iterator lost to an error (a slow read, an
    /// expired iterator) is opened again after it, so nothing is relayed twice or skipped.
    checkpoints: std::collections::HashMap<String, String>,
    from_now: std::collections::HashSet<String>,
    started: bool,
}

impl DynamoReader {
    async fn new(client: &aws_sdk_dynamodb::Client, endpoint: String, table: &str) -> anyhow::Result<Self> {
        let arn = client
            .describe_table()
            .table_name(table)
            .send()
            .await?
            .table()
            .and_then(|t| t.latest_stream_arn())
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("table {table} has no stream"))?;
        let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        Ok(Self {
            http,
            endpoint,
            arn,
            iterators: Default::default(),
            checkpoints: Default::default(),
            from_now: Default::default(),
            started: false,
        })
    }

    /// One DynamoDB Streams call. DynamoDB Local checks no signature; the credential
    /// scope picks the database (the stack's `local` key in us-east-1).
    async fn call(&self, action: &str, body: Value) -> anyhow::Result<Value> {
        use http_body_util::BodyExt;
        let req = http::Request::post(&self.endpoint)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("DynamoDBStreams_20120810.{action}"))
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(http_body_util::Full::new(bytes::Bytes::from(body.to_string())))?;
        let resp = tokio::time::timeout(Duration::from_secs(10), self.http.request(req)).await??;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        let v: Value = serde_json::from_slice(&bytes)?;
        anyhow::ensure!(status.is_success(), "{action}: {status} {v}");
        Ok(v)
    }

    /// Opens an iterator on every shard not read yet: shards that exist at start from now
    /// on, later ones from their beginning.
    async fn list_shards(&mut self) -> anyhow::Result<()> {
        let desc = self.call("DescribeStream", serde_json::json!({"StreamArn": self.arn})).await?;
        let shards = desc["StreamDescription"]["Shards"].as_array().cloned().unwrap_or_default();
        for shard in shards {
            let Some(id) = shard["ShardId"].as_str() else { continue };
            let closed = shard["SequenceNumberRange"]["EndingSequenceNumber"].is_string();
            let checkpoint = self.checkpoints.get(id);
            if self.iterators.contains_key(id) || (closed && self.started && checkpoint.is_none()) {
                continue;
            }
            let request = match checkpoint {
                Some(after) => serde_json::json!({"StreamArn": self.arn, "ShardId": id,
                    "ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}),
                None => {
                    // Shards of before the stack started are read from now on, even again.
                    if !self.started {
                        self.from_now.insert(id.to_string());
                    }
                    let kind = if self.from_now.contains(id) { "LATEST" } else { "TRIM_HORIZON" };
                    serde_json::json!({"StreamArn": self.arn, "ShardId": id, "ShardIteratorType": kind})
                }
            };
            let it = self.call("GetShardIterator", request).await?;
            self.iterators
                .insert(id.to_string(), it["ShardIterator"].as_str().map(str::to_string));
        }
        self.started = true;
        Ok(())
    }

    async fn run(mut self, weak: Weak<Stack>, stream: TableStream) -> anyhow::Result<()> {
        let filter = Filter::new(&stream);
        let mut last_listing = std::time::Instant::now();
        loop {
            if weak.strong_count() == 0 {
                return Ok(());
            }
            if last_listing.elapsed() > Duration::from_secs(2) {
                last_listing = std::time::Instant::now();
                if let Err(e) = self.list_shards().await {
                    tracing::warn!(error = %e, "listing the stream's shards failed");
                }
            }
            let mut got = 0;
            let shards: Vec<(String, Option<String>)> = self.iterators.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            for (shard, it) in shards {
                let Some(current) = it else { continue };
                let out = match self
                    .call("GetRecords", serde_json::json!({"ShardIterator": current, "Limit": 1000}))
                    .await
                {
                    Ok(out) => out,
                    Err(e) => {
                        // Opened again after its checkpoint by the next listing.
                        tracing::debug!(error = %e, "stream read failed");
                        self.iterators.remove(&shard);
                        continue;
                    }
                };
                let next = out["NextShardIterator"].as_str().map(str::to_string);
                if let Some(last) = out["Records"].as_array().and_then(|r| r.last()) {
                    if let Some(n) = last["dynamodb"]["SequenceNumber"].as_str() {
                        self.checkpoints.insert(shard.clone(), n.to_string());
                    }
                }
                if next.is_none() {
                    // A closed shard read to its end.
                    self.checkpoints.remove(&shard);
                }
                self.iterators.insert(shard, next);
                let records: Vec<Value> = out["Records"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| {
                        let mut r = r.clone();
                        r["eventSourceARN"] = Value::String(self.arn.clone());
                        r
                    })
                    .filter(|r| filter.passes(r))
                    .collect();
                got += records.len();
                for chunk in records.chunks(stream.batch_size) {
                    invoke(&weak, &stream.function, &serde_json::json!({ "Records": chunk })).await;
                }
            }
            self.iterators.retain(|_, it| it.is_some());
            if got == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
