//! Multi-document YAML to JSON objects, typed the way `kubectl apply -f` types them.
//!
//! Built on saphyr-parser's event stream (the parser the spec crate uses), so every error can
//! point at a line and column. Plain scalars are resolved like kubectl's YAML decoder (go-yaml
//! v2 behind sigs.k8s.io/yaml), not like strict YAML 1.2: `yes`/`no`/`on`/`off` are booleans,
//! `0755` is octal, `1_000` is 1000, `1.0` becomes the integer 1, and mapping keys that resolve
//! to booleans or numbers become their JSON text (`on:` is the key `"true"`). Upstream manifests
//! are written and tested against kubectl, so the objects built here are the ones kubectl sends.
//! Quoted and block scalars are always strings. Anchors, aliases and merge keys (`<<`) work;
//! a key given twice keeps its last value, as with kubectl.
//!
//! Empty and comments-only documents are skipped; a document of kind `List` (or any `...List`
//! kind with `items`) is replaced by its items. Every object must be a mapping with a non-empty
//! `apiVersion` and `kind`.
//!
//! Deliberately not done: schema checks beyond `apiVersion`/`kind`, NaN or infinite numbers
//! (JSON has none; kubectl refuses them too), custom tags (their scalars are kept as strings, as
//! go-yaml does).

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Tag};
use serde_json::{Map, Number, Value};

use super::ManifestError;

/// Where a node starts: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy)]
struct Pos {
    line: usize,
    column: usize,
}

impl From<Marker> for Pos {
    fn from(m: Marker) -> Self {
        // saphyr's markers: line is 1-based, column 0-based.
        Pos { line: m.line(), column: m.col() + 1 }
    }
}

/// A finished node: its JSON value, or the merge key `<<`.
enum Node {
    Value(Value),
    MergeKey,
}

/// A collection being built.
enum Frame {
    Seq {
        at: Pos,
        anchor: usize,
        items: Vec<Value>,
    },
    Map {
        at: Pos,
        anchor: usize,
        entries: Map<String, Value>,
        /// The key whose value comes next; `None` while waiting for a key.
        key: Option<PendingKey>,
        /// Mappings named by `<<`, in order: applied at the end without overriding.
        merges: Vec<Map<String, Value>>,
    },
}

enum PendingKey {
    Key(String),
    Merge(Pos),
}

struct Builder<'a> {
    origin: &'a str,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Value>,
    /// The current document's top-level node and where it starts.
    root: Option<(Value, Pos)>,
    objects: Vec<Value>,
}

/// Parses every document of `text` into Kubernetes objects; see the module docs for the rules.
pub(super) fn parse(text: &str, origin: &str) -> Result<Vec<Value>, ManifestError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut b = Builder { origin, stack: Vec::new(), anchors: HashMap::new(), root: None, objects: Vec::new() };
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| {
            let at = Pos::from(*e.marker());
            ManifestError::Yaml {
                origin: origin.to_string(),
                line: at.line,
                column: at.column,
                message: e.info().into(),
            }
        })?;
        let at = Pos::from(span.start);
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd => {}
            Event::DocumentStart(_) => b.root = None,
            Event::DocumentEnd => b.finish_document()?,
            Event::Alias(id) => {
                let Some(value) = b.anchors.get(&id).cloned() else {
                    return Err(b.invalid(at, "this alias names no anchor defined before it".into()));
                };
                b.complete(Node::Value(value), at)?;
            }
            Event::Scalar(text, style, anchor, tag) => {
                let node = b.scalar(text, style, tag, at)?;
                if anchor > 0
                    && let Node::Value(v) = &node
                {
                    b.anchors.insert(anchor, v.clone());
                }
                b.complete(node, at)?;
            }
            Event::SequenceStart(anchor, _) => b.stack.push(Frame::Seq { at, anchor, items: Vec::new() }),
            Event::MappingStart(anchor, _) => {
                b.stack.push(Frame::Map { at, anchor, entries: Map::new(), key: None, merges: Vec::new() })
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, anchor, start) = match b.stack.pop() {
                    Some(Frame::Seq { at, anchor, items }) => (Value::Array(items), anchor, at),
                    Some(Frame::Map { at, anchor, mut entries, key, merges }) => {
                        if let Some(PendingKey::Merge(p)) = key {
                            return Err(b.invalid(p, "the merge key `<<` has no value".into()));
                        }
                        for merged in merges {
                            for (k, v) in merged {
                                entries.entry(k).or_insert(v);
                            }
                        }
                        (Value::Object(entries), anchor, at)
                    }
                    None => continue, // the parser never emits an unbalanced end
                };
                if anchor > 0 {
                    b.anchors.insert(anchor, value.clone());
                }
                b.complete(Node::Value(value), start)?;
            }
        }
    }
    Ok(b.objects)
}

impl Builder<'_> {
    fn invalid(&self, at: Pos, problem: String) -> ManifestError {
        ManifestError::Invalid { origin: self.origin.to_string(), line: at.line, column: at.column, problem }
    }

    /// Hands a finished node to the collection it belongs to, or makes it the document's root.
    fn complete(&mut self, node: Node, at: Pos) -> Result<(), ManifestError> {
        let Some(frame) = self.stack.last_mut() else {
            let value = match node {
                Node::Value(v) => v,
                Node::MergeKey => Value::String("<<".into()),
            };
            self.root = Some((value, at));
            return Ok(());
        };
        match frame {
            Frame::Seq { items, .. } => items.push(match node {
                Node::Value(v) => v,
                Node::MergeKey => Value::String("<<".into()),
            }),
            Frame::Map { entries, key, merges, .. } => match (key.take(), node) {
                (None, Node::MergeKey) => *key = Some(PendingKey::Merge(at)),
                (None, Node::Value(k)) => {
                    *key = Some(PendingKey::Key(self::key_text(k).map_err(|p| ManifestError::Invalid {
                        origin: self.origin.to_string(),
                        line: at.line,
                        column: at.column,
                        problem: p,
                    })?))
                }
                (Some(PendingKey::Key(k)), node) => {
                    let value = match node {
                        Node::Value(v) => v,
                        Node::MergeKey => Value::String("<<".into()),
                    };
                    // A repeated key keeps its last value, as kubectl's decoder does.
                    entries.insert(k, value);
                }
                (Some(PendingKey::Merge(_)), Node::Value(Value::Object(m))) => merges.push(m),
                (Some(PendingKey::Merge(_)), Node::Value(Value::Array(list))) if list.iter().all(Value::is_object) => {
                    // In a list of merged mappings, earlier ones win: merge them in order.
                    for item in list {
                        if let Value::Object(m) = item {
                            merges.push(m);
                        }
                    }
                }
                (Some(PendingKey::Merge(_)), _) => {
                    return Err(ManifestError::Invalid {
                        origin: self.origin.to_string(),
                        line: at.line,
                        column: at.column,
                        problem: "the merge key `<<` needs a mapping or a list of mappings (usually an alias `*name`)"
                            .into(),
                    });
                }
            },
        }
        Ok(())
    }

    /// Types a scalar: explicit core tags first, then quoting, then kubectl's plain resolution.
    fn scalar(
        &self,
        text: Cow<'_, str>,
        style: ScalarStyle,
        tag: Option<Cow<'_, Tag>>,
        at: Pos,
    ) -> Result<Node, ManifestError> {
        let core = tag.as_deref().filter(|t| t.is_yaml_core_schema()).map(|t| t.suffix.as_str());
        let resolved = match core {
            Some("bool" | "int" | "float" | "null") => {
                let wanted = core.unwrap_or_default();
                let plain = resolve_plain(&text);
                let ok = matches!(
                    (wanted, &plain),
                    ("bool", Plain::Bool(_))
                        | ("null", Plain::Null)
                        | ("int", Plain::Int(_) | Plain::UInt(_))
                        | ("float", Plain::Int(_) | Plain::UInt(_) | Plain::Float(_))
                );
                if !ok {
                    return Err(self.invalid(at, format!("`{text}` is tagged `!!{wanted}` but is not a {wanted}")));
                }
                plain
            }
            // `!!str`, `!!binary`, `!!timestamp`, the non-specific `!` and custom tags: a string,
            // as go-yaml keeps it.
            _ if tag.is_some() => Plain::Str,
            _ if style != ScalarStyle::Plain => Plain::Str,
            _ => resolve_plain(&text),
        };
        Ok(Node::Value(match resolved {
            Plain::Str => Value::String(text.into_owned()),
            Plain::Null => Value::Null,
            Plain::Bool(b) => Value::Bool(b),
            Plain::Int(i) => Value::Number(i.into()),
            Plain::UInt(u) => Value::Number(u.into()),
            Plain::Float(f) => Value::Number(float_number(f).ok_or_else(|| {
                self.invalid(at, format!("`{text}` is not a finite number, and JSON has no NaN or infinity"))
            })?),
            Plain::Merge => return Ok(Node::MergeKey),
        }))
    }

    /// Ends a document: its root becomes zero, one or (for a `List`) several objects.
    fn finish_document(&mut self) -> Result<(), ManifestError> {
        let Some((root, at)) = self.root.take() else { return Ok(()) };
        match root {
            Value::Null => Ok(()),
            Value::Object(map) => self.push_object(map, at, None),
            other => Err(self.invalid(
                at,
                format!("this document is {}, not a Kubernetes object (a mapping with apiVersion and kind)", a(&other)),
            )),
        }
    }

    /// Adds an object, or the items of a list object. `item` is the index inside a list.
    fn push_object(&mut self, mut map: Map<String, Value>, at: Pos, item: Option<usize>) -> Result<(), ManifestError> {
        let whose = |field: &str| match item {
            Some(i) => format!("item {i} of the list starting here has no `{field}`"),
            None => format!("this object has no `{field}`"),
        };
        for field in ["apiVersion", "kind"] {
            if map.get(field).and_then(Value::as_str).is_none_or(str::is_empty) {
                return Err(self.invalid(at, whose(field)));
            }
        }
        let is_list = map.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"))
            && map.get("items").is_some_and(Value::is_array);
        if !is_list {
            self.objects.push(Value::Object(map));
            return Ok(());
        }
        let Some(Value::Array(items)) = map.remove("items") else { unreachable!("checked above") };
        for (i, entry) in items.into_iter().enumerate() {
            match entry {
                Value::Object(m) => self.push_object(m, at, Some(i))?,
                other => {
                    return Err(
                        self.invalid(at, format!("item {i} of the list starting here is {}, not an object", a(&other)))
                    );
                }
            }
        }
        Ok(())
    }
}

/// A mapping key as JSON text: strings as they are, booleans and numbers as kubectl spells them.
fn key_text(key: Value) -> Result<String, String> {
    match key {
        Value::String(s) => Ok(s),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("this mapping key is {}; JSON object keys must be strings", a(&other))),
    }
}

/// "a list", "the string `x`", ... for messages.
fn a(v: &Value) -> String {
    match v {
        Value::Null => "empty (null)".into(),
        Value::Bool(b) => format!("the boolean `{b}`"),
        Value::Number(n) => format!("the number `{n}`"),
        Value::String(s) => format!("the string `{}`", s.chars().take(40).collect::<String>()),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// A resolved plain scalar.
#[derive(Debug, PartialEq)]
enum Plain {
    Str,
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Merge,
}

/// go-yaml v2's resolution of an untagged plain scalar (its `resolve.go`), which is what kubectl
/// applies.
fn resolve_plain(s: &str) -> Plain {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Plain::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => return Plain::Bool(true),
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Plain::Bool(false);
        }
        ".nan" | ".NaN" | ".NAN" => return Plain::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Plain::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Plain::Float(f64::NEG_INFINITY),
        "<<" => return Plain::Merge,
        _ => {}
    }
    match s.as_bytes()[0] {
        b'.' => {
            if is_yaml_float(s) {
                return s.parse().map_or(Plain::Str, Plain::Float);
            }
            Plain::Str
        }
        b'+' | b'-' | b'0'..=b'9' => {
            let plain: Cow<'_, str> = if s.contains('_') { s.replace('_', "").into() } else { s.into() };
            if let Some(n) = go_parse_int(&plain) {
                return n;
            }
            if is_yaml_float(&plain) {
                return plain.parse().map_or(Plain::Str, Plain::Float);
            }
            Plain::Str
        }
        _ => Plain::Str,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`, falling back to `ParseUint` for values above `i64::MAX`:
/// optional sign (integers only), `0x`/`0o`/`0b` prefixes, a leading `0` for octal.
fn go_parse_int(s: &str) -> Option<Plain> {
    let (negative, signed, body) = match s.as_bytes().first()? {
        b'-' => (true, true, &s[1..]),
        b'+' => (false, true, &s[1..]),
        _ => (false, false, s),
    };
    let (radix, digits) = if let Some(d) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        (8, d)
    } else if let Some(d) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        (2, d)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        // i64::MIN's magnitude is one more than i64::MAX.
        return if magnitude <= i64::MAX as u64 + 1 {
            Some(Plain::Int((magnitude as i64).wrapping_neg()))
        } else {
            None
        };
    }
    match i64::try_from(magnitude) {
        Ok(i) => Some(Plain::Int(i)),
        // ParseUint takes no sign.
        Err(_) if !signed => Some(Plain::UInt(magnitude)),
        Err(_) => None,
    }
}

/// go-yaml's `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// A float as JSON: integral values as integers (Go's JSON encoder prints `1.0` as `1`, and the
/// API server's int fields accept only that), `None` for NaN and infinities.
fn float_number(f: f64) -> Option<Number> {
    if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
        return Some(Number::from(f as i64));
    }
    Number::from_f64(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Value {
        let doc = format!("apiVersion: v1\nkind: ConfigMap\ndata:\n  v: {text}\n");
        let objects = parse(&doc, "test").unwrap();
        objects[0]["data"]["v"].clone()
    }

    #[test]
    fn plain_scalars_resolve_like_kubectl() {
        // Each pair was checked against `kubectl label --local -f x.yaml -o json`.
        let cases: &[(&str, Value)] = &[
            ("yes", Value::Bool(true)),
            ("Off", Value::Bool(false)),
            ("0755", 493.into()),
            ("0x1F", 31.into()),
            ("0o17", 15.into()),
            ("-0b101", (-5).into()),
            ("1_000", 1000.into()),
            ("1e3", 1000.into()),
            ("1.0", 1.into()),
            ("1.5", 1.5.into()),
            (".5", 0.5.into()),
            ("08", 8.into()),
            ("18446744073709551615", u64::MAX.into()),
            ("-9223372036854775808", i64::MIN.into()),
            ("~", Value::Null),
            ("", Value::Null),
            ("2024-01-01", "2024-01-01".into()),
            ("1.2.3", "1.2.3".into()),
            ("v1.21.1", "v1.21.1".into()),
            ("+", "+".into()),
            ("-x", "-x".into()),
            ("0x", "0x".into()),
            ("'yes'", "yes".into()),
            ("\"0755\"", "0755".into()),
            ("!!str 123", "123".into()),
            ("!foo 12", "12".into()),
            ("!!float 3", 3.into()),
        ];
        for (text, want) in cases {
            assert_eq!(&one(text), want, "scalar `{text}`");
        }
    }

    #[test]
    fn float_regex_matches_go_yaml() {
        for ok in ["1", "1.", "1.5", ".5", "+1.5e3", "-2E-2", "1e3"] {
            assert!(is_yaml_float(ok), "{ok}");
        }
        for bad in ["", ".", "e3", "1e", "1.5.2", "--1", "1e+", "0x1p3", "inf"] {
            assert!(!is_yaml_float(bad), "{bad}");
        }
    }

    #[test]
    fn non_finite_numbers_are_refused_with_their_position() {
        let err = parse("apiVersion: v1\nkind: X\nspec:\n  v: .nan\n", "o").unwrap_err();
        let ManifestError::Invalid { line, column, .. } = err else { panic!("{err:?}") };
        assert_eq!((line, column), (4, 6));
    }
}
