//! DynamoDB stream records, as Lambda hands them to a function (a `DynamoDB` event of
//! `template.yaml`): items in DynamoDB's typed JSON (`{"S": "x"}`, `{"N": "1"}`, ...).
//! The relay reads the new log entries from them; the local stack builds the same
//! records from the embedded table's feed and from DynamoDB Local's stream.

use realtime_domain::ports::table::{PK, SK};
use realtime_domain::ports::Item;
use serde_json::{json, Map, Number, Value};

/// One attribute value in DynamoDB JSON → plain JSON.
pub fn from_attr(v: &Value) -> Option<Value> {
    let (tag, inner) = v.as_object()?.iter().next()?;
    Some(match tag.as_str() {
        "S" => Value::String(inner.as_str()?.to_string()),
        "N" => {
            let s = inner.as_str()?;
            match s.parse::<i64>() {
                Ok(i) => Value::Number(i.into()),
                Err(_) => Value::Number(Number::from_f64(s.parse::<f64>().ok()?)?),
            }
        }
        "BOOL" => Value::Bool(inner.as_bool()?),
        "NULL" => Value::Null,
        "M" => Value::Object(
            inner
                .as_object()?
                .iter()
                .map(|(k, v)| Some((k.clone(), from_attr(v)?)))
                .collect::<Option<Map<_, _>>>()?,
        ),
        "L" => Value::Array(inner.as_array()?.iter().map(from_attr).collect::<Option<Vec<_>>>()?),
        "SS" => inner.clone(),
        _ => return None,
    })
}

/// Plain JSON → one attribute value in DynamoDB JSON.
pub fn to_attr(v: &Value) -> Value {
    match v {
        Value::String(s) => json!({"S": s}),
        Value::Number(n) => json!({"N": n.to_string()}),
        Value::Bool(b) => json!({"BOOL": b}),
        Value::Null => json!({"NULL": true}),
        Value::Object(m) => json!({"M": m.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect::<Map<_, _>>()}),
        Value::Array(a) => json!({"L": a.iter().map(to_attr).collect::<Vec<_>>()}),
    }
}

/// A stream record's image (`dynamodb.NewImage`) as an item.
pub fn item_of_image(image: &Value) -> Option<Item> {
    let mut attrs = match from_attr(&json!({ "M": image }))? {
        Value::Object(m) => m,
        _ => return None,
    };
    let pk = attrs.remove(PK)?.as_str()?.to_string();
    let sk = attrs.remove(SK)?.as_str()?.to_string();
    Some(Item { pk, sk, attrs })
}

/// An item as a stream record's image.
pub fn image_of_item(item: &Item) -> Value {
    let mut m: Map<String, Value> = item.attrs.iter().map(|(k, v)| (k.clone(), to_attr(v))).collect();
    m.insert(PK.into(), json!({"S": item.pk}));
    m.insert(SK.into(), json!({"S": item.sk}));
    Value::Object(m)
}

/// A Lambda event of `INSERT` records for new items, as the event source mapping sends it.
pub fn insert_event(items: &[(String, Item)], stream_arn: &str) -> Value {
    let records: Vec<Value> = items
        .iter()
        .map(|(seq, item)| {
            json!({
                "eventID": ulid::Ulid::new().to_string(),
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "eventSourceARN": stream_arn,
                "dynamodb": {
                    "Keys": {PK: {"S": item.pk}, SK: {"S": item.sk}},
                    "NewImage": image_of_item(item),
                    "SequenceNumber": seq,
                    "StreamViewType": "NEW_IMAGE",
                },
            })
        })
        .collect();
    json!({ "Records": records })
}

/// The new items of a stream event's `INSERT` records (others are skipped).
pub fn inserted_items(event: &Value) -> Vec<Item> {
    event
        .get("Records")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| r.get("eventName").and_then(Value::as_str) == Some("INSERT"))
        .filter_map(|r| item_of_image(r.get("dynamodb")?.get("NewImage")?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip_through_stream_records() {
        let item = Item::new("LOG#chat:C1", "SEQ#1")
            .with("seq", 1)
            .with("relay", true)
            .with("ratio", 0.5)
            .with(
                "event",
                json!({"id": "e", "data": {"list": [1, "a", null], "nested": {"b": false}}}),
            );
        let event = insert_event(&[("1".into(), item.clone())], "arn:local");
        assert_eq!(event["Records"][0]["dynamodb"]["NewImage"]["seq"], json!({"N": "1"}));
        assert_eq!(inserted_items(&event), vec![item]);
        assert!(inserted_items(&json!({"Records": [{"eventName": "REMOVE"}]})).is_empty());
        assert!(inserted_items(&json!({})).is_empty());
    }
}
