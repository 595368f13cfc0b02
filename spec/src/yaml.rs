//! A marked YAML tree: every key and value keeps the span it was written at.
//!
//! Built from saphyr-parser's event stream, so the decoder and the semantic checks can point at
//! the exact key or value they complain about. Scalars keep the text as written (plus whether it
//! was quoted); typing them (integers, booleans, CIDRs) is the decoder's job.
//!
//! Deliberately not supported: more than one document per file (an error), tags other than
//! `!!str` (ignored), merge keys `<<` (the decoder reports them as unknown keys). Aliases are
//! resolved by copying the anchored node, spans included, so errors point at the definition.
//!
//! Limits, so that no input can exhaust the tool: a tree holds at most [`MAX_VALUES`] values,
//! counting every copy an alias makes (a "billion laughs" file of nested aliases stops at the
//! alias that crosses the limit, before anything is copied), and collections nest at most
//! [`MAX_DEPTH`] deep. A platform spec needs a few thousand values and a depth of six or so.

use std::collections::HashMap;
use std::sync::Arc;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle};

use crate::diag::{Pos, Problem, Sink, SourceFile, Span};

/// The most values (scalars and collections, alias copies included) one file may hold.
pub(crate) const MAX_VALUES: usize = 100_000;

/// The deepest collections may nest in one file.
pub(crate) const MAX_DEPTH: usize = 32;

/// A YAML node with its location.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// `~`, `null`, or nothing at all (`key:` with no value).
    Null,
    /// A scalar other than null, as written. `plain` is false when it was quoted, a block
    /// scalar or tagged `!!str`: then it is a string whatever it looks like.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// What the node is, for "expected X, found Y" messages.
    pub(crate) fn describe(&self) -> String {
        match &self.kind {
            Kind::Null => "nothing (null)".to_string(),
            Kind::Scalar { text, plain: true } => format!("`{text}`"),
            Kind::Scalar { text, plain: false } => format!("the string \"{text}\""),
            Kind::Seq(_) => "a list".to_string(),
            Kind::Map(_) => "a mapping".to_string(),
        }
    }

    /// The node at a dotted path below this one (`network.vpc_cidr`, `node_pools[1].name`), or
    /// the deepest node on the way when the path does not exist (e.g. a defaulted field points
    /// at its parent). A path step that names a key resolves to the key's *value*.
    pub(crate) fn locate(&self, path: &str) -> &Node {
        let mut node = self;
        for step in path_steps(path) {
            let next = match (&node.kind, step) {
                (Kind::Map(entries), Step::Key(k)) => {
                    entries.iter().find(|(key, _)| key.scalar_text() == Some(k)).map(|(_, v)| v)
                }
                (Kind::Seq(items), Step::Index(i)) => items.get(i),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node
    }

    /// The key node of the entry at a dotted path (for problems about a key rather than its
    /// value), or what [`Node::locate`] finds when there is no such entry.
    pub(crate) fn locate_key(&self, path: &str) -> &Node {
        let (parent, last) = match path.rfind('.') {
            Some(i) => (self.locate(&path[..i]), &path[i + 1..]),
            None => (self, path),
        };
        if let Kind::Map(entries) = &parent.kind
            && let Some((k, _)) = entries.iter().find(|(k, _)| k.scalar_text() == Some(last))
        {
            return k;
        }
        self.locate(path)
    }

    pub(crate) fn scalar_text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }
}

enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn path_steps(path: &str) -> impl Iterator<Item = Step<'_>> {
    path.split('.').filter(|s| !s.is_empty()).flat_map(|part| {
        let mut steps = Vec::new();
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            steps.push(Step::Key(key));
        }
        while let Some((idx, after)) = rest.split_once(']') {
            if let Ok(i) = idx.parse() {
                steps.push(Step::Index(i));
            }
            rest = after.strip_prefix('[').unwrap_or(after);
        }
        steps
    })
}

/// A collection being built. `counted` is the number of values in the tree when it started.
enum Frame {
    Seq { start: Span, anchor: usize, counted: usize, items: Vec<Node> },
    Map { start: Span, anchor: usize, counted: usize, entries: Vec<(Node, Node)>, key: Option<Node> },
}

/// Parses `file` into a tree. Returns `None` after recording a syntax error. An empty file
/// gives a null node at the start of the file.
pub(crate) fn parse(file: &Arc<SourceFile>, sink: &mut Sink) -> Option<Node> {
    let mut parser = Parser::new_from_str(file.text());
    // Markers carry the line (1-based) and column (0-based, in characters) already; only the
    // byte offset needs converting from the character index.
    let span_of = |m: Marker, e: Marker| {
        let byte = file.byte_of_char(m.index());
        // At the very end of the input the parser's line can run one past the last line:
        // position such a marker from its offset instead (rare, so the scan is affordable).
        let start = if byte < file.text().len() {
            Pos { byte, line: m.line(), col: m.col() + 1 }
        } else {
            file.pos_of_byte(byte)
        };
        Span { start, end: file.byte_of_char(e.index()) }
    };
    let mut stack: Vec<Frame> = Vec::new();
    // Each anchored node with the number of values it holds (itself included).
    let mut anchors: HashMap<usize, (Node, usize)> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut documents = 0;
    // Values in the tree so far, alias copies included.
    let mut counted = 0usize;
    let too_many = |sink: &mut Sink, span: Span, alias: bool| {
        let (message, help) = if alias {
            (
                format!("this alias makes the file hold more than {MAX_VALUES} values"),
                "aliases may repeat a node, not multiply the file: write the values out, or anchor fewer \
                 levels of aliases (nested aliases double the file at every level, a YAML \"billion laughs\")",
            )
        } else {
            (
                format!("the file holds more than {MAX_VALUES} values"),
                "a platform spec needs a few thousand at most: check for generated or repeated content",
            )
        };
        sink.error(file, span, Problem::new(message, "limit reached here").help(help));
    };

    while let Some(next) = parser.next_event() {
        let (event, raw) = match next {
            Ok(ev) => ev,
            Err(e) => {
                // Positioned from the byte offset: the parser's line count can run past the
                // last line when it fails at the end of the input.
                let byte = file.byte_of_char(e.marker().index());
                let span = Span { start: file.pos_of_byte(byte), end: byte };
                sink.error(
                    file,
                    span,
                    Problem::new(format!("YAML syntax error: {}", e.info()), "here")
                        .help("check the indentation and quoting on this line and the one before"),
                );
                return None;
            }
        };
        let span = span_of(raw.start, raw.end);
        let finished = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    sink.error(
                        file,
                        span,
                        Problem::new("a spec file holds exactly one YAML document", "second document starts here")
                            .help("remove the `---` line and everything after it, or move it to its own file"),
                    );
                    return None;
                }
                None
            }
            Event::Scalar(text, style, anchor, tag) => {
                let forced_str = tag.as_ref().is_some_and(|t| t.is_yaml_core_schema() && t.suffix == "str");
                let plain = style == ScalarStyle::Plain && !forced_str;
                let kind = if plain && matches!(&*text, "" | "~" | "null" | "Null" | "NULL") {
                    Kind::Null
                } else {
                    Kind::Scalar { text: text.into_owned(), plain }
                };
                counted += 1;
                if counted > MAX_VALUES {
                    too_many(sink, span, false);
                    return None;
                }
                let node = Node { kind, span };
                if anchor > 0 {
                    anchors.insert(anchor, (node.clone(), 1));
                }
                Some(node)
            }
            Event::Alias(id) => match anchors.get(&id) {
                // Counted before copying: the copy is only made when it fits.
                Some((node, values)) => {
                    counted += values;
                    if counted > MAX_VALUES {
                        too_many(sink, span, true);
                        return None;
                    }
                    Some(node.clone())
                }
                None => None, // the parser rejects an alias without its anchor
            },
            Event::SequenceStart(..) | Event::MappingStart(..) if stack.len() >= MAX_DEPTH => {
                sink.error(
                    file,
                    span,
                    Problem::new(format!("lists and mappings nest more than {MAX_DEPTH} deep here"), "too deep")
                        .help("a platform spec nests six levels or so: check the brackets and indentation"),
                );
                return None;
            }
            Event::SequenceStart(anchor, _) => {
                counted += 1;
                stack.push(Frame::Seq { start: span, anchor, counted, items: Vec::new() });
                None
            }
            Event::MappingStart(anchor, _) => {
                counted += 1;
                stack.push(Frame::Map { start: span, anchor, counted, entries: Vec::new(), key: None });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (kind, start, anchor, at_start, last_end) = match stack.pop() {
                    Some(Frame::Seq { start, anchor, counted, items }) => {
                        let last = items.last().map(|n| n.span.end);
                        (Kind::Seq(items), start, anchor, counted, last)
                    }
                    Some(Frame::Map { start, anchor, counted, entries, .. }) => {
                        let last = entries.last().map(|(_, v)| v.span.end.max(v.span.start.byte));
                        (Kind::Map(entries), start, anchor, counted, last)
                    }
                    None => continue, // the parser never emits an unbalanced end
                };
                // Block collections end with an empty event at the next line: stop at the last
                // child instead. Flow collections end at their closing bracket.
                let end = if span.end > span.start.byte { span.end } else { last_end.unwrap_or(start.end) };
                let node = Node { kind, span: Span { start: start.start, end } };
                if anchor > 0 {
                    // The collection itself (counted when it started) and everything inside.
                    anchors.insert(anchor, (node.clone(), counted - at_start + 1));
                }
                Some(node)
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => None,
        };
        if let Some(node) = finished {
            match stack.last_mut() {
                None => root = Some(node),
                Some(Frame::Seq { items, .. }) => items.push(node),
                Some(Frame::Map { entries, key, .. }) => match key.take() {
                    None => *key = Some(node),
                    Some(k) => entries.push((k, node)),
                },
            }
        }
    }
    Some(root.unwrap_or(Node { kind: Kind::Null, span: Span::FILE_START }))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn tree(text: &str) -> (Option<Node>, Sink) {
        let file = SourceFile::new(Path::new("t.yaml"), text.to_string());
        let mut sink = Sink::default();
        (parse(&file, &mut sink), sink)
    }

    fn at(n: &Node) -> (usize, usize) {
        (n.span.start.line, n.span.start.col)
    }

    #[test]
    fn locate_finds_values_keys_and_list_items() {
        let (root, _) = tree("a:\n  b: [x, 'y']\n  c:\n    - n: 1\n    - n: 2\n");
        let root = root.unwrap();
        assert_eq!(at(root.locate("a.b[1]")), (2, 10)); // quotes included
        assert_eq!(root.locate("a.b[1]").scalar_text(), Some("y"));
        assert_eq!(at(root.locate("a.c[1].n")), (5, 10));
        assert_eq!(at(root.locate_key("a.c[1].n")), (5, 7));
        // Missing steps stop at the deepest existing node.
        assert_eq!(at(root.locate("a.c[1].missing")), (5, 7));
    }

    #[test]
    fn scalars_keep_text_and_quoting() {
        let (root, _) = tree("v: 1.30\nq: \"1.30\"\nt: !!str 3\nn:\n");
        let Kind::Map(entries) = root.unwrap().kind else { panic!("not a map") };
        let kinds: Vec<_> = entries.iter().map(|(_, v)| v.kind.clone()).collect();
        assert!(matches!(&kinds[0], Kind::Scalar { text, plain: true } if text == "1.30"));
        assert!(matches!(&kinds[1], Kind::Scalar { text, plain: false } if text == "1.30"));
        assert!(matches!(&kinds[2], Kind::Scalar { plain: false, .. }));
        assert!(matches!(&kinds[3], Kind::Null));
    }

    #[test]
    fn aliases_copy_the_anchored_node() {
        let (root, _) = tree("a: &p {x: 1}\nb: *p\n");
        let root = root.unwrap();
        assert_eq!(root.locate("b.x").scalar_text(), Some("1"));
    }

    #[test]
    fn syntax_errors_and_extra_documents_are_located() {
        let (root, sink) = tree("a: [1, 2\nb: 3\n");
        assert!(root.is_none());
        assert!(sink.items[0].message().starts_with("YAML syntax error"));

        let (root, sink) = tree("a: 1\n---\nb: 2\n");
        assert!(root.is_none());
        assert_eq!(sink.items[0].line(), 2);
    }

    #[test]
    fn positions_are_right_after_non_ascii_text() {
        let (root, _) = tree("name: Zoë Ünïcode\nnext: 10.0.0.0/16\n");
        let root = root.unwrap();
        let next = root.locate("next");
        assert_eq!(at(next), (2, 7));
        let text = "name: Zoë Ünïcode\nnext: 10.0.0.0/16\n";
        assert_eq!(&text[next.span.start.byte..next.span.end], "10.0.0.0/16");
    }

    #[test]
    fn empty_file_is_a_null_root() {
        let (root, sink) = tree("# only a comment\n");
        assert!(matches!(root.unwrap().kind, Kind::Null));
        assert!(sink.items.is_empty());
    }
}
