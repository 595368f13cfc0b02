//! Typed resource addresses: `eks.subnet.private["us-east-1a"]`, `dns.record.tenant["acme"]`.
//!
//! An address is `<group>.<kind>.<name>` with an optional instance key in brackets. The pair
//! `<group>.<kind>` is the resource type, which the engine uses to route a resource to the provider
//! that owns it. This crate only names things: it knows nothing about state, plans or clouds, so
//! both the state crate and the engine can depend on it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The instance key of a resource that exists once per item (per AZ, per tenant, ...).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InstanceKey {
    /// `["us-east-1a"]`
    Str(String),
    /// `[0]`
    Int(u64),
}

impl From<&str> for InstanceKey {
    fn from(s: &str) -> Self {
        InstanceKey::Str(s.to_string())
    }
}

impl From<String> for InstanceKey {
    fn from(s: String) -> Self {
        InstanceKey::Str(s)
    }
}

impl From<u64> for InstanceKey {
    fn from(i: u64) -> Self {
        InstanceKey::Int(i)
    }
}

/// A resource type: `<group>.<kind>`, e.g. `eks.subnet` or `dns.record`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceType {
    pub group: String,
    pub kind: String,
}

impl ResourceType {
    pub fn new(group: &str, kind: &str) -> Result<Self, AddrError> {
        check_ident(group, "group")?;
        check_ident(kind, "kind")?;
        Ok(Self { group: group.to_string(), kind: kind.to_string() })
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.group, self.kind)
    }
}

impl FromStr for ResourceType {
    type Err = AddrError;
    fn from_str(s: &str) -> Result<Self, AddrError> {
        let (group, kind) = s.split_once('.').ok_or_else(|| AddrError::Syntax {
            input: s.to_string(),
            reason: "a resource type is `<group>.<kind>`, e.g. `eks.subnet`".into(),
        })?;
        ResourceType::new(group, kind)
    }
}

/// The address of one resource instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceAddr {
    pub rtype: ResourceType,
    pub name: String,
    pub key: Option<InstanceKey>,
}

/// Why a string is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// The text does not have the shape `<group>.<kind>.<name>[key]`.
    #[error("`{input}` is not a resource address: {reason}")]
    Syntax { input: String, reason: String },
    /// One of the dot-separated parts has characters outside `[a-z0-9_-]` or is empty.
    #[error("`{part}` is not a valid {what}: use lower-case letters, digits, `_` and `-`, starting with a letter")]
    Ident { part: String, what: &'static str },
}

fn check_ident(s: &str, what: &'static str) -> Result<(), AddrError> {
    let ok = s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok { Ok(()) } else { Err(AddrError::Ident { part: s.to_string(), what }) }
}

impl ResourceAddr {
    /// A single-instance address, `group.kind.name`.
    pub fn new(rtype: &ResourceType, name: &str) -> Result<Self, AddrError> {
        check_ident(name, "name")?;
        Ok(Self { rtype: rtype.clone(), name: name.to_string(), key: None })
    }

    /// An instance address, `group.kind.name[key]`.
    pub fn keyed(rtype: &ResourceType, name: &str, key: impl Into<InstanceKey>) -> Result<Self, AddrError> {
        let mut a = Self::new(rtype, name)?;
        a.key = Some(key.into());
        Ok(a)
    }

    /// Parses from the displayed form; panics on invalid input. For tests and literals in code.
    pub fn must(s: &str) -> Self {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }
}

impl ResourceAddr {
    /// Writes the address as `Display` shows it, with plain `write_str` calls: state files hold
    /// several addresses per resource, so this path is kept cheap.
    pub fn write_to<W: fmt::Write>(&self, w: &mut W) -> fmt::Result {
        w.write_str(&self.rtype.group)?;
        w.write_char('.')?;
        w.write_str(&self.rtype.kind)?;
        w.write_char('.')?;
        w.write_str(&self.name)?;
        match &self.key {
            None => Ok(()),
            Some(InstanceKey::Int(i)) => write!(w, "[{i}]"),
            Some(InstanceKey::Str(s)) => {
                w.write_str("[\"")?;
                if s.contains(['"', '\\']) {
                    for c in s.chars() {
                        match c {
                            '"' => w.write_str("\\\"")?,
                            '\\' => w.write_str("\\\\")?,
                            c => w.write_char(c)?,
                        }
                    }
                } else {
                    w.write_str(s)?;
                }
                w.write_str("\"]")
            }
        }
    }
}

impl fmt::Display for ResourceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f)
    }
}

impl FromStr for ResourceAddr {
    type Err = AddrError;
    fn from_str(input: &str) -> Result<Self, AddrError> {
        let syntax = |reason: &str| AddrError::Syntax { input: input.to_string(), reason: reason.to_string() };
        let (head, key) = match input.find('[') {
            None => (input, None),
            Some(i) => {
                let rest = &input[i..];
                if !rest.ends_with(']') {
                    return Err(syntax("the instance key must end with `]`"));
                }
                let inner = &rest[1..rest.len() - 1];
                let key = if let Some(q) = inner.strip_prefix('"') {
                    let q = q.strip_suffix('"').ok_or_else(|| syntax("unterminated string key"))?;
                    if !q.contains(['"', '\\']) {
                        InstanceKey::Str(q.to_string())
                    } else {
                        let mut out = String::with_capacity(q.len());
                        let mut chars = q.chars();
                        while let Some(c) = chars.next() {
                            match c {
                                '\\' => out.push(chars.next().ok_or_else(|| syntax("dangling `\\` in key"))?),
                                '"' => return Err(syntax("unescaped `\"` in key")),
                                c => out.push(c),
                            }
                        }
                        InstanceKey::Str(out)
                    }
                } else if !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit()) {
                    InstanceKey::Int(inner.parse().map_err(|_| syntax("the numeric key is too large"))?)
                } else {
                    return Err(syntax("a key is a quoted string (`[\"acme\"]`) or a number (`[0]`)"));
                };
                (&input[..i], Some(key))
            }
        };
        let mut parts = head.splitn(4, '.');
        let (Some(group), Some(kind), Some(name), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(syntax("an address is `<group>.<kind>.<name>` with an optional `[key]`"));
        };
        let rtype = ResourceType::new(group, kind)?;
        let mut addr = ResourceAddr::new(&rtype, name)?;
        addr.key = key;
        Ok(addr)
    }
}

impl Serialize for ResourceAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ResourceAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ResourceAddr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a resource address such as `eks.subnet.private[\"us-east-1a\"]`")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ResourceAddr, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl Serialize for ResourceType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ResourceType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_display() {
        for s in [
            "eks.vpc.main",
            r#"eks.subnet.private["us-east-1a"]"#,
            r#"dns.record.tenant["acme"]"#,
            "fake.node_pool.workers[3]",
            r#"k8s.object.cm["kube-system/a\"b\\c"]"#,
        ] {
            let a: ResourceAddr = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
        }
    }

    #[test]
    fn parts_are_typed() {
        let a = ResourceAddr::must(r#"eks.subnet.private["us-east-1a"]"#);
        assert_eq!(a.rtype.to_string(), "eks.subnet");
        assert_eq!(a.name, "private");
        assert_eq!(a.key, Some(InstanceKey::Str("us-east-1a".into())));
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "eks.vpc",
            "eks.vpc.main.x",
            "EKS.vpc.main",
            "eks.vpc.main[",
            "eks.vpc.main[abc]",
            "eks..main",
            r#"a.b.c["x"#,
            "a.b.c[]",
            "a.b.c[-1]",
            "a.b.c[+7]",
            "a.b.c[18446744073709551616]",
            r#"a.b.c["a"b"]"#,
            r#"a.b.c["a\"]"#,
            "a.b.c[1][2]",
            "",
        ] {
            assert!(s.parse::<ResourceAddr>().is_err(), "{s} should not parse");
        }
    }

    #[test]
    fn orders_by_type_then_name_then_key() {
        let mut v =
            [ResourceAddr::must("b.a.x"), ResourceAddr::must(r#"a.b.y["2"]"#), ResourceAddr::must(r#"a.b.y["1"]"#)];
        v.sort();
        let s: Vec<String> = v.iter().map(|a| a.to_string()).collect();
        assert_eq!(s, [r#"a.b.y["1"]"#, r#"a.b.y["2"]"#, "b.a.x"]);
    }

    #[test]
    fn serde_as_string() {
        let a = ResourceAddr::must(r#"dns.record.tenant["acme"]"#);
        let j = serde_json::to_string(&a).unwrap();
        assert_eq!(j, r#""dns.record.tenant[\"acme\"]""#);
        let back: ResourceAddr = serde_json::from_str(&j).unwrap();
        assert_eq!(back, a);
    }
}
