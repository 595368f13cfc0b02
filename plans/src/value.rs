//! Attribute values as the engine sees them before apply: known JSON, references to another
//! resource's attribute, or unknown ("(known after apply)").
//!
//! State only ever holds known values (`serde_json::Value`); this type exists for desired
//! configuration and planned values.

use std::collections::BTreeMap;

use matih_addrs::ResourceAddr;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value as Json;

/// A configuration or planned value.
///
/// In JSON documents (saved plans, `plan -o json`) known values are plain JSON, a reference is
/// `{"$ref": "<address>", "attr": "<name>"}` and an unknown value is `{"$unknown": true}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Known(Json),
    /// Another resource's attribute, resolved when that resource is known.
    Ref(Ref),
    /// Not known until apply.
    Unknown,
    /// A list containing references or unknowns (a list of known values is `Known`).
    List(Vec<Value>),
    /// A map containing references or unknowns (a map of known values is `Known`).
    Map(BTreeMap<String, Value>),
}

/// A reference to `attr` of the resource at `addr`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Ref {
    #[serde(rename = "$ref")]
    pub addr: ResourceAddr,
    pub attr: String,
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Known(Json::String(s.into()))
    }

    pub fn reference(addr: &ResourceAddr, attr: &str) -> Value {
        Value::Ref(Ref { addr: addr.clone(), attr: attr.to_string() })
    }

    /// A list, collapsed to `Known` when every item is known.
    pub fn list(items: Vec<Value>) -> Value {
        if items.iter().all(|v| matches!(v, Value::Known(_))) {
            Value::Known(Json::Array(items.into_iter().map(|v| v.into_known().unwrap()).collect()))
        } else {
            Value::List(items)
        }
    }

    /// A map, collapsed to `Known` when every value is known.
    pub fn map(items: BTreeMap<String, Value>) -> Value {
        if items.values().all(|v| matches!(v, Value::Known(_))) {
            Value::Known(Json::Object(items.into_iter().map(|(k, v)| (k, v.into_known().unwrap())).collect()))
        } else {
            Value::Map(items)
        }
    }

    pub fn as_known(&self) -> Option<&Json> {
        match self {
            Value::Known(j) => Some(j),
            _ => None,
        }
    }

    pub fn into_known(self) -> Option<Json> {
        match self {
            Value::Known(j) => Some(j),
            _ => None,
        }
    }

    /// Every reference inside this value.
    pub fn refs(&self, out: &mut Vec<Ref>) {
        match self {
            Value::Ref(r) => out.push(r.clone()),
            Value::List(v) => v.iter().for_each(|x| x.refs(out)),
            Value::Map(m) => m.values().for_each(|x| x.refs(out)),
            Value::Known(_) | Value::Unknown => {}
        }
    }

    /// Replaces references through `lookup`, which answers `None` for "not known yet".
    pub fn resolve(&self, lookup: &mut dyn FnMut(&Ref) -> Option<Json>) -> Value {
        match self {
            Value::Known(_) | Value::Unknown => self.clone(),
            Value::Ref(r) => lookup(r).map(Value::Known).unwrap_or(Value::Unknown),
            Value::List(v) => Value::list(v.iter().map(|x| x.resolve(lookup)).collect()),
            Value::Map(m) => Value::map(m.iter().map(|(k, x)| (k.clone(), x.resolve(lookup))).collect()),
        }
    }

    /// As JSON for people: what is not known yet (or a reference not resolved) becomes the
    /// string `(known after apply)`.
    pub fn display_json(&self) -> Json {
        match self {
            Value::Known(j) => j.clone(),
            Value::Unknown | Value::Ref(_) => Json::String("(known after apply)".into()),
            Value::List(v) => Json::Array(v.iter().map(Value::display_json).collect()),
            Value::Map(m) => Json::Object(m.iter().map(|(k, x)| (k.clone(), x.display_json())).collect()),
        }
    }

    pub fn is_known(&self) -> bool {
        matches!(self, Value::Known(_))
    }
}

impl From<Json> for Value {
    fn from(j: Json) -> Self {
        Value::Known(j)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Known(j) => j.serialize(s),
            Value::Ref(r) => r.serialize(s),
            Value::Unknown => serde_json::json!({"$unknown": true}).serialize(s),
            Value::List(v) => v.serialize(s),
            Value::Map(m) => m.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let j = Json::deserialize(d)?;
        from_json(j).map_err(serde::de::Error::custom)
    }
}

fn from_json(j: Json) -> Result<Value, String> {
    Ok(match j {
        Json::Object(m) if m.contains_key("$unknown") => Value::Unknown,
        Json::Object(m) if m.contains_key("$ref") => {
            let r: Ref = serde_json::from_value(Json::Object(m)).map_err(|e| e.to_string())?;
            Value::Ref(r)
        }
        Json::Array(v) => Value::list(v.into_iter().map(from_json).collect::<Result<_, _>>()?),
        Json::Object(m) => {
            Value::map(m.into_iter().map(|(k, v)| Ok((k, from_json(v)?))).collect::<Result<_, String>>()?)
        }
        other => Value::Known(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn collapses_known_containers() {
        let v = Value::list(vec![Value::str("a"), Value::Known(json!(1))]);
        assert_eq!(v, Value::Known(json!(["a", 1])));
        let r = Value::list(vec![Value::str("a"), Value::reference(&ResourceAddr::must("a.b.c"), "id")]);
        assert!(matches!(r, Value::List(_)));
    }

    #[test]
    fn resolves_refs_and_keeps_unknowns() {
        let a = ResourceAddr::must("a.b.c");
        let v = Value::list(vec![Value::reference(&a, "id"), Value::reference(&a, "arn")]);
        let got = v.resolve(&mut |r| (r.attr == "id").then(|| json!("x")));
        assert_eq!(got, Value::List(vec![Value::str("x"), Value::Unknown]));
        let all = v.resolve(&mut |_| Some(json!("y")));
        assert_eq!(all, Value::Known(json!(["y", "y"])));
    }

    #[test]
    fn json_round_trip_keeps_markers() {
        let a = ResourceAddr::must(r#"eks.subnet.private["us-east-1a"]"#);
        let mut m = BTreeMap::new();
        m.insert("subnet".to_string(), Value::reference(&a, "id"));
        m.insert("arn".to_string(), Value::Unknown);
        m.insert("name".to_string(), Value::str("n"));
        let v = Value::map(m);
        let j = serde_json::to_string(&v).unwrap();
        assert_eq!(
            j,
            r#"{"arn":{"$unknown":true},"name":"n","subnet":{"$ref":"eks.subnet.private[\"us-east-1a\"]","attr":"id"}}"#
        );
        let back: Value = serde_json::from_str(&j).unwrap();
        assert_eq!(back, v);
    }
}
