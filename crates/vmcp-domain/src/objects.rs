//! Request fields whose value must be a JSON object. serde's derived structs also accept an
//! array (their fields in order), so `"naming": []` would quietly mean the defaults; the API's
//! schema says object, and so does the server.

use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, Error};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

fn from_object<T: DeserializeOwned, E: Error>(value: Value) -> Result<T, E> {
    if !value.is_object() {
        return Err(E::custom(format!(
            "invalid type: {}, expected an object",
            kind(&value)
        )));
    }
    T::deserialize(value).map_err(E::custom)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An optional field that, when present and not null, must be an object.
pub fn optional<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> Result<Option<T>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v => from_object(v).map(Some),
    }
}

/// An optional map whose values must be objects.
pub fn optional_map_of<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> Result<Option<BTreeMap<String, T>>, D::Error> {
    match Option::<BTreeMap<String, Value>>::deserialize(d)? {
        None => Ok(None),
        Some(map) => map
            .into_iter()
            .map(|(k, v)| {
                from_object(v)
                    .map(|t| (k.clone(), t))
                    .map_err(|e: D::Error| D::Error::custom(format!("{k}: {e}")))
            })
            .collect::<Result<_, _>>()
            .map(Some),
    }
}
