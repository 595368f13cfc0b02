//! Version 4: one resource per line, repeated values stored once (see the module docs of
//! [`format`](super) for the layout). Writing and reading.
//!
//! A value is shared when its compact JSON text is at least [`MIN_SHARED_LEN`] bytes long and
//! occurs at least twice among the shareable positions: a resource's top-level attribute
//! values, its `dependencies` list and its `owner_tags` (with its own address written as `true`).
//! The reference `{"$shared":N}` cannot be mistaken for a real value there: a dependency list is
//! an array, owner tags have only string values, and an attribute value that is an object with a
//! `$shared` key is always written to the table (so every such object in `attrs` is a
//! reference).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write as _;
use std::ops::Range;
use std::sync::Arc;

use matih_addrs::ResourceAddr;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Addr, AttrsIn, IntentV2, IntentsOut, OutputV2, OutputsOut, SortedValue, pretty};
use crate::model::{ResourceState, State};

/// Values shorter than this are written where they are: a reference is about 15 bytes.
pub(super) const MIN_SHARED_LEN: usize = 24;

/// The key of a reference object.
const SHARED_KEY: &str = "$shared";

const ENCODE: &str = "serializing to memory cannot fail: every map key is a string and JSON values are finite";

/// One resource's line, rendered: every piece of it as JSON text in `text`, the shareable values
/// as spans of it, so that writing the line is copying, with a reference where a value is shared.
/// A writer that keeps the lines of resources that did not change (see
/// [`StateCopy`](crate::StateCopy)) renders only the changed ones.
#[derive(Debug)]
pub(crate) struct Line {
    text: Vec<u8>,
    /// The address, a JSON string.
    address: Range<usize>,
    /// The id, a JSON string; `None` when the `id` attribute holds the same text.
    id: Option<Range<usize>>,
    /// Each attribute's key (a JSON string) and value, sorted by key, and whether the value must
    /// go to the table (an object with a `$shared` key).
    attrs: Vec<(Range<usize>, Range<usize>, bool)>,
    dependencies: Option<Range<usize>>,
    owner_tags: Option<Range<usize>>,
    protected: bool,
}

impl Line {
    pub(crate) fn render(address: &ResourceAddr, r: &ResourceState) -> Line {
        fn span(text: &mut Vec<u8>, value: &impl Serialize) -> Range<usize> {
            let start = text.len();
            serde_json::to_writer(&mut *text, value).expect(ENCODE);
            start..text.len()
        }
        let mut text = Vec::with_capacity(256);
        let address_text = address.to_string();
        let address = span(&mut text, &address_text);
        let id_in_attrs = r.attrs.get("id").and_then(Value::as_str) == Some(r.id.as_str());
        let id = (!id_in_attrs).then(|| span(&mut text, &r.id));
        let mut entries: Vec<(&String, &Value)> = r.attrs.iter().collect();
        if !r.attrs.keys().is_sorted() {
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        }
        let attrs = entries
            .into_iter()
            .map(|(k, v)| {
                let forced = v.as_object().is_some_and(|o| o.contains_key(SHARED_KEY));
                (span(&mut text, k), span(&mut text, &SortedValue(v)), forced)
            })
            .collect();
        let dependencies = (!r.dependencies.is_empty()).then(|| span(&mut text, &super::AddrsOut(&r.dependencies)));
        // A tag holding the resource's own address is written as `true`, so that the owner tags
        // of every resource of a platform are the same text, stored once.
        let owner_tags = (!r.owner_tags.is_empty()).then(|| {
            let map: BTreeMap<&String, TagOut<'_>> = r
                .owner_tags
                .iter()
                .map(|(k, v)| (k, if *v == address_text { TagOut::Address } else { TagOut::Text(v) }))
                .collect();
            span(&mut text, &map)
        });
        text.shrink_to_fit();
        Line { text, address, id, attrs, dependencies, owner_tags, protected: r.protected }
    }

    /// The values the table may hold, in the order they are written, each with whether it must
    /// go to the table.
    fn shareable(&self) -> impl Iterator<Item = (&[u8], bool)> {
        let at = |s: &Range<usize>| &self.text[s.clone()];
        self.attrs
            .iter()
            .map(move |(_, v, forced)| (at(v), *forced))
            .chain(self.dependencies.iter().chain(&self.owner_tags).map(move |s| (at(s), false)))
    }

    fn write(&self, out: &mut Vec<u8>, table: &Table<'_>, first: bool) {
        let at = |s: &Range<usize>| &self.text[s.clone()];
        pretty::line(&mut *out, first, 2).expect(ENCODE);
        out.extend_from_slice(b"{\"address\":");
        out.extend_from_slice(at(&self.address));
        if let Some(id) = &self.id {
            out.extend_from_slice(b",\"id\":");
            out.extend_from_slice(at(id));
        }
        out.extend_from_slice(b",\"attrs\":{");
        for (i, (k, v, _)) in self.attrs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(at(k));
            out.push(b':');
            table.value(out, at(v));
        }
        out.push(b'}');
        if let Some(span) = &self.dependencies {
            out.extend_from_slice(b",\"dependencies\":");
            table.value(out, at(span));
        }
        if let Some(span) = &self.owner_tags {
            out.extend_from_slice(b",\"owner_tags\":");
            table.value(out, at(span));
        }
        if self.protected {
            out.extend_from_slice(b",\"protected\":true");
        }
        out.push(b'}');
    }
}

/// The values stored once, numbered in the order they first occur.
struct Table<'a> {
    values: Vec<&'a [u8]>,
    index: HashMap<&'a [u8], usize, foldhash::fast::RandomState>,
}

impl<'a> Table<'a> {
    fn of(lines: impl Iterator<Item = &'a Line>) -> Table<'a> {
        // Each candidate: its place among the candidates, how often it occurs, whether it must go.
        let mut seen: HashMap<&[u8], (usize, u32, bool), foldhash::fast::RandomState> = HashMap::default();
        for line in lines {
            for (text, forced) in line.shareable() {
                if text.len() < MIN_SHARED_LEN && !forced {
                    continue;
                }
                let next = seen.len();
                let e = seen.entry(text).or_insert((next, 0, false));
                e.1 += 1;
                e.2 |= forced;
            }
        }
        let mut chosen: Vec<(usize, &[u8])> = seen
            .into_iter()
            .filter(|(_, (_, count, forced))| *count >= 2 || *forced)
            .map(|(t, (at, ..))| (at, t))
            .collect();
        chosen.sort_unstable_by_key(|(at, _)| *at);
        let values: Vec<&[u8]> = chosen.into_iter().map(|(_, t)| t).collect();
        let index = values.iter().enumerate().map(|(i, t)| (*t, i)).collect();
        Table { values, index }
    }

    /// Writes `text`, or the reference that stands for it.
    fn value(&self, out: &mut Vec<u8>, text: &[u8]) {
        match self.index.get(text) {
            Some(i) => write!(out, "{{\"{SHARED_KEY}\":{i}}}").expect(ENCODE),
            None => out.extend_from_slice(text),
        }
    }
}

/// Writes `state` as version 4 into `out` (cleared first).
pub(super) fn encode(state: &State, out: &mut Vec<u8>) {
    let lines: Vec<Line> = state.resources.iter().map(|(a, r)| Line::render(a, r)).collect();
    encode_lines(state, lines.iter(), out);
}

/// Writes `state` as version 4 into `out` (cleared first), its resources being `lines` (in
/// address order) rather than `state.resources`.
pub(super) fn encode_lines<'a>(
    state: &State,
    lines: impl ExactSizeIterator<Item = &'a Line> + Clone,
    out: &mut Vec<u8>,
) {
    out.clear();
    let deposed: Vec<Line> = state.deposed.iter().map(|d| Line::render(&d.addr, &d.resource)).collect();
    let table = Table::of(lines.clone().map(|l| l as &Line).chain(&deposed));
    let size: usize = lines.clone().map(|l| l.text.len()).sum();
    out.reserve(size / 2 + 1024);
    write!(out, "{{\n  \"format_version\": {},\n  \"tool_version\": ", super::FORMAT_VERSION).expect(ENCODE);
    serde_json::to_writer(&mut *out, super::TOOL_VERSION).expect(ENCODE);
    write!(out, ",\n  \"serial\": {},\n  \"lineage\": ", state.serial).expect(ENCODE);
    serde_json::to_writer(&mut *out, &state.lineage).expect(ENCODE);
    out.extend_from_slice(b",\n  \"shared\": [");
    for (i, text) in table.values.iter().enumerate() {
        pretty::line(&mut *out, i == 0, 2).expect(ENCODE);
        out.extend_from_slice(text);
    }
    close_list(out, !table.values.is_empty());

    out.extend_from_slice(b",\n  \"resources\": [");
    let any = lines.len() > 0;
    for (i, line) in lines.enumerate() {
        line.write(out, &table, i == 0);
    }
    close_list(out, any);
    out.extend_from_slice(b",\n  \"intents\": ");
    IntentsOut(&state.intents).serialize(&mut level1(out)).expect(ENCODE);
    out.extend_from_slice(b",\n  \"deposed\": [");
    for (i, line) in deposed.iter().enumerate() {
        line.write(out, &table, i == 0);
    }
    close_list(out, !deposed.is_empty());
    out.extend_from_slice(b",\n  \"outputs\": ");
    OutputsOut(&state.outputs).serialize(&mut level1(out)).expect(ENCODE);
    out.extend_from_slice(b",\n  \"schema_versions\": ");
    let versions: BTreeMap<String, u32> = state.schema_versions.iter().map(|(t, v)| (t.to_string(), *v)).collect();
    versions.serialize(&mut level1(out)).expect(ENCODE);
    out.extend_from_slice(b"\n}\n");
}

/// An owner tag's value as written: the resource's address as `true`, anything else as text.
enum TagOut<'a> {
    Address,
    Text(&'a str),
}

impl Serialize for TagOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            TagOut::Address => s.serialize_bool(true),
            TagOut::Text(t) => s.serialize_str(t),
        }
    }
}

fn close_list(out: &mut Vec<u8>, any: bool) {
    if any {
        pretty::line(&mut *out, true, 1).expect(ENCODE);
    }
    out.push(b']');
}

fn level1(out: &mut Vec<u8>) -> serde_json::Serializer<&mut Vec<u8>, pretty::Pretty> {
    serde_json::Serializer::with_formatter(out, pretty::Pretty::at(1))
}

// ---------------------------------------------------------------------------------------------
// Reading.

/// A version 4 file, read in the order it is written: the table of shared values comes before
/// the lists that refer to it.
pub(super) struct FileV4<'a> {
    pub serial: u64,
    pub lineage: String,
    pub resources: Vec<(ResourceAddr, ResourceState)>,
    pub intents: Vec<IntentV2<'a>>,
    pub deposed: Vec<(ResourceAddr, ResourceState)>,
    pub outputs: BTreeMap<String, OutputV2>,
    pub schema_versions: BTreeMap<String, u32>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Key {
    FormatVersion,
    ToolVersion,
    Serial,
    Lineage,
    Shared,
    Resources,
    Intents,
    Deposed,
    Outputs,
    SchemaVersions,
}

impl<'de: 'a, 'a> Deserialize<'de> for FileV4<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = FileV4<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a state file")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FileV4<'a>, A::Error> {
                let mut seen = [false; 10];
                let (mut serial, mut lineage, mut shared) = (None, None, None::<Vec<Value>>);
                let (mut resources, mut intents, mut deposed, mut outputs, mut versions) =
                    (None, None, None, None, None);
                while let Some(key) = map.next_key::<Key>()? {
                    let slot = &mut seen[key as usize];
                    if std::mem::replace(slot, true) {
                        return Err(de::Error::custom(format_args!("`{}` appears twice", name(key))));
                    }
                    let table = shared.as_deref().ok_or(key);
                    match key {
                        Key::FormatVersion => {
                            map.next_value::<u32>()?;
                        }
                        Key::ToolVersion => {
                            map.next_value::<String>()?;
                        }
                        Key::Serial => serial = Some(map.next_value()?),
                        Key::Lineage => lineage = Some(map.next_value()?),
                        Key::Shared => shared = Some(map.next_value()?),
                        Key::Resources => resources = Some(map.next_value_seed(ListSeed { table })?),
                        Key::Intents => intents = Some(map.next_value()?),
                        Key::Deposed => deposed = Some(map.next_value_seed(ListSeed { table })?),
                        Key::Outputs => outputs = Some(map.next_value()?),
                        Key::SchemaVersions => versions = Some(map.next_value()?),
                    }
                }
                let missing = |k: Key| de::Error::missing_field(name(k));
                Ok(FileV4 {
                    serial: serial.ok_or_else(|| missing(Key::Serial))?,
                    lineage: lineage.ok_or_else(|| missing(Key::Lineage))?,
                    resources: resources.ok_or_else(|| missing(Key::Resources))?,
                    intents: intents.ok_or_else(|| missing(Key::Intents))?,
                    deposed: deposed.ok_or_else(|| missing(Key::Deposed))?,
                    outputs: outputs.ok_or_else(|| missing(Key::Outputs))?,
                    schema_versions: versions.ok_or_else(|| missing(Key::SchemaVersions))?,
                })
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

fn name(k: Key) -> &'static str {
    match k {
        Key::FormatVersion => "format_version",
        Key::ToolVersion => "tool_version",
        Key::Serial => "serial",
        Key::Lineage => "lineage",
        Key::Shared => "shared",
        Key::Resources => "resources",
        Key::Intents => "intents",
        Key::Deposed => "deposed",
        Key::Outputs => "outputs",
        Key::SchemaVersions => "schema_versions",
    }
}

/// One element of `resources` or `deposed` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceV4 {
    address: Addr,
    #[serde(default)]
    id: Option<String>,
    attrs: AttrsIn,
    #[serde(default)]
    dependencies: Option<Value>,
    #[serde(default)]
    owner_tags: Option<Value>,
    #[serde(default)]
    protected: bool,
}

/// Reads a list of resources, resolving references into `table` (`Err`: the key that came
/// before the table, or the table is missing) as each element is read, so that a bad reference
/// is reported at its line.
#[derive(Clone, Copy)]
struct ListSeed<'t> {
    table: Result<&'t [Value], Key>,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_> {
    type Value = Vec<(ResourceAddr, ResourceState)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_> {
    type Value = Vec<(ResourceAddr, ResourceState)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of resources")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(r) = seq.next_element_seed(Element(self))? {
            out.push(r);
        }
        Ok(out)
    }
}

/// One element, resolved as soon as it is read: an error is then placed at its end, on its line.
struct Element<'t>(ListSeed<'t>);

impl<'de> DeserializeSeed<'de> for Element<'_> {
    type Value = (ResourceAddr, ResourceState);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Element<'_> {
    type Value = (ResourceAddr, ResourceState);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a resource")
    }
    // Failing inside the element's own map places the error at the element's end, not at
    // whatever follows it.
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let r = ResourceV4::deserialize(de::value::MapAccessDeserializer::new(map))?;
        self.0.resolve(r).map_err(de::Error::custom)
    }
}

impl ListSeed<'_> {
    /// The value `v` stands for: itself, or the shared value it refers to.
    fn value(&self, v: Value, at: &dyn fmt::Display) -> Result<Value, String> {
        let Value::Object(o) = &v else { return Ok(v) };
        let Some(r) = o.get(SHARED_KEY) else { return Ok(v) };
        let table = self.table.map_err(|key| {
            format!("{at} refers to a shared value, but no `shared` list comes before `{}`", name(key))
        })?;
        let i = match (o.len(), r.as_u64()) {
            (1, Some(i)) => i,
            _ => return Err(format!("{at}: a reference is `{{\"{SHARED_KEY}\": N}}` with N a number, not {v}")),
        };
        usize::try_from(i).ok().and_then(|i| table.get(i)).cloned().ok_or_else(|| {
            format!("{at} refers to shared value {i}, but `shared` has {} (numbered from 0)", table.len())
        })
    }

    fn resolve(&self, r: ResourceV4) -> Result<(ResourceAddr, ResourceState), String> {
        let address = r.address.0;
        let mut attrs = r.attrs.0;
        for (k, v) in attrs.iter_mut() {
            if v.as_object().is_some_and(|o| o.contains_key(SHARED_KEY)) {
                *v = self.value(std::mem::take(v), &format_args!("{address} attrs.{k}"))?;
            }
        }
        let dependencies = match r.dependencies {
            None => Vec::new(),
            Some(v) => {
                let at = format_args!("{address} dependencies");
                let v = self.value(v, &at)?;
                Vec::<Addr>::deserialize(&v).map_err(|e| format!("{at}: {e}"))?.into_iter().map(|a| a.0).collect()
            }
        };
        let owner_tags = match r.owner_tags {
            None => BTreeMap::new(),
            Some(v) => {
                let at = format_args!("{address} owner_tags");
                let Value::Object(tags) = self.value(v, &at)? else {
                    return Err(format!("{at}: expected an object of tags"));
                };
                tags.into_iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => Ok((k, s)),
                        Value::Bool(true) => Ok((k, address.to_string())),
                        other => Err(format!("{at}.{k}: a tag is text, or `true` for the address; not {other}")),
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        let id = match r.id {
            Some(id) => id,
            None => match attrs.get("id") {
                Some(Value::String(id)) => id.clone(),
                _ => return Err(format!("{address}: no `id`, and no `id` attribute to take it from")),
            },
        };
        let rtype = address.rtype.clone();
        Ok((
            address,
            ResourceState { rtype, id, attrs: Arc::new(attrs), dependencies, owner_tags, protected: r.protected },
        ))
    }
}
