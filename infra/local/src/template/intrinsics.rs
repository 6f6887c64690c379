//! CloudFormation intrinsics: the short YAML tags rewritten to the long form, and the
//! few values the model needs rendered to `${Name}` / `${Name.Attribute}` text.

use super::*;

/// Rewrites the short-form intrinsic tags into the long form: `!Ref X` → `{Ref: X}`,
/// `!GetAtt X.Y` → `{"Fn::GetAtt": [X, Y]}`, `!Condition C` → `{Condition: C}`,
/// `!Sub`/`!Join`/... → `{"Fn::Sub": ...}`/`{"Fn::Join": ...}`/...
pub(super) fn long_form(value: Value) -> Value {
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
pub(super) fn intrinsic(value: &Value) -> Option<(&str, &Value)> {
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
pub(super) fn render(value: &Value) -> Option<String> {
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
pub(super) fn single_reference(text: &str) -> Option<String> {
    let name = text.strip_prefix("${")?.strip_suffix('}')?;
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric());
    valid.then(|| name.to_owned())
}

/// The function whose `${Function.Arn}` a Lambda integration URI invokes.
pub(super) fn function_of_uri(uri: &str) -> Option<String> {
    let rest = uri.split_once(":lambda:path/")?.1;
    let rest = rest.split_once("/functions/")?.1;
    function_of_arn(rest.strip_suffix("/invocations")?)
}

/// `Function` when `arn` is exactly `${Function.Arn}`.
pub(super) fn function_of_arn(arn: &str) -> Option<String> {
    let name = arn.strip_prefix("${")?.strip_suffix(".Arn}")?;
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric());
    valid.then(|| name.to_owned())
}

/// Converts plain YAML data (no intrinsic functions) to JSON.
pub(super) fn to_json(value: &Value) -> Result<serde_json::Value, &'static str> {
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
