//! Decoding a large version 2 file on several threads.
//!
//! Only for files laid out the way [`encode`](super::encode) writes them; anything else, and any
//! problem at all, returns `None` so that the caller decodes the file in one pass, which is also
//! what reports errors with their line and column. The result, when there is one, is exactly
//! what the one-pass decode gives:
//!
//! The file is cut as `H [ E ] T`, where `[` opens the resources array (found by its line,
//! `\n  "resources": [`) and `]` closes it (`\n  ],\n  "intents": `). The skeleton `H [] T` is
//! parsed on its own, and is accepted only if its `resources` value is that very `[]` (checked
//! by position). `E` is cut at `},\n    {` lines into pieces `P1 , P2 , …`, and each `[ Pi ]` is
//! parsed on its own thread. If every piece parses, the commas between them are structural and
//! `[ E ]` is the array of all their elements in order — so the file parses as the skeleton with
//! those resources. Mis-guessed cuts (inside a string, inside a nested object) make some piece
//! fail to parse, never parse differently.
//!
//! To give each piece its own brackets without copying it, the cut `},\n    {` is rewritten in
//! place to `}]\n   [{` while the threads run, and put back before returning.

use std::collections::BTreeMap;
use std::path::Path;

use matih_addrs::ResourceAddr;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{IntentV2, OutputV2, ResourceList, assemble_v2};
use crate::model::{ResourceState, State};

const OPEN: &[u8] = b"\n  \"resources\": [";
const CLOSE: &[u8] = b"\n  ],\n  \"intents\": ";
/// Between two elements of the resources array as `encode` writes them. The comma is at 1, and
/// the last space (where the next piece's `[` goes) at 6.
const CUT: &[u8] = b"},\n    {";

/// A version 2 file with the resources left unparsed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Skeleton<'a> {
    #[allow(dead_code)] // checked by the header probe
    format_version: u32,
    #[allow(dead_code)] // informational
    tool_version: String,
    serial: u64,
    lineage: String,
    #[serde(borrow)]
    resources: &'a RawValue,
    #[serde(borrow)]
    intents: Vec<IntentV2<'a>>,
    deposed: ResourceList,
    outputs: BTreeMap<String, OutputV2>,
    #[serde(default)]
    schema_versions: BTreeMap<String, u32>,
}

/// Decodes `buf` on up to `threads` threads. `buf` is modified while this runs and restored
/// before it returns.
pub(super) fn decode_v2(buf: &mut [u8], path: &Path, threads: usize) -> Option<State> {
    let open = find(buf, OPEN)? + OPEN.len() - 1; // at `[`
    let close = rfind(buf, CLOSE)? + 3; // at `]`
    if close <= open {
        return None;
    }

    let mut skeleton = Vec::with_capacity(open + 2 + (buf.len() - close));
    skeleton.extend_from_slice(&buf[..=open]);
    skeleton.extend_from_slice(&buf[close..]);
    let file: Skeleton = serde_json::from_slice(&skeleton).ok()?;
    let raw = file.resources.get();
    if raw != "[]" || raw.as_ptr() as usize - skeleton.as_ptr() as usize != open {
        return None;
    }

    let cuts = cuts(&buf[open..=close], threads).into_iter().map(|c| open + c).collect();
    let restore = Restore::new(buf, cuts);
    let mut bounds = Vec::with_capacity(restore.cuts.len() + 1);
    let mut start = open;
    for &c in &restore.cuts {
        bounds.push((start, c + 1));
        start = c + 5;
    }
    bounds.push((start, close + 1));

    let text: &[u8] = restore.buf;
    let parse = |(from, to): (usize, usize)| -> Option<Vec<(ResourceAddr, ResourceState)>> {
        let list: ResourceList = serde_json::from_slice(&text[from..to]).ok()?;
        list.checked(path).ok()
    };
    let parsed: Vec<Option<Vec<_>>> = std::thread::scope(|scope| {
        let rest: Vec<_> = bounds[1..].iter().map(|&b| scope.spawn(move || parse(b))).collect();
        let mut all = vec![parse(bounds[0])];
        all.extend(rest.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))));
        all
    });
    drop(restore);

    let resources = parsed.into_iter().collect::<Option<Vec<_>>>()?;
    let mut state =
        assemble_v2(path, file.serial, file.lineage, resources, file.intents, file.deposed, file.outputs).ok()?;
    state.schema_versions = super::schema_versions(path, file.schema_versions).ok()?;
    Some(state)
}

/// Offsets in `array` (which runs from `[` to `]`) of the commas at which to cut it into up to
/// `n` pieces of about equal size.
fn cuts(array: &[u8], n: usize) -> Vec<usize> {
    let mut cuts = Vec::with_capacity(n);
    let mut from = 0;
    for j in 1..n {
        let target = (array.len() * j / n).max(from);
        let Some(at) = find(&array[target..], CUT) else {
            break;
        };
        let comma = target + at + 1;
        cuts.push(comma);
        from = comma + CUT.len();
    }
    cuts
}

/// Turns each cut `},\n    {` into `}]\n   [{` for as long as it lives.
struct Restore<'a> {
    buf: &'a mut [u8],
    cuts: Vec<usize>,
}

impl<'a> Restore<'a> {
    fn new(buf: &'a mut [u8], cuts: Vec<usize>) -> Self {
        for &c in &cuts {
            debug_assert_eq!(&buf[c - 1..c + 7], CUT);
            buf[c] = b']';
            buf[c + 5] = b'[';
        }
        Restore { buf, cuts }
    }
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        for &c in &self.cuts {
            self.buf[c] = b',';
            self.buf[c + 5] = b' ';
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_element_boundaries_only() {
        let array = b"[\n    {\"a\": 1},\n    {\"b\": {\"c\": [\n        {},\n        {}]}},\n    {\"d\": 3}\n  ]";
        for n in 1..6 {
            let mut buf = array.to_vec();
            let cuts = cuts(&buf, n);
            assert!(cuts.len() < n);
            let restore = Restore::new(&mut buf, cuts.clone());
            let mut start = 0;
            let mut elements = 0;
            for end in cuts.iter().map(|c| c + 1).chain([array.len()]) {
                let piece: Vec<serde_json::Value> = serde_json::from_slice(&restore.buf[start..end]).unwrap();
                elements += piece.len();
                start = end + 4;
            }
            assert_eq!(elements, 3, "n = {n}");
            drop(restore);
            assert_eq!(buf, array.to_vec(), "n = {n}: restored");
        }
    }
}
