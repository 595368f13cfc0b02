//! Versions 4 and 5: one resource per line, repeated values stored once, and (version 5) what
//! most records of a type share written once per type (see the module docs of
//! [`format`](super) for the layout). Writing version 5, reading both.
//!
//! A value is shared when its compact JSON text is at least [`MIN_SHARED_LEN`] bytes long and
//! occurs at least twice among the shareable positions: a resource's top-level attribute
//! values, its `dependencies` list and its `owner_tags` (with its own address written as `true`),
//! on a record's line or as a type's entry under `defaults`.
//! The reference `{"$shared":N}` cannot be mistaken for a real value there: a dependency list is
//! an array, owner tags have only string values, and an attribute value that is an object with a
//! `$shared` key is always written to the table (so every such object in `attrs` is a
//! reference).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write as _;
use std::ops::Range;
use std::sync::Arc;

use matih_addrs::{ResourceAddr, ResourceType};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Addr, Attrs, AttrsIn, IntentV2, IntentsOut, OutputV2, OutputsOut, SortedValue, pretty};
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
    /// The resource type, a JSON string (not written on the line: the address has it).
    rtype: Range<usize>,
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
        let rtype = span(&mut text, &super::TypeOut(&r.rtype));
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
        Line { text, address, rtype, id, attrs, dependencies, owner_tags, protected: r.protected }
    }

    fn at(&self, s: &Range<usize>) -> &[u8] {
        &self.text[s.clone()]
    }

    /// The dependency list as written when it is not left out: `[]` when empty.
    fn dependencies_text(&self) -> &[u8] {
        self.dependencies.as_ref().map_or(b"[]", |s| self.at(s))
    }

    /// The owner tags as written when they are not left out: `{}` when there are none.
    fn owner_tags_text(&self) -> &[u8] {
        self.owner_tags.as_ref().map_or(b"{}", |s| self.at(s))
    }

    /// The pieces written on the line, given its type's defaults: each attribute (key and
    /// value) not equal to its default, and the dependencies and owner tags when they differ
    /// from theirs (no default: empty).
    fn pieces<'s>(&'s self, d: Option<&'s TypeDefaults<'_>>) -> Pieces<'s> {
        let attrs = self
            .attrs
            .iter()
            .filter(move |(k, v, _)| d.and_then(|d| d.attr(self.at(k))) != Some(self.at(v)))
            .map(|(k, v, forced)| (self.at(k), self.at(v), *forced))
            .collect();
        let kept =
            |text: &'s [u8], default: Option<&[u8]>, empty: &[u8]| (text != default.unwrap_or(empty)).then_some(text);
        Pieces {
            attrs,
            dependencies: kept(self.dependencies_text(), d.and_then(|d| d.dependencies), b"[]"),
            owner_tags: kept(self.owner_tags_text(), d.and_then(|d| d.owner_tags), b"{}"),
        }
    }

    fn write(&self, out: &mut Vec<u8>, table: &Table<'_>, p: &Pieces<'_>, first: bool) {
        pretty::line(&mut *out, first, 2).expect(ENCODE);
        out.extend_from_slice(b"{\"address\":");
        out.extend_from_slice(self.at(&self.address));
        if let Some(id) = &self.id {
            out.extend_from_slice(b",\"id\":");
            out.extend_from_slice(self.at(id));
        }
        out.extend_from_slice(b",\"attrs\":");
        write_attrs(out, table, &p.attrs);
        if let Some(text) = p.dependencies {
            out.extend_from_slice(b",\"dependencies\":");
            table.value(out, text);
        }
        if let Some(text) = p.owner_tags {
            out.extend_from_slice(b",\"owner_tags\":");
            table.value(out, text);
        }
        if self.protected {
            out.extend_from_slice(b",\"protected\":true");
        }
        out.push(b'}');
    }
}

/// What one line writes, or a type's defaults: (key, value, must go to the table) per
/// attribute, sorted by key, and the dependencies and owner tags unless left out.
#[derive(Default)]
struct Pieces<'s> {
    attrs: Vec<(&'s [u8], &'s [u8], bool)>,
    dependencies: Option<&'s [u8]>,
    owner_tags: Option<&'s [u8]>,
}

impl<'s> Pieces<'s> {
    /// The values the table may hold, in the order they are written, each with whether it
    /// must go to the table.
    fn shareable(&self) -> impl Iterator<Item = (&'s [u8], bool)> + '_ {
        self.attrs
            .iter()
            .map(|(_, v, forced)| (*v, *forced))
            .chain(self.dependencies.iter().chain(&self.owner_tags).map(|t| (*t, false)))
    }

    /// The value of the attribute whose key (a JSON string) is `key`.
    fn attr(&self, key: &[u8]) -> Option<&'s [u8]> {
        self.attrs.iter().find(|(k, ..)| *k == key).map(|(_, v, _)| *v)
    }

    fn is_empty(&self) -> bool {
        self.attrs.is_empty() && self.dependencies.is_none() && self.owner_tags.is_none()
    }
}

fn write_attrs(out: &mut Vec<u8>, table: &Table<'_>, attrs: &[(&[u8], &[u8], bool)]) {
    out.push(b'{');
    for (i, (k, v, _)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(k);
        out.push(b':');
        table.value(out, v);
    }
    out.push(b'}');
}

/// Per resource type, the values its lines leave out: an attribute every line of the type has,
/// with the value most of them share; the dependency list and the owner tags most of them
/// share. A value is a default only when at least two lines have it, so a type with one line
/// has none. Chosen from the lines themselves, so equal states still give equal bytes.
pub(crate) struct Defaults<'a> {
    /// By type (a JSON string), sorted.
    types: Vec<(&'a [u8], TypeDefaults<'a>)>,
}

/// A type's defaults: its lines leave out the values written here.
type TypeDefaults<'a> = Pieces<'a>;

type Fast<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The text most of `texts` are (the first of them on a tie), if at least two are it.
fn most_common<'a>(texts: impl Iterator<Item = &'a [u8]>) -> Option<&'a [u8]> {
    let mut counts: Fast<&[u8], (usize, u32)> = HashMap::default();
    for (i, t) in texts.enumerate() {
        counts.entry(t).or_insert((i, 0)).1 += 1;
    }
    counts
        .into_iter()
        .filter(|(_, (_, n))| *n >= 2)
        .min_by_key(|(_, (first, n))| (std::cmp::Reverse(*n), *first))
        .map(|(t, _)| t)
}

impl<'a> Defaults<'a> {
    fn of(lines: impl Iterator<Item = &'a Line>) -> Defaults<'a> {
        let mut by_type: Fast<&[u8], Vec<&Line>> = HashMap::default();
        for line in lines {
            by_type.entry(line.at(&line.rtype)).or_default().push(line);
        }
        let mut types: Vec<(&[u8], TypeDefaults<'_>)> = by_type
            .into_iter()
            .filter(|(_, lines)| lines.len() >= 2)
            .map(|(rtype, lines)| {
                let first = lines[0];
                let mut d = TypeDefaults::default();
                for (k, ..) in &first.attrs {
                    let key = first.at(k);
                    let values: Option<Vec<(&[u8], bool)>> = lines
                        .iter()
                        .map(|l| l.attrs.iter().find(|(lk, ..)| l.at(lk) == key).map(|(_, v, f)| (l.at(v), *f)))
                        .collect();
                    let Some(values) = values else { continue };
                    if let Some(v) = most_common(values.iter().map(|(t, _)| *t)) {
                        // Whether a value must go to the table follows from its text alone.
                        let forced = values.iter().any(|(t, f)| *t == v && *f);
                        d.attrs.push((key, v, forced));
                    }
                }
                d.dependencies = most_common(lines.iter().map(|l| l.dependencies_text())).filter(|t| *t != b"[]");
                d.owner_tags = most_common(lines.iter().map(|l| l.owner_tags_text())).filter(|t| *t != b"{}");
                (rtype, d)
            })
            .filter(|(_, d)| !d.is_empty())
            .collect();
        types.sort_unstable_by(|a, b| a.0.cmp(b.0));
        Defaults { types }
    }

    fn of_type(&self, rtype: &[u8]) -> Option<&TypeDefaults<'a>> {
        self.types.binary_search_by(|(t, _)| (*t).cmp(rtype)).ok().map(|i| &self.types[i].1)
    }

    /// The values the table may hold, in the order they are written.
    fn shareable(&self) -> impl Iterator<Item = (&'a [u8], bool)> + '_ {
        self.types.iter().flat_map(|(_, d)| d.shareable())
    }
}

/// The values stored once, numbered in the order they first occur.
struct Table<'a> {
    values: Vec<&'a [u8]>,
    index: HashMap<&'a [u8], usize, foldhash::fast::RandomState>,
}

impl<'a> Table<'a> {
    /// The table for the values written, in the order they are written (each with whether it
    /// must go to the table).
    fn of(written: impl Iterator<Item = (&'a [u8], bool)>) -> Table<'a> {
        // Each candidate: its place among the candidates, how often it occurs, whether it must go.
        let mut seen: HashMap<&[u8], (usize, u32, bool), foldhash::fast::RandomState> = HashMap::default();
        for (text, forced) in written {
            if text.len() < MIN_SHARED_LEN && !forced {
                continue;
            }
            let next = seen.len();
            let e = seen.entry(text).or_insert((next, 0, false));
            e.1 += 1;
            e.2 |= forced;
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

/// Writes `state` as version 5 into `out` (cleared first).
pub(super) fn encode(state: &State, out: &mut Vec<u8>) {
    let lines: Vec<Line> = state.resources.iter().map(|(a, r)| Line::render(a, r)).collect();
    encode_lines(state, lines.iter(), out);
}

/// Writes `state` as version 5 into `out` (cleared first), its resources being `lines` (in
/// address order) rather than `state.resources`.
pub(super) fn encode_lines<'a>(
    state: &State,
    lines: impl ExactSizeIterator<Item = &'a Line> + Clone,
    out: &mut Vec<u8>,
) {
    out.clear();
    let deposed: Vec<Line> = state.deposed.iter().map(|d| Line::render(&d.addr, &d.resource)).collect();
    // Borrowed for as long as `deposed` lives, not for `'a`.
    let all = || lines.clone().map(|l| l as &Line).chain(&deposed);
    let defaults = Defaults::of(all());
    let pieces: Vec<Pieces<'_>> = all().map(|l| l.pieces(defaults.of_type(l.at(&l.rtype)))).collect();
    let table = Table::of(defaults.shareable().chain(pieces.iter().flat_map(Pieces::shareable)));
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
    out.extend_from_slice(b",\n  \"defaults\": {");
    for (i, (rtype, d)) in defaults.types.iter().enumerate() {
        pretty::line(&mut *out, i == 0, 2).expect(ENCODE);
        out.extend_from_slice(rtype);
        out.extend_from_slice(b": {");
        let mut sep = "";
        if !d.attrs.is_empty() {
            out.extend_from_slice(b"\"attrs\":");
            write_attrs(out, &table, &d.attrs);
            sep = ",";
        }
        if let Some(text) = d.dependencies {
            write!(out, "{sep}\"dependencies\":").expect(ENCODE);
            table.value(out, text);
            sep = ",";
        }
        if let Some(text) = d.owner_tags {
            write!(out, "{sep}\"owner_tags\":").expect(ENCODE);
            table.value(out, text);
        }
        out.push(b'}');
    }
    if !defaults.types.is_empty() {
        pretty::line(&mut *out, true, 1).expect(ENCODE);
    }
    out.push(b'}');

    out.extend_from_slice(b",\n  \"resources\": [");
    let (any, n) = (lines.len() > 0, lines.len());
    for (i, line) in lines.enumerate() {
        line.write(out, &table, &pieces[i], i == 0);
    }
    close_list(out, any);
    out.extend_from_slice(b",\n  \"intents\": ");
    IntentsOut(&state.intents).serialize(&mut level1(out)).expect(ENCODE);
    out.extend_from_slice(b",\n  \"deposed\": [");
    for (i, line) in deposed.iter().enumerate() {
        line.write(out, &table, &pieces[n + i], i == 0);
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

/// A version 4 or 5 file, read in the order it is written: the table of shared values comes
/// before the defaults and the lists that refer to it, the defaults before the lists.
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
    Defaults,
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
                let mut seen = [false; 11];
                let (mut version, mut serial, mut lineage, mut shared) = (None, None, None, None::<Vec<Value>>);
                let mut defaults = None::<DefaultsIn>;
                let (mut resources, mut intents, mut deposed, mut outputs, mut versions) =
                    (None, None, None, None, None);
                while let Some(key) = map.next_key::<Key>()? {
                    let slot = &mut seen[key as usize];
                    if std::mem::replace(slot, true) {
                        return Err(de::Error::custom(format_args!("`{}` appears twice", name(key))));
                    }
                    let table = shared.as_deref().ok_or(key);
                    let list = |table| ListSeed { table, defaults: defaults.as_ref() };
                    match key {
                        Key::FormatVersion => version = Some(map.next_value::<u32>()?),
                        Key::ToolVersion => {
                            map.next_value::<String>()?;
                        }
                        Key::Serial => serial = Some(map.next_value()?),
                        Key::Lineage => lineage = Some(map.next_value()?),
                        Key::Shared => shared = Some(map.next_value()?),
                        Key::Defaults => {
                            if let Some(k) = [(Key::Resources, &resources), (Key::Deposed, &deposed)]
                                .into_iter()
                                .find_map(|(k, list)| list.is_some().then_some(k))
                            {
                                return Err(de::Error::custom(format_args!(
                                    "`defaults` comes after `{}`, which leaves out values it names: it must come before",
                                    name(k)
                                )));
                            }
                            defaults = Some(map.next_value_seed(DefaultsSeed { table })?);
                        }
                        Key::Resources => resources = Some(map.next_value_seed(list(table))?),
                        Key::Intents => intents = Some(map.next_value()?),
                        Key::Deposed => deposed = Some(map.next_value_seed(list(table))?),
                        Key::Outputs => outputs = Some(map.next_value()?),
                        Key::SchemaVersions => versions = Some(map.next_value()?),
                    }
                }
                let missing = |k: Key| de::Error::missing_field(name(k));
                if let Some(v @ ..5) = version
                    && defaults.is_some()
                {
                    return Err(de::Error::custom(format_args!("`defaults` is new in format version 5, not {v}")));
                }
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
        Key::Defaults => "defaults",
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
    /// What a line of each type leaves out (version 5; none in version 4).
    defaults: Option<&'t DefaultsIn>,
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

/// The value `v` stands for: itself, or the shared value in `table` it refers to.
fn shared_value(table: Result<&[Value], Key>, v: Value, at: &dyn fmt::Display) -> Result<Value, String> {
    let Value::Object(o) = &v else { return Ok(v) };
    let Some(r) = o.get(SHARED_KEY) else { return Ok(v) };
    let table = table
        .map_err(|key| format!("{at} refers to a shared value, but no `shared` list comes before `{}`", name(key)))?;
    let i = match (o.len(), r.as_u64()) {
        (1, Some(i)) => i,
        _ => return Err(format!("{at}: a reference is `{{\"{SHARED_KEY}\": N}}` with N a number, not {v}")),
    };
    usize::try_from(i)
        .ok()
        .and_then(|i| table.get(i))
        .cloned()
        .ok_or_else(|| format!("{at} refers to shared value {i}, but `shared` has {} (numbered from 0)", table.len()))
}

/// Resolves the references among top-level attribute values (every object with a `$shared` key
/// is one).
fn resolve_attrs(table: Result<&[Value], Key>, attrs: &mut Attrs, at: &dyn fmt::Display) -> Result<(), String> {
    for (k, v) in attrs.iter_mut() {
        if v.as_object().is_some_and(|o| o.contains_key(SHARED_KEY)) {
            *v = shared_value(table, std::mem::take(v), &format_args!("{at} attrs.{k}"))?;
        }
    }
    Ok(())
}

/// A dependency list as written (resolved).
fn dependencies(v: &Value, at: &dyn fmt::Display) -> Result<Vec<ResourceAddr>, String> {
    Ok(Vec::<Addr>::deserialize(v).map_err(|e| format!("{at}: {e}"))?.into_iter().map(|a| a.0).collect())
}

/// Checks owner tags as written (resolved): an object of text, or `true` for the address.
fn check_tags(v: &Value, at: &dyn fmt::Display) -> Result<(), String> {
    let Value::Object(tags) = v else {
        return Err(format!("{at}: expected an object of tags"));
    };
    match tags.iter().find(|(_, v)| !matches!(v, Value::String(_) | Value::Bool(true))) {
        Some((k, other)) => Err(format!("{at}.{k}: a tag is text, or `true` for the address; not {other}")),
        None => Ok(()),
    }
}

/// The owner tags of the resource at `address`, from tags that passed [`check_tags`].
fn owner_tags(v: &Value, address: &ResourceAddr) -> BTreeMap<String, String> {
    let tags = v.as_object().into_iter().flatten();
    tags.map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| address.to_string(), String::from))).collect()
}

impl ListSeed<'_> {
    fn resolve(&self, r: ResourceV4) -> Result<(ResourceAddr, ResourceState), String> {
        let address = r.address.0;
        let d = self.defaults.and_then(|d| d.get(&address.rtype));
        let mut attrs = r.attrs.0;
        resolve_attrs(self.table, &mut attrs, &address)?;
        if let Some(d) = d {
            let before = attrs.len();
            for (k, v) in d.attrs.iter() {
                if !attrs.contains_key(k) {
                    attrs.insert(k.clone(), v.clone());
                }
            }
            if attrs.len() != before && !attrs.keys().is_sorted() {
                attrs.sort_keys();
            }
        }
        let dependencies = match r.dependencies {
            None => d.map(|d| d.dependencies.clone()).unwrap_or_default(),
            Some(v) => {
                let at = format_args!("{address} dependencies");
                dependencies(&shared_value(self.table, v, &at)?, &at)?
            }
        };
        let owner_tags = match r.owner_tags {
            Some(v) => {
                let at = format_args!("{address} owner_tags");
                let v = shared_value(self.table, v, &at)?;
                check_tags(&v, &at)?;
                owner_tags(&v, &address)
            }
            // Checked when the defaults were read.
            None => d.and_then(|d| d.owner_tags.as_ref()).map(|v| owner_tags(v, &address)).unwrap_or_default(),
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

/// The `defaults` of a version 5 file, resolved: by resource type.
type DefaultsIn = HashMap<ResourceType, TypeDefaultsIn>;

/// What the lines of one type leave out.
struct TypeDefaultsIn {
    attrs: Attrs,
    dependencies: Vec<ResourceAddr>,
    /// As written (resolved), `true` standing for each resource's own address.
    owner_tags: Option<Value>,
}

/// One entry of `defaults` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypeDefaultsV5 {
    #[serde(default)]
    attrs: Option<AttrsIn>,
    #[serde(default)]
    dependencies: Option<Value>,
    #[serde(default)]
    owner_tags: Option<Value>,
}

/// Reads `defaults`, resolving references into `table` as each entry is read.
struct DefaultsSeed<'t> {
    table: Result<&'t [Value], Key>,
}

impl<'de> DeserializeSeed<'de> for DefaultsSeed<'_> {
    type Value = DefaultsIn;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DefaultsSeed<'_> {
    type Value = DefaultsIn;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of defaults by resource type")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = DefaultsIn::new();
        while let Some(key) = map.next_key::<String>()? {
            let rtype: ResourceType = key.parse().map_err(|e| {
                de::Error::custom(format_args!("defaults: `{key}` is not a resource type such as `eks.vpc` ({e})"))
            })?;
            let d = map.next_value_seed(TypeDefaultsSeed { table: self.table, key: &key })?;
            if out.insert(rtype, d).is_some() {
                return Err(de::Error::custom(format_args!("defaults: `{key}` appears twice")));
            }
        }
        Ok(out)
    }
}

/// One entry of `defaults`, resolved as soon as it is read: an error is then placed at its end,
/// on its line.
struct TypeDefaultsSeed<'t, 'k> {
    table: Result<&'t [Value], Key>,
    /// The type, as written.
    key: &'k str,
}

impl<'de> DeserializeSeed<'de> for TypeDefaultsSeed<'_, '_> {
    type Value = TypeDefaultsIn;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TypeDefaultsSeed<'_, '_> {
    type Value = TypeDefaultsIn;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the defaults of a resource type")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let raw = TypeDefaultsV5::deserialize(de::value::MapAccessDeserializer::new(map))?;
        self.resolve(raw).map_err(de::Error::custom)
    }
}

impl TypeDefaultsSeed<'_, '_> {
    fn resolve(&self, raw: TypeDefaultsV5) -> Result<TypeDefaultsIn, String> {
        let at = format_args!("defaults.{}", self.key);
        let mut attrs = raw.attrs.map(|a| a.0).unwrap_or_default();
        resolve_attrs(self.table, &mut attrs, &at)?;
        if !attrs.keys().is_sorted() {
            attrs.sort_keys();
        }
        let dependencies = match raw.dependencies {
            None => Vec::new(),
            Some(v) => {
                let at = format_args!("{at} dependencies");
                dependencies(&shared_value(self.table, v, &at)?, &at)?
            }
        };
        let owner_tags = match raw.owner_tags {
            None => None,
            Some(v) => {
                let at = format_args!("{at} owner_tags");
                let v = shared_value(self.table, v, &at)?;
                // Checked here, where a bad tag is, not at each resource that takes it.
                check_tags(&v, &at)?;
                Some(v)
            }
        };
        Ok(TypeDefaultsIn { attrs, dependencies, owner_tags })
    }
}
