//! The versioned on-disk layout of a state file: [`encode`] and [`decode`].
//!
//! # Version 5 (current, written by this crate)
//!
//! Version 4 (below) with one more top-level key, `defaults`, between `shared` and `resources`:
//! per resource type, the values most of its records share, which the records then leave out.
//!
//! ```json
//!   "shared": [ …as in version 4… ],
//!   "defaults": {
//!     "dns.record": {"attrs":{"ttl":300,"zone_id":{"$shared":1}},"dependencies":["dns.zone.platform"],"owner_tags":{"$shared":3}},
//!     "k8s.addon": {"attrs":{"cluster":{"$shared":20},"connection":{"$shared":22}},"dependencies":["eks.cluster.main"],"owner_tags":{"$shared":3}}
//!   },
//!   "resources": [
//!     {"address":"dns.record.tenant[\"acme\"]","attrs":{"id":"Z1/acme.matih.ai/CNAME","name":"acme.matih.ai","type":"CNAME","values":["ingress.matih.ai"]}},
//!     {"address":"dns.record.api","attrs":{…},"dependencies":{"$shared":2}},
//!   ],
//! ```
//!
//! - A type's default for an attribute is the value most of its records have, when every record
//!   of the type (in `resources` and `deposed`) has that attribute and at least two have that
//!   value; its default dependency list and owner tags likewise. A type with one record has no
//!   defaults; `defaults` lists only types that have some, each on one line, sorted by type.
//! - A record leaves out an attribute equal to its type's default, and its `dependencies` and
//!   `owner_tags` when equal to its type's default, or when empty and its type has no default for
//!   them. So a record of a type with a default dependency list that has none writes
//!   `"dependencies":[]`.
//! - Default values are written like the records' values: long ones used more than once go to
//!   `shared`, owner tags write the resource's own address as `true`.
//! - `defaults` must come after `shared` and before `resources` and `deposed`.
//!
//! A record is still one line, and the file still diffs one line per changed resource (plus the
//! defaults line when what most records of a type share changes). At 1,000 tenants on EKS the
//! owner tags, cluster connection and dependencies that every add-on and DNS record repeated were
//! about a sixth of version 4's bytes (1,865 KiB; version 5: 1,572 KiB).
//!
//! # Version 4 (read, never written)
//!
//! JSON with a fixed key order and a fixed layout, so that equal states give equal bytes, a
//! `diff` of two state files shows one changed line per changed resource, and `grep` finds a
//! resource's whole record on one line:
//!
//! ```json
//! {
//!   "format_version": 4,
//!   "tool_version": "0.1.0",
//!   "serial": 7,
//!   "lineage": "3f0c…",
//!   "shared": [
//!     {"ca_data": "LS0t…", "endpoint": "https://…", "name": "matih-prod"},
//!     {"matih:address": true, "matih:environment": "prod", "matih:platform": "matih"}
//!   ],
//!   "resources": [
//!     {"address":"eks.vpc.main","id":"vpc-0abc","attrs":{"cidr":"10.0.0.0/16"},"owner_tags":{"$shared":1},"protected":true},
//!     {"address":"k8s.addon.tenant[\"acme\"]","id":"matih-prod/tenant.acme","attrs":{"connection":{"$shared":0},…},"dependencies":["eks.cluster.main"]}
//!   ],
//!   "intents": [ …as in version 3… ],
//!   "deposed": [ …one line each, as in `resources`… ],
//!   "outputs": { "cluster_endpoint": { "value": "https://…", "sensitive": false } },
//!   "schema_versions": { "eks.vpc": 1 }
//! }
//! ```
//!
//! - Each resource is one compact line, its attribute keys sorted at every depth. The type is
//!   the address's (`eks.vpc.main` is an `eks.vpc`), so it is not written again.
//! - `dependencies` and `owner_tags` are left out when empty, `protected` when false.
//! - An owner tag whose value is the resource's own address is written as `true`, so that the
//!   owner tags of every resource of a platform are one value; `id` is left out when the `id`
//!   attribute holds the same text.
//! - A value written more than once — a top-level attribute value, a dependency list, the owner
//!   tags — is stored once in `shared` and written where it occurs
//!   as `{"$shared": N}` (numbered from 0, in the order of first use), when its compact text is
//!   at least 24 bytes. `shared` must come before `resources` and `deposed`. An attribute value
//!   that is itself an object with a `$shared` key always goes to the table, so every such
//!   object in `attrs` is a reference. The rules are in the private `compact` module.
//!
//! Version 4 is about a third of version 3 on a platform with a thousand tenants: the cluster
//! connection every add-on records, the owner tags and the dependency lists repeated on every
//! record, and the indentation of nested values made most of version 3's bytes.
//!
//! # Version 3 (read, never written)
//!
//! Version 2 (below) with one more top-level key after `outputs`:
//!
//! ```json
//!   "schema_versions": { "eks.vpc": 1 }
//! ```
//!
//! the attribute schema version each resource type was recorded with, for the types whose
//! provider is past version 0 (see `State::schema_versions`). Reading a version 2 file gives
//! every type version 0.
//!
//! # Version 2 (read, never written)
//!
//! Pretty-printed JSON with a fixed key order:
//!
//! ```json
//! {
//!   "format_version": 2,
//!   "tool_version": "0.1.0",
//!   "serial": 7,
//!   "lineage": "3f0c…",
//!   "resources": [
//!     {
//!       "address": "eks.vpc.main",
//!       "type": "eks.vpc",
//!       "id": "vpc-0abc",
//!       "attrs": { "cidr": "10.0.0.0/16" },
//!       "dependencies": [],
//!       "owner_tags": { "matih:platform": "prod" },
//!       "protected": true
//!     }
//!   ],
//!   "intents": [
//!     {
//!       "address": "eks.subnet.private[\"us-east-1a\"]",
//!       "type": "eks.subnet",
//!       "name": "prod-private-us-east-1a",
//!       "client_token": "…",
//!       "owner_tags": {},
//!       "dependencies": ["eks.vpc.main"],
//!       "protected": false,
//!       "recorded_at": "2026-05-01T10:00:00Z"
//!     }
//!   ],
//!   "deposed": [],
//!   "outputs": { "cluster_endpoint": { "value": "https://…", "sensitive": false } }
//! }
//! ```
//!
//! `resources` and `intents` are arrays sorted by address (the order of [`ResourceAddr`]).
//! `deposed` lists old instances replaced create-before-destroy and not deleted yet, each in the
//! same shape as an entry of `resources`, in the order they were recorded (one address may
//! appear more than once there).
//! object keys inside `attrs` and output values are written sorted. Every field is required and
//! unknown fields are refused: a field this version does not know would be dropped by the next
//! save, so a file carrying one was written by something else and is not ours to rewrite.
//!
//! # Version 1 (pre-release; read and upgraded, never written)
//!
//! ```json
//! {
//!   "format_version": 1,
//!   "tool_version": "0.0.3",
//!   "serial": 3,
//!   "lineage": "…",
//!   "resources": {
//!     "eks.vpc.main": {
//!       "type": "eks.vpc",
//!       "id": "vpc-0abc",
//!       "attributes": { "cidr": "10.0.0.0/16" },
//!       "dependencies": [],
//!       "owner_tags": {}
//!     }
//!   },
//!   "outputs": {}
//! }
//! ```
//!
//! That is: `resources` is an object keyed by address, the attributes field is called
//! `attributes` (not `attrs`), there is no `intents` journal and no `protected` flag (read as
//! `false`), no `deposed` list. `tool_version` may be absent. Upgrading to version 2 happens in memory on read; the
//! next save writes version 2.
//!
//! # Refusals
//!
//! [`decode`] never guesses. An empty, truncated or unparsable file, a `format_version` newer than
//! [`FORMAT_VERSION`], a missing or unknown older version, the same address twice, or a `type`
//! that does not match its address are all errors; the caller (the store) leaves the file alone.
//!
//! # Not here
//!
//! Where the file lives, locking, backups and atomic replacement are the store's job
//! ([`crate::store`]). This module turns bytes into a [`State`] and back, nothing else.
//!
//! # Performance
//!
//! The store saves the whole state after finished work, so both directions avoid a
//! `serde_json::Value` tree for the document: [`encode`] renders each resource's shareable
//! values once (those bytes decide what is shared, then are copied into the file), and
//! [`decode`] deserializes straight into the model's types, resolving references as each line
//! is read. The version is found by a probe that stops after the header keys (which [`encode`]
//! writes first), so a well-formed file is parsed once.

mod compact;
mod pretty;

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Not;
use std::path::Path;
use std::sync::Arc;

use matih_addrs::{ResourceAddr, ResourceType};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{CorruptKind, StateError};
use crate::model::{Attrs, Deposed, Intent, Output, ResourceState, State};

/// The format version [`encode`] writes and the newest one [`decode`] reads.
pub const FORMAT_VERSION: u32 = 5;

/// The oldest format version [`decode`] can upgrade.
pub const OLDEST_READABLE_VERSION: u32 = 1;

/// The version of this crate, recorded in every file as `tool_version` (the workspace gives
/// the CLI and this crate the same version).
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Serializes `state` in the current format ([`FORMAT_VERSION`]).
///
/// Equal states give equal bytes, whatever order their attribute maps were built in.
pub fn encode(state: &State) -> Vec<u8> {
    let mut out = Vec::new();
    compact::encode(state, &mut out);
    out
}

/// Puts the keys of every JSON object in `state` (attributes, output values) in the order
/// [`encode`] writes them, so that later encodes of the same state need not sort them again.
/// Does not change what the state means: JSON objects are unordered.
pub fn sort_objects(state: &mut State) {
    fn sort_map(m: &mut serde_json::Map<String, Value>) {
        if !m.keys().is_sorted() {
            m.sort_keys();
        }
        m.values_mut().for_each(sort_value);
    }
    fn sort_value(v: &mut Value) {
        match v {
            Value::Object(m) => sort_map(m),
            Value::Array(a) => a.iter_mut().for_each(sort_value),
            _ => {}
        }
    }
    fn map_sorted(m: &serde_json::Map<String, Value>) -> bool {
        m.keys().is_sorted() && m.values().all(value_sorted)
    }
    fn value_sorted(v: &Value) -> bool {
        match v {
            Value::Object(m) => map_sorted(m),
            Value::Array(a) => a.iter().all(value_sorted),
            _ => true,
        }
    }
    // Attributes may be shared with another copy of the state (recorded and refreshed): only
    // those that need sorting are made this state's own.
    let sort_attrs = |attrs: &mut Arc<Attrs>| {
        if !map_sorted(attrs) {
            sort_map(Arc::make_mut(attrs));
        }
    };
    state.resources.values_mut().for_each(|r| sort_attrs(&mut r.attrs));
    state.deposed.iter_mut().for_each(|d| sort_attrs(&mut d.resource.attrs));
    state.outputs.values_mut().for_each(|o| sort_value(&mut o.value));
}

/// [`encode`], as consecutive pieces of the file in `parts` (one, today; the store writes them
/// one after the other). The buffers already in `parts` are reused: a store that saves after
/// every finished resource would otherwise allocate (and fault in) a file-sized buffer each time.
pub(crate) fn encode_into(state: &State, parts: &mut Vec<Vec<u8>>) {
    compact::encode(state, one_part(parts));
}

pub(crate) use compact::Line;

/// [`encode_into`], with the resources given as their rendered lines (in address order) rather
/// than taken from `state`.
pub(crate) fn encode_lines_into<'a>(
    state: &State,
    lines: impl ExactSizeIterator<Item = &'a Line> + Clone,
    parts: &mut Vec<Vec<u8>>,
) {
    compact::encode_lines(state, lines, one_part(parts));
}

/// The one piece the file is written as, reusing the first buffer in `parts`.
fn one_part(parts: &mut Vec<Vec<u8>>) -> &mut Vec<u8> {
    parts.truncate(1);
    if parts.is_empty() {
        parts.push(Vec::new());
    }
    &mut parts[0]
}

/// Parses a state file, upgrading older format versions in memory.
///
/// `path` is only used to name the file in errors.
pub fn decode(bytes: &[u8], path: &Path) -> Result<State, StateError> {
    decode_inner(bytes, path)
}

fn decode_inner(bytes: &[u8], path: &Path) -> Result<State, StateError> {
    let header = read_header(bytes, path)?;
    match header.format_version {
        Some(4 | 5) => decode_v4(bytes, path),
        Some(2 | 3) => decode_v2(bytes, path),
        Some(1) => decode_v1(bytes, path),
        Some(found) if found > FORMAT_VERSION => Err(StateError::NewerFormat {
            path: path.to_path_buf(),
            found,
            supported: FORMAT_VERSION,
            written_by: header.tool_version,
        }),
        found => Err(StateError::UnknownFormat { path: path.to_path_buf(), found }),
    }
}

/// The header fields of a state file, read without parsing the rest of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// `format_version`, if present.
    pub format_version: Option<u32>,
    /// `tool_version`, if present: the matih-infra version that wrote the file.
    pub tool_version: Option<String>,
    /// `serial`, if present.
    pub serial: Option<u64>,
    /// `lineage`, if present.
    pub lineage: Option<String>,
}

/// Reads the header fields (`format_version`, `tool_version`, `serial`, `lineage`).
///
/// Stops as soon as all four are seen, which for files written by [`encode`] is after the first
/// four lines; otherwise scans the top-level object. It therefore does not prove that the rest of
/// the file is well-formed. Syntax errors before that point are reported as
/// [`StateError::Corrupt`].
pub fn read_header(bytes: &[u8], path: &Path) -> Result<Header, StateError> {
    let out = RefCell::new(Header::default());
    let complete = RefCell::new(false);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let res = HeaderProbe { out: &out, complete: &complete }.deserialize(&mut de);
    // The probe stops early by returning an error once it has what it needs; `complete` tells
    // that apart from a real error without looking at the error's text.
    if *complete.borrow() {
        return Ok(out.into_inner());
    }
    match res {
        Ok(()) => Ok(out.into_inner()),
        Err(e) => Err(corrupt(path, bytes, e)),
    }
}

fn corrupt(path: &Path, bytes: &[u8], source: serde_json::Error) -> StateError {
    use serde_json::error::Category;
    let kind = match source.classify() {
        Category::Eof if bytes.iter().all(u8::is_ascii_whitespace) => CorruptKind::Empty,
        Category::Eof => CorruptKind::Truncated,
        Category::Syntax | Category::Io => CorruptKind::Syntax,
        Category::Data => CorruptKind::Invalid,
    };
    StateError::Corrupt {
        path: path.to_path_buf(),
        kind,
        line: source.line(),
        column: source.column(),
        backup: None,
        source,
    }
}

// ---------------------------------------------------------------------------------------------
// Writing: borrowed views of the model, serialized in the order the format documents.

thread_local! {
    /// Scratch space to render an address in before writing it as a JSON string.
    static TEXT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// An address, written as its text form (same as its `Serialize`, minus the `fmt` overhead).
struct AddrOut<'a>(&'a ResourceAddr);

impl Serialize for AddrOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TEXT.with_borrow_mut(|buf| {
            buf.clear();
            let _ = self.0.write_to(buf);
            s.serialize_str(buf)
        })
    }
}

struct AddrsOut<'a>(&'a [ResourceAddr]);

impl Serialize for AddrsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(AddrOut))
    }
}

/// A resource type, written as `group.kind`.
struct TypeOut<'a>(&'a ResourceType);

impl Serialize for TypeOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TEXT.with_borrow_mut(|buf| {
            buf.clear();
            buf.push_str(&self.0.group);
            buf.push('.');
            buf.push_str(&self.0.kind);
            s.serialize_str(buf)
        })
    }
}

struct IntentsOut<'a>(&'a BTreeMap<ResourceAddr, Intent>);

impl Serialize for IntentsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|(address, i)| IntentOut {
            address: AddrOut(address),
            rtype: TypeOut(&i.rtype),
            name: &i.name,
            client_token: &i.client_token,
            owner_tags: &i.owner_tags,
            dependencies: AddrsOut(&i.dependencies),
            protected: i.protected,
            recorded_at: &i.recorded_at,
        }))
    }
}

#[derive(Serialize)]
struct IntentOut<'a> {
    address: AddrOut<'a>,
    #[serde(rename = "type")]
    rtype: TypeOut<'a>,
    name: &'a str,
    client_token: &'a str,
    owner_tags: &'a BTreeMap<String, String>,
    dependencies: AddrsOut<'a>,
    protected: bool,
    recorded_at: &'a str,
}

struct OutputsOut<'a>(&'a BTreeMap<String, Output>);

impl Serialize for OutputsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(
            self.0.iter().map(|(name, o)| (name, OutputOut { value: SortedValue(&o.value), sensitive: o.sensitive })),
        )
    }
}

#[derive(Serialize)]
struct OutputOut<'a> {
    value: SortedValue<'a>,
    sensitive: bool,
}

/// A JSON object written with its keys sorted, recursively.
///
/// `serde_json` is built with `preserve_order` in this workspace, so a map iterates in insertion
/// order; sorting on write makes the file independent of the order a provider filled the map in.
/// Maps that are already sorted (every map that came from [`decode`]) are written without
/// allocating.
struct SortedMap<'a>(&'a serde_json::Map<String, Value>);

impl Serialize for SortedMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        if m.keys().is_sorted() {
            return s.collect_map(m.iter().map(|(k, v)| (k, SortedValue(v))));
        }
        let mut entries: Vec<(&String, &Value)> = m.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut map = s.serialize_map(Some(entries.len()))?;
        for (k, v) in entries {
            map.serialize_entry(k, &SortedValue(v))?;
        }
        map.end()
    }
}

struct SortedValue<'a>(&'a Value);

impl Serialize for SortedValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(m) => SortedMap(m).serialize(s),
            Value::Array(a) => s.collect_seq(a.iter().map(SortedValue)),
            scalar => scalar.serialize(s),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading: the header probe.

struct HeaderProbe<'a> {
    out: &'a RefCell<Header>,
    complete: &'a RefCell<bool>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum HeaderKey {
    FormatVersion,
    ToolVersion,
    Serial,
    Lineage,
    #[serde(other)]
    Other,
}

impl<'de> DeserializeSeed<'de> for HeaderProbe<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for HeaderProbe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a state file (a JSON object with `format_version`)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<HeaderKey>()? {
            let mut h = self.out.borrow_mut();
            match key {
                HeaderKey::FormatVersion => h.format_version = Some(map.next_value()?),
                HeaderKey::ToolVersion => h.tool_version = map.next_value()?,
                HeaderKey::Serial => h.serial = Some(map.next_value()?),
                HeaderKey::Lineage => h.lineage = Some(map.next_value()?),
                HeaderKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            if h.format_version.is_some() && h.tool_version.is_some() && h.serial.is_some() && h.lineage.is_some() {
                *self.complete.borrow_mut() = true;
                // Not an error: the only way to stop a serde visitor early. See `read_header`.
                return Err(de::Error::custom("header complete"));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Reading: version 2.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV2<'a> {
    #[allow(dead_code)] // checked by the header probe
    format_version: u32,
    #[allow(dead_code)] // informational
    tool_version: String,
    serial: u64,
    lineage: String,
    resources: ResourceList,
    #[serde(borrow)]
    intents: Vec<IntentV2<'a>>,
    deposed: ResourceList,
    outputs: BTreeMap<String, OutputV2>,
    /// Version 3 only (a version 2 file has none; the header probe tells the versions apart).
    #[serde(default)]
    schema_versions: BTreeMap<String, u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceV2<'a> {
    address: Addr,
    #[serde(borrow, rename = "type")]
    rtype: Type<'a>,
    id: String,
    attrs: AttrsIn,
    dependencies: Vec<Addr>,
    owner_tags: BTreeMap<String, String>,
    protected: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentV2<'a> {
    address: Addr,
    #[serde(borrow, rename = "type")]
    rtype: Type<'a>,
    name: String,
    client_token: String,
    owner_tags: BTreeMap<String, String>,
    dependencies: Vec<Addr>,
    protected: bool,
    recorded_at: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputV2 {
    value: Value,
    sensitive: bool,
}

fn decode_v2(bytes: &[u8], path: &Path) -> Result<State, StateError> {
    let file: FileV2 = serde_json::from_slice(bytes).map_err(|e| corrupt(path, bytes, e))?;
    let resources = file.resources.checked(path)?;
    let deposed = file.deposed.checked(path)?;
    let mut state = assemble_v2(path, file.serial, file.lineage, vec![resources], file.intents, deposed, file.outputs)?;
    state.schema_versions = schema_versions(path, file.schema_versions)?;
    Ok(state)
}

fn decode_v4(bytes: &[u8], path: &Path) -> Result<State, StateError> {
    let file: compact::FileV4 = serde_json::from_slice(bytes).map_err(|e| corrupt(path, bytes, e))?;
    let mut state =
        assemble_v2(path, file.serial, file.lineage, vec![file.resources], file.intents, file.deposed, file.outputs)?;
    state.schema_versions = schema_versions(path, file.schema_versions)?;
    Ok(state)
}

/// The `schema_versions` object as the model's map; a key that is not a resource type is corrupt.
pub(crate) fn schema_versions(
    path: &Path,
    raw: BTreeMap<String, u32>,
) -> Result<BTreeMap<ResourceType, u32>, StateError> {
    raw.into_iter()
        .map(|(t, v)| {
            t.parse::<ResourceType>().map(|rt| (rt, v)).map_err(|_| StateError::Corrupt {
                path: path.to_path_buf(),
                kind: CorruptKind::Invalid,
                line: 0,
                column: 0,
                backup: None,
                source: <serde_json::Error as de::Error>::custom(format!(
                    "schema_versions: `{t}` is not a resource type"
                )),
            })
        })
        .collect()
}

/// Builds the state from the parts of a version 2 file; `resources` may come in several
/// consecutive pieces.
fn assemble_v2(
    path: &Path,
    serial: u64,
    lineage: String,
    resources: Vec<Vec<(ResourceAddr, ResourceState)>>,
    intents: Vec<IntentV2<'_>>,
    deposed: Vec<(ResourceAddr, ResourceState)>,
    outputs: BTreeMap<String, OutputV2>,
) -> Result<State, StateError> {
    let resources = collect_unique(path, resources)?;
    let intents = intents
        .into_iter()
        .map(|i| {
            let address = i.address.0;
            check_type(path, &address, &i.rtype.0)?;
            let rtype = address.rtype.clone();
            Ok((
                address,
                Intent {
                    rtype,
                    name: i.name,
                    client_token: i.client_token,
                    owner_tags: i.owner_tags,
                    dependencies: i.dependencies.into_iter().map(|a| a.0).collect(),
                    protected: i.protected,
                    recorded_at: i.recorded_at,
                },
            ))
        })
        .collect::<Result<Vec<_>, StateError>>()?;
    let intents = collect_unique(path, vec![intents])?;
    // Several old instances of one address may wait for deletion, so no uniqueness check here;
    // the list keeps the order it was recorded in.
    let deposed = deposed.into_iter().map(|(addr, resource)| Deposed { addr, resource }).collect();
    Ok(State {
        serial,
        lineage,
        resources,
        intents,
        deposed,
        outputs: outputs.into_iter().map(|(k, o)| (k, o.into_model())).collect(),
        schema_versions: BTreeMap::new(),
    })
}

impl ResourceV2<'_> {
    /// The model's record, and the `type` text if it contradicts the address.
    fn into_parts(self) -> (ResourceAddr, ResourceState, Option<String>) {
        let address = self.address.0;
        let bad_type = type_matches(&address, &self.rtype.0).not().then(|| self.rtype.0.into_owned());
        let rtype = address.rtype.clone();
        let state = ResourceState {
            rtype,
            id: self.id,
            attrs: Arc::new(self.attrs.0),
            dependencies: self.dependencies.into_iter().map(|a| a.0).collect(),
            owner_tags: self.owner_tags,
            protected: self.protected,
        };
        (address, state, bad_type)
    }
}

/// A `resources` or `deposed` array, each element turned into the model's record as soon as it
/// is read (no list of on-disk records is built first). A `type` that contradicts its address
/// is kept aside, to be reported as [`StateError::TypeMismatch`] once the file has parsed.
struct ResourceList {
    items: Vec<(ResourceAddr, ResourceState)>,
    mismatch: Option<(ResourceAddr, String)>,
}

impl ResourceList {
    fn checked(self, path: &Path) -> Result<Vec<(ResourceAddr, ResourceState)>, StateError> {
        match self.mismatch {
            None => Ok(self.items),
            Some((address, rtype)) => {
                Err(StateError::TypeMismatch { path: path.to_path_buf(), address: Box::new(address), rtype })
            }
        }
    }
}

impl<'de> Deserialize<'de> for ResourceList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ResourceList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of resources")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ResourceList, A::Error> {
                let mut list = ResourceList { items: Vec::with_capacity(seq.size_hint().unwrap_or(0)), mismatch: None };
                while let Some(r) = seq.next_element::<ResourceV2>()? {
                    let (address, state, bad_type) = r.into_parts();
                    if let Some(t) = bad_type
                        && list.mismatch.is_none()
                    {
                        list.mismatch = Some((address.clone(), t));
                    }
                    list.items.push((address, state));
                }
                Ok(list)
            }
        }
        d.deserialize_seq(V)
    }
}

impl OutputV2 {
    fn into_model(self) -> Output {
        Output { value: self.value, sensitive: self.sensitive }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading: version 1, upgraded to the model on the way in.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1<'a> {
    #[allow(dead_code)] // checked by the header probe
    format_version: u32,
    #[allow(dead_code)] // informational
    #[serde(default)]
    tool_version: Option<String>,
    serial: u64,
    lineage: String,
    #[serde(borrow)]
    resources: Pairs<Addr, ResourceV1<'a>>,
    outputs: BTreeMap<String, OutputV2>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceV1<'a> {
    #[serde(borrow, rename = "type")]
    rtype: Type<'a>,
    id: String,
    attributes: Attrs,
    dependencies: Vec<Addr>,
    owner_tags: BTreeMap<String, String>,
}

fn decode_v1(bytes: &[u8], path: &Path) -> Result<State, StateError> {
    let file: FileV1 = serde_json::from_slice(bytes).map_err(|e| corrupt(path, bytes, e))?;
    let resources = file
        .resources
        .0
        .into_iter()
        .map(|(address, r)| {
            let address = address.0;
            check_type(path, &address, &r.rtype.0)?;
            let rtype = address.rtype.clone();
            Ok((
                address,
                ResourceState {
                    rtype,
                    id: r.id,
                    attrs: Arc::new(r.attributes),
                    dependencies: r.dependencies.into_iter().map(|a| a.0).collect(),
                    owner_tags: r.owner_tags,
                    protected: false,
                },
            ))
        })
        .collect::<Result<Vec<_>, StateError>>()?;
    let resources = collect_unique(path, vec![resources])?;
    Ok(State {
        serial: file.serial,
        lineage: file.lineage,
        resources,
        intents: BTreeMap::new(),
        deposed: Vec::new(),
        schema_versions: BTreeMap::new(),
        outputs: file.outputs.into_iter().map(|(k, o)| (k, o.into_model())).collect(),
    })
}

// ---------------------------------------------------------------------------------------------
// Reading: helpers.

/// Builds a map from entries given in consecutive pieces, refusing the same address twice.
fn collect_unique<V>(
    path: &Path,
    pieces: Vec<Vec<(ResourceAddr, V)>>,
) -> Result<BTreeMap<ResourceAddr, V>, StateError> {
    // Files we write are sorted, so one pass proves both order and uniqueness, and the map is
    // then built straight from the pieces.
    if pieces.iter().flatten().is_sorted_by(|a, b| a.0 < b.0) {
        return Ok(pieces.into_iter().flatten().collect());
    }
    let mut v: Vec<_> = pieces.into_iter().flatten().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = v.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(StateError::DuplicateAddress { path: path.to_path_buf(), address: Box::new(w[0].0.clone()) });
    }
    Ok(v.into_iter().collect())
}

fn check_type(path: &Path, address: &ResourceAddr, rtype: &str) -> Result<(), StateError> {
    if type_matches(address, rtype) {
        Ok(())
    } else {
        Err(StateError::TypeMismatch {
            path: path.to_path_buf(),
            address: Box::new(address.clone()),
            rtype: rtype.to_string(),
        })
    }
}

fn type_matches(address: &ResourceAddr, rtype: &str) -> bool {
    rtype.split_once('.').is_some_and(|(group, kind)| group == address.rtype.group && kind == address.rtype.kind)
}

/// An attribute map, built at its final size rather than grown entry by entry (most resources
/// have a handful of attributes, and each growth of an `IndexMap` reallocates and rehashes).
/// Same result as deserializing [`Attrs`] directly, a repeated key included (the last wins).
struct AttrsIn(Attrs);

thread_local! {
    /// Entries of the attribute map being read, before the map is built.
    static ENTRIES: std::cell::RefCell<Vec<(String, Value)>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl<'de> Deserialize<'de> for AttrsIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AttrsIn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of attributes")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AttrsIn, A::Error> {
                // Taken rather than borrowed: nothing below calls back in here, but this way
                // it would still be correct if it did.
                let mut entries = ENTRIES.take();
                entries.clear();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                let mut attrs = Attrs::with_capacity(entries.len());
                attrs.extend(entries.drain(..));
                ENTRIES.set(entries);
                Ok(AttrsIn(attrs))
            }
        }
        d.deserialize_map(V)
    }
}

/// An address read from the file without first copying it into a `String` when the JSON text
/// has no escapes.
struct Addr(ResourceAddr);

impl<'de> Deserialize<'de> for Addr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Addr;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a resource address such as `eks.vpc.main`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Addr, E> {
                s.parse().map(Addr).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// The `type` field; only compared with the address, so kept as text (borrowed where possible).
struct Type<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Type<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Type<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a resource type such as `eks.vpc`")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Type<'a>, E> {
                Ok(Type(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Type<'a>, E> {
                Ok(Type(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

/// A JSON object read as a list of entries, so that a repeated key is seen rather than silently
/// overwritten.
struct Pairs<K, V>(Vec<(K, V)>);

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for Pairs<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PairsVisitor<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for PairsVisitor<K, V> {
            type Value = Pairs<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(entry) = map.next_entry()? {
                    v.push(entry);
                }
                Ok(Pairs(v))
            }
        }
        d.deserialize_map(PairsVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_that_looks_like_a_reference_goes_to_the_table_and_comes_back() {
        let mut s = State::new();
        let t = ResourceType::new("eks", "subnet").unwrap();
        let a = ResourceAddr::keyed(&t, "net", "n0").unwrap();
        let attrs = serde_json::json!({"odd": {"$shared": 0}, "small": {"$shared": "x", "y": 1}});
        s.resources.insert(
            a.clone(),
            ResourceState {
                rtype: t.clone(),
                id: "id".into(),
                attrs: Arc::new(attrs.as_object().unwrap().clone()),
                dependencies: vec![],
                owner_tags: BTreeMap::from([("matih:address".into(), a.to_string())]),
                protected: false,
            },
        );
        let bytes = encode(&s);
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(doc["shared"].as_array().unwrap().len(), 2, "{doc:#}");
        assert_eq!(decode(&bytes, Path::new("x")).unwrap(), s);
    }
}
