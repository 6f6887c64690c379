//! The AWS adapter of [`Table`]: DynamoDB through `aws-sdk-dynamodb`.
//!
//! Typed conditions and updates become expressions whose every name and value is a
//! generated placeholder (`#n0`, `:v0`), so no attribute name is ever spliced into
//! an expression. Reads hide expired items, because DynamoDB deletes them late.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, Put, ReturnValue, ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem, Update as TxUpdate,
};
use aws_sdk_dynamodb::Client;
use serde_json::{Map, Number, Value};

use realtime_domain::ports::table::{
    decode_cursor, encode_cursor, now_epoch, Condition, Index, Item, Page, Query, SkCond, Table, TableError, TxOp, Update, GSI1PK, GSI1SK,
    PK, SK, TTL,
};

/// The name of the global secondary index on (`gsi1pk`, `gsi1sk`), as in template.yaml.
pub const GSI1: &str = "gsi1";

type AttrMap = HashMap<String, AttributeValue>;

#[derive(Clone)]
pub struct DynamoTable {
    client: Client,
    table: String,
}

impl DynamoTable {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

/// Creates the table as template.yaml declares it (for DynamoDB Local and tests).
/// A table that already exists is left as it is.
pub async fn create_table(client: &Client, name: &str) -> Result<(), TableError> {
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |n: &str, t: KeyType| KeySchemaElement::builder().attribute_name(n).key_type(t).build();
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(GSI1)
        .key_schema(key(GSI1PK, KeyType::Hash).map_err(build)?)
        .key_schema(key(GSI1SK, KeyType::Range).map_err(build)?)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .map_err(build)?;
    let created = client
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(
            [PK, SK, GSI1PK, GSI1SK]
                .map(attr)
                .into_iter()
                .collect::<Result<_, _>>()
                .map_err(build)?,
        ))
        .key_schema(key(PK, KeyType::Hash).map_err(build)?)
        .key_schema(key(SK, KeyType::Range).map_err(build)?)
        .global_secondary_indexes(gsi)
        // New log entries reach the relay through the stream (template.yaml says the same).
        .stream_specification(
            aws_sdk_dynamodb::types::StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(aws_sdk_dynamodb::types::StreamViewType::NewImage)
                .build()
                .map_err(build)?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    match created {
        Err(e) if e.code() == Some("ResourceInUseException") => return Ok(()),
        r => r.map_err(sdk_err)?,
    };
    client
        .wait_until_table_exists()
        .table_name(name)
        .wait(Duration::from_secs(120))
        .await
        .map_err(|e| TableError::Other(format!("table {name} did not become active: {}", DisplayErrorContext(e))))?;
    let ttl = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(TTL)
        .build()
        .map_err(build)?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(sdk_err)?;
    Ok(())
}

#[async_trait]
impl Table for DynamoTable {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, TableError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            // Read-your-writes, as the embedded adapter gives.
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(out.item.map(item_from).transpose()?.filter(|i| !i.is_expired(now_epoch())))
    }

    async fn put(&self, item: Item, cond: Option<Condition>) -> Result<(), TableError> {
        let mut x = Expr::default();
        let cond = cond.map(|c| x.cond(&c));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_to(item)))
            .set_condition_expression(cond)
            .set_expression_attribute_names(x.names())
            .set_expression_attribute_values(x.values())
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(())
    }

    async fn update(&self, pk: &str, sk: &str, updates: Vec<Update>, cond: Option<Condition>) -> Result<Item, TableError> {
        let mut x = Expr::default();
        let update = x.updates(&updates);
        let cond = cond.map(|c| x.cond(&c));
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .set_update_expression(update)
            .set_condition_expression(cond)
            .set_expression_attribute_names(x.names())
            .set_expression_attribute_values(x.values())
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(sdk_err)?;
        item_from(out.attributes.unwrap_or_else(|| key(pk, sk)))
    }

    async fn delete(&self, pk: &str, sk: &str, cond: Option<Condition>) -> Result<(), TableError> {
        let mut x = Expr::default();
        let cond = cond.map(|c| x.cond(&c));
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .set_condition_expression(cond)
            .set_expression_attribute_names(x.names())
            .set_expression_attribute_values(x.values())
            .send()
            .await
            .map_err(sdk_err)?;
        Ok(())
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), TableError> {
        let items = ops.into_iter().map(|op| self.tx_item(op)).collect::<Result<Vec<_>, _>>()?;
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(()),
            Err(e) => Err(match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(tc)) => {
                    canceled(tc.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None")), tc.message())
                }
                _ => sdk_err(e),
            }),
        }
    }

    async fn query(&self, q: Query) -> Result<Page, TableError> {
        let (index, pk_name, sk_name) = match q.index {
            Index::Primary => (None, PK, SK),
            Index::Gsi1 => (Some(GSI1.to_string()), GSI1PK, GSI1SK),
        };
        let mut x = Expr::default();
        let mut key_cond = format!("{} = {}", x.name(pk_name), x.s(&q.pk));
        if let Some(c) = x.sk_cond(sk_name, &q.sk) {
            key_cond = format!("{key_cond} AND {c}");
        }
        // DynamoDB deletes expired items late; hide them (after the limit, so pages may be short).
        let ttl = x.name(TTL);
        let filter = format!(
            "attribute_not_exists({ttl}) OR {ttl} > {}",
            x.value(AttributeValue::N(now_epoch().to_string()))
        );
        let limit = q
            .limit
            .map(i32::try_from)
            .transpose()
            .map_err(|_| TableError::Invalid("limit too large".into()))?;
        let start = q.cursor.as_deref().map(decode_cursor).transpose()?;
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index)
            // A GSI can't be read consistently; the table can, and then reads its writes.
            .consistent_read(q.index == Index::Primary)
            .key_condition_expression(key_cond)
            .filter_expression(filter)
            .set_expression_attribute_names(x.names())
            .set_expression_attribute_values(x.values())
            .scan_index_forward(q.forward)
            .set_limit(limit)
            .set_exclusive_start_key(start.map(|k| k.into_iter().map(|(n, v)| (n, AttributeValue::S(v))).collect()))
            .send()
            .await
            .map_err(sdk_err)?;
        let items = out.items.unwrap_or_default().into_iter().map(item_from).collect::<Result<_, _>>()?;
        let cursor = match out.last_evaluated_key {
            Some(k) => {
                let strings = k
                    .iter()
                    .map(|(n, v)| Ok((n.as_str(), v.as_s().map_err(|_| other("non-string key in cursor"))?.as_str())));
                Some(encode_cursor(&strings.collect::<Result<BTreeMap<_, _>, TableError>>()?))
            }
            None => None,
        };
        Ok(Page { items, cursor })
    }
}

impl DynamoTable {
    fn tx_item(&self, op: TxOp) -> Result<TransactWriteItem, TableError> {
        let mut x = Expr::default();
        let item = match op {
            TxOp::Put { item, cond } => {
                let cond = cond.map(|c| x.cond(&c));
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item_to(item)))
                    .set_condition_expression(cond);
                TransactWriteItem::builder().put(
                    put.set_expression_attribute_names(x.names())
                        .set_expression_attribute_values(x.values())
                        .build()
                        .map_err(build)?,
                )
            }
            TxOp::Update { pk, sk, updates, cond } => {
                // Unlike UpdateItem, a transaction's update needs an expression: the builder
                // rejects an empty one (Invalid), as the embedded adapter does.
                let update = x.updates(&updates);
                let cond = cond.map(|c| x.cond(&c));
                let up = TxUpdate::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(&pk, &sk)))
                    .set_update_expression(update);
                TransactWriteItem::builder().update(
                    up.set_condition_expression(cond)
                        .set_expression_attribute_names(x.names())
                        .set_expression_attribute_values(x.values())
                        .build()
                        .map_err(build)?,
                )
            }
            TxOp::Delete { pk, sk, cond } => {
                let cond = cond.map(|c| x.cond(&c));
                let del = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(&pk, &sk)))
                    .set_condition_expression(cond);
                TransactWriteItem::builder().delete(
                    del.set_expression_attribute_names(x.names())
                        .set_expression_attribute_values(x.values())
                        .build()
                        .map_err(build)?,
                )
            }
            TxOp::Check { pk, sk, cond } => {
                let cond = x.cond(&cond);
                let check = ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(&pk, &sk)))
                    .condition_expression(cond);
                TransactWriteItem::builder().condition_check(
                    check
                        .set_expression_attribute_names(x.names())
                        .set_expression_attribute_values(x.values())
                        .build()
                        .map_err(build)?,
                )
            }
        };
        Ok(item.build())
    }
}

// --- expressions ---

/// The placeholders of one request's expressions.
#[derive(Default)]
struct Expr {
    names: HashMap<String, String>,
    values: AttrMap,
}

impl Expr {
    /// The placeholder of an attribute name (one per distinct name).
    fn name(&mut self, name: &str) -> String {
        if let Some((p, _)) = self.names.iter().find(|(_, n)| *n == name) {
            return p.clone();
        }
        let p = format!("#n{}", self.names.len());
        self.names.insert(p.clone(), name.to_string());
        p
    }

    fn value(&mut self, v: AttributeValue) -> String {
        let p = format!(":v{}", self.values.len());
        self.values.insert(p.clone(), v);
        p
    }

    fn s(&mut self, v: &str) -> String {
        self.value(AttributeValue::S(v.to_string()))
    }

    fn sk_cond(&mut self, name: &str, c: &SkCond) -> Option<String> {
        let (op, v) = match c {
            SkCond::All => return None,
            SkCond::BeginsWith(p) => return Some(format!("begins_with({}, {})", self.name(name), self.s(p))),
            SkCond::Between(a, b) => return Some(format!("{} BETWEEN {} AND {}", self.name(name), self.s(a), self.s(b))),
            SkCond::Lt(v) => ("<", v),
            SkCond::Le(v) => ("<=", v),
            SkCond::Gt(v) => (">", v),
            SkCond::Ge(v) => (">=", v),
        };
        Some(format!("{} {op} {}", self.name(name), self.s(v)))
    }

    fn cmp(&mut self, name: &str, op: &str, x: f64) -> String {
        format!("{} {op} {}", self.name(name), self.value(AttributeValue::N(x.to_string())))
    }

    fn cond(&mut self, c: &Condition) -> String {
        match c {
            Condition::NotExists => format!("attribute_not_exists({})", self.name(PK)),
            Condition::Exists => format!("attribute_exists({})", self.name(PK)),
            Condition::AttrExists(n) => format!("attribute_exists({})", self.name(n)),
            Condition::AttrNotExists(n) => format!("attribute_not_exists({})", self.name(n)),
            Condition::Eq(n, v) => format!("{} = {}", self.name(n), self.value(to_av(v))),
            Condition::Ne(n, v) => format!("{} <> {}", self.name(n), self.value(to_av(v))),
            Condition::Ge(n, x) => self.cmp(n, ">=", *x),
            Condition::Gt(n, x) => self.cmp(n, ">", *x),
            Condition::Le(n, x) => self.cmp(n, "<=", *x),
            Condition::Lt(n, x) => self.cmp(n, "<", *x),
            Condition::And(cs) => self.join(cs, " AND ", true),
            Condition::Or(cs) => self.join(cs, " OR ", false),
        }
    }

    /// `(a AND b)`; an empty AND is true and an empty OR false, as in the embedded adapter.
    fn join(&mut self, cs: &[Condition], op: &str, empty: bool) -> String {
        if cs.is_empty() {
            let pk = self.name(PK);
            let tautology = format!("(attribute_exists({pk}) OR attribute_not_exists({pk}))");
            return if empty { tautology } else { format!("(NOT {tautology})") };
        }
        let parts: Vec<String> = cs.iter().map(|c| self.cond(c)).collect();
        format!("({})", parts.join(op))
    }

    /// `SET ... ADD ... REMOVE ...`, or None when there is nothing to change.
    fn updates(&mut self, updates: &[Update]) -> Option<String> {
        let (mut set, mut add, mut remove) = (Vec::new(), Vec::new(), Vec::new());
        for u in updates {
            match u {
                Update::Set(n, v) => set.push(format!("{} = {}", self.name(n), self.value(to_av(v)))),
                Update::SetIfMissing(n, v) => {
                    let n = self.name(n);
                    set.push(format!("{n} = if_not_exists({n}, {})", self.value(to_av(v))));
                }
                // ADD starts a missing attribute at 0.
                Update::Add(n, d) => add.push(format!("{} {}", self.name(n), self.value(AttributeValue::N(d.to_string())))),
                Update::Remove(n) => remove.push(self.name(n)),
            }
        }
        let clauses: Vec<String> = [("SET", set), ("ADD", add), ("REMOVE", remove)]
            .into_iter()
            .filter(|(_, parts)| !parts.is_empty())
            .map(|(kw, parts)| format!("{kw} {}", parts.join(", ")))
            .collect();
        (!clauses.is_empty()).then(|| clauses.join(" "))
    }

    // DynamoDB rejects empty placeholder maps, so an unused map is left out.
    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<AttrMap> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

// --- values ---

fn key(pk: &str, sk: &str) -> AttrMap {
    HashMap::from([
        (PK.to_string(), AttributeValue::S(pk.into())),
        (SK.to_string(), AttributeValue::S(sk.into())),
    ])
}

fn item_to(item: Item) -> AttrMap {
    let mut m: AttrMap = item.attrs.iter().map(|(k, v)| (k.clone(), to_av(v))).collect();
    m.extend(key(&item.pk, &item.sk)); // the key wins over stray `pk`/`sk` attributes
    m
}

fn item_from(mut m: AttrMap) -> Result<Item, TableError> {
    let mut key = |n: &str| match m.remove(n) {
        Some(AttributeValue::S(s)) => Ok(s),
        _ => Err(other(format!("an item without a string {n}"))),
    };
    let (pk, sk) = (key(PK)?, key(SK)?);
    let attrs = m
        .into_iter()
        .map(|(k, v)| Ok((k, from_av(v)?)))
        .collect::<Result<Map<_, _>, TableError>>()?;
    Ok(Item { pk, sk, attrs })
}

pub fn to_av(v: &Value) -> AttributeValue {
    match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(to_av).collect()),
        Value::Object(o) => AttributeValue::M(o.iter().map(|(k, v)| (k.clone(), to_av(v))).collect()),
    }
}

/// The JSON value of an attribute. Sets (which this adapter never writes) read as lists,
/// binary as base64 strings.
pub fn from_av(av: AttributeValue) -> Result<Value, TableError> {
    use base64::Engine;
    let b64 = |b: aws_smithy_types::Blob| Value::String(base64::engine::general_purpose::STANDARD.encode(b.into_inner()));
    Ok(match av {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(b),
        AttributeValue::N(n) => number(&n)?,
        AttributeValue::S(s) => Value::String(s),
        AttributeValue::L(l) => Value::Array(l.into_iter().map(from_av).collect::<Result<_, _>>()?),
        AttributeValue::M(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| Ok((k, from_av(v)?)))
                .collect::<Result<_, TableError>>()?,
        ),
        AttributeValue::Ss(ss) => Value::Array(ss.into_iter().map(Value::String).collect()),
        AttributeValue::Ns(ns) => Value::Array(ns.iter().map(|n| number(n)).collect::<Result<_, _>>()?),
        AttributeValue::B(b) => b64(b),
        AttributeValue::Bs(bs) => Value::Array(bs.into_iter().map(b64).collect()),
        other_type => return Err(other(format!("unsupported attribute value {other_type:?}"))),
    })
}

/// An N string as JSON: an integer when integral and in range, else a float.
fn number(n: &str) -> Result<Value, TableError> {
    if let Ok(i) = n.parse::<i64>() {
        return Ok(i.into());
    }
    if let Ok(u) = n.parse::<u64>() {
        return Ok(u.into());
    }
    let f: f64 = n.parse().map_err(|_| other(format!("bad number {n:?}")))?;
    if f.fract() == 0.0 && f.abs() < 9.2e18 {
        return Ok((f as i64).into());
    }
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| other(format!("bad number {n:?}")))
}

// --- errors ---

fn other(msg: impl Into<String>) -> TableError {
    TableError::Other(msg.into())
}

fn build(e: BuildError) -> TableError {
    TableError::Invalid(e.to_string())
}

fn sdk_err<E, R>(e: SdkError<E, R>) -> TableError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let msg = DisplayErrorContext(&e).to_string();
    match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => TableError::Transient(msg),
        SdkError::ServiceError(_) => match e.code().unwrap_or_default() {
            "ConditionalCheckFailedException" => TableError::ConditionFailed,
            "ValidationException" | "SerializationException" => TableError::Invalid(e.message().unwrap_or(&msg).to_string()),
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TransactionConflictException"
            | "TransactionInProgressException"
            | "InternalServerError"
            | "ServiceUnavailable" => TableError::Transient(msg),
            _ => TableError::Other(msg),
        },
        _ => TableError::Other(msg),
    }
}

/// A cancelled transaction: the failed conditions if there are any; else a retry may
/// help (conflict, throttling) unless the request itself was invalid.
fn canceled<'a>(codes: impl Iterator<Item = &'a str>, message: Option<&str>) -> TableError {
    let codes: Vec<&str> = codes.collect();
    let failed: Vec<usize> = codes
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == "ConditionalCheckFailed")
        .map(|(i, _)| i)
        .collect();
    let msg = format!("transaction cancelled: {}", message.unwrap_or_default());
    if !failed.is_empty() {
        TableError::TransactionCanceled { failed }
    } else if codes.contains(&"ValidationError") {
        TableError::Invalid(msg)
    } else if codes
        .iter()
        .any(|c| matches!(*c, "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"))
    {
        TableError::Transient(msg)
    } else {
        TableError::TransactionCanceled { failed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_round_trip() {
        let v = json!({"s": "x", "n": 3, "neg": -4, "f": 2.5, "b": true, "z": null, "l": [1, "a", {"m": []}]});
        assert_eq!(from_av(to_av(&v)).unwrap(), v);
        assert_eq!(number("2.0").unwrap(), json!(2));
        assert_eq!(number("18446744073709551615").unwrap(), json!(u64::MAX));
    }

    #[test]
    fn expressions_use_placeholders_only() {
        let mut x = Expr::default();
        let c = x.cond(&Condition::And(vec![
            Condition::Ge("seats) OR (x".into(), 1.0),
            Condition::Or(vec![Condition::NotExists, Condition::Eq("seats) OR (x".into(), json!("a"))]),
        ]));
        assert_eq!(c, "(#n0 >= :v0 AND (attribute_not_exists(#n1) OR #n0 = :v1))");
        let u = x.updates(&[
            Update::Set("a".into(), json!(1)),
            Update::SetIfMissing("b".into(), json!(2)),
            Update::Add("c".into(), -1),
            Update::Remove("d".into()),
        ]);
        assert_eq!(
            u.as_deref(),
            Some("SET #n2 = :v2, #n3 = if_not_exists(#n3, :v3) ADD #n4 :v4 REMOVE #n5")
        );
        assert_eq!(x.names().unwrap().get("#n0").map(String::as_str), Some("seats) OR (x"));
        assert!(Expr::default().updates(&[]).is_none() && Expr::default().names().is_none());
    }

    #[test]
    fn cancellation_reasons_map_to_errors() {
        let failed = |codes: &[&str]| canceled(codes.iter().copied(), None);
        assert!(matches!(failed(&["None", "ConditionalCheckFailed"]), TableError::TransactionCanceled { failed } if failed == [1]));
        assert!(matches!(failed(&["TransactionConflict", "None"]), TableError::Transient(_)));
        assert!(matches!(failed(&["ValidationError"]), TableError::Invalid(_)));
    }
}
