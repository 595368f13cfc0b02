//! Located diagnostics: every problem found in the platform spec names its file, line and
//! column, says what is wrong and how to fix it.
//!
//! Two renderings of the same data:
//! - `Display` on [`Diagnostics`] is plain text, one `file:line:col: message` line per problem
//!   followed by indented `note:` and `help:` lines. It is what CI logs and the tests see.
//! - [`miette::Diagnostic`] for the terminal: each problem carries its source file, a label on
//!   the offending key or value, and its help. Use [`Diagnostics::summary_report`] as the value
//!   to render (see there for why).
//!
//! This module does not decide what is wrong; it only carries and renders findings.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{LabeledSpan, NamedSource, Severity, SourceCode};

/// One file of the platform spec as read from disk, shared by every diagnostic pointing into it.
#[derive(Debug)]
pub(crate) struct SourceFile {
    path: PathBuf,
    named: NamedSource<String>,
    /// Byte offset of every character, when the text is not pure ASCII (saphyr's markers count
    /// characters; miette wants bytes). `None` means character index == byte offset.
    char_bytes: Option<Vec<usize>>,
}

impl SourceFile {
    pub(crate) fn new(path: &Path, text: String) -> Arc<Self> {
        let char_bytes = if text.is_ascii() { None } else { Some(text.char_indices().map(|(b, _)| b).collect()) };
        let named = NamedSource::new(path.display().to_string(), text).with_language("yaml");
        Arc::new(Self { path: path.to_path_buf(), named, char_bytes })
    }

    pub(crate) fn text(&self) -> &str {
        self.named.inner()
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Byte offset of the character with index `char_index` (clamped to the end of the text).
    pub(crate) fn byte_of_char(&self, char_index: usize) -> usize {
        match &self.char_bytes {
            None => char_index.min(self.text().len()),
            Some(v) => v.get(char_index).copied().unwrap_or(self.text().len()),
        }
    }

    /// The position of a byte offset (1-based line and column, column counted in characters).
    pub(crate) fn pos_of_byte(&self, byte: usize) -> Pos {
        let text = self.text();
        let byte = byte.min(text.len());
        let before = &text[..byte];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        Pos { byte, line, col }
    }
}

/// A point in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    /// Byte offset from the start of the file.
    pub byte: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
}

/// A range in a source file: where a key or value was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: Pos,
    /// Byte offset one past the end.
    pub end: usize,
}

impl Span {
    /// The very start of a file, for problems that belong to the file as a whole.
    pub(crate) const FILE_START: Span = Span { start: Pos { byte: 0, line: 1, col: 1 }, end: 0 };

    fn source_span(&self) -> miette::SourceSpan {
        (self.start.byte, self.end.saturating_sub(self.start.byte)).into()
    }
}

/// A secondary location, e.g. where a duplicated name was first defined.
#[derive(Debug, Clone)]
pub(crate) struct Note {
    pub file: Arc<SourceFile>,
    pub span: Span,
    pub message: String,
}

/// One problem in the platform spec, located in one file.
#[derive(Debug, Clone)]
pub struct SpecDiagnostic {
    file: Arc<SourceFile>,
    span: Span,
    message: String,
    label: String,
    help: Option<String>,
    notes: Vec<Note>,
    /// The notes in other files, as their own miette diagnostics (a label can only point into
    /// the diagnostic's own source).
    foreign_notes: Vec<NoteDiagnostic>,
}

impl SpecDiagnostic {
    pub(crate) fn new(
        file: &Arc<SourceFile>,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
        help: Option<String>,
        notes: Vec<Note>,
    ) -> Self {
        let foreign_notes =
            notes.iter().filter(|n| !Arc::ptr_eq(&n.file, file)).map(|n| NoteDiagnostic(n.clone())).collect();
        Self { file: Arc::clone(file), span, message: message.into(), label: label.into(), help, notes, foreign_notes }
    }

    /// The file the problem is in, as it was given to (or found by) [`crate::load`].
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// 1-based line of the offending key or value.
    pub fn line(&self) -> usize {
        self.span.start.line
    }

    /// 1-based column (in characters) of the offending key or value.
    pub fn column(&self) -> usize {
        self.span.start.col
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// How to fix it.
    pub fn help(&self) -> Option<&str> {
        self.help.as_deref()
    }

    fn sort_key(&self) -> (usize, usize) {
        (self.span.start.line, self.span.start.col)
    }
}

impl SpecDiagnostic {
    /// The plain rendering: `file:line:col: message`, then indented `note:` and `help:` lines.
    fn write_plain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.path().display(), self.line(), self.column(), self.message)?;
        for note in &self.notes {
            let Pos { line, col, .. } = note.span.start;
            write!(f, "\n  note: {}:{line}:{col}: {}", note.file.path().display(), note.message)?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// The message alone: miette shows the location, notes and help itself. The plain listing with
/// locations is [`Diagnostics`]' `Display`.
impl fmt::Display for SpecDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpecDiagnostic {}

impl miette::Diagnostic for SpecDiagnostic {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.file.named)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let primary = LabeledSpan::new_primary_with_span(Some(self.label.clone()), self.span.source_span());
        let local = self
            .notes
            .iter()
            .filter(|n| Arc::ptr_eq(&n.file, &self.file))
            .map(|n| LabeledSpan::new_with_span(Some(n.message.clone()), n.span.source_span()));
        Some(Box::new(std::iter::once(primary).chain(local)))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.foreign_notes.is_empty() {
            return None;
        }
        Some(Box::new(self.foreign_notes.iter().map(|n| n as &dyn miette::Diagnostic)))
    }
}

/// A note in another file than its diagnostic, rendered by miette as a related advice.
#[derive(Debug, Clone)]
struct NoteDiagnostic(Note);

impl fmt::Display for NoteDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for NoteDiagnostic {}

impl miette::Diagnostic for NoteDiagnostic {
    fn severity(&self) -> Option<Severity> {
        Some(Severity::Advice)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.0.file.named)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let label = LabeledSpan::new_primary_with_span(Some(self.0.message.clone()), self.0.span.source_span());
        Some(Box::new(std::iter::once(label)))
    }
}

/// Every problem found in one load of the platform spec, in file order (the config file
/// first, then tenant files by name) and by position within a file. Never empty.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    items: Vec<SpecDiagnostic>,
    /// Problems found beyond the [`MAX_LISTED`] that are kept.
    unlisted: usize,
}

/// The most problems one load keeps and lists; the rest are only counted. A file of generated
/// garbage can hold millions, and nobody reads past the first screens.
pub const MAX_LISTED: usize = 200;

impl Diagnostics {
    /// Sorts the problems by file order, then position. `file_order` lists the files in the
    /// order they should be reported.
    pub(crate) fn new(sink: Sink, file_order: &[PathBuf]) -> Self {
        let Sink { mut items, unlisted } = sink;
        debug_assert!(!items.is_empty());
        let rank = |d: &SpecDiagnostic| file_order.iter().position(|p| p == d.path()).unwrap_or(usize::MAX);
        // Stable sort: two problems at the same place keep the order the checks found them in.
        items.sort_by_key(|d| (rank(d), d.sort_key()));
        Self { items, unlisted }
    }

    /// The problems listed, in reporting order (at most [`MAX_LISTED`]).
    pub fn items(&self) -> &[SpecDiagnostic] {
        &self.items
    }

    /// Number of problems found (at least one), listed or not.
    pub fn len(&self) -> usize {
        self.items.len() + self.unlisted
    }

    /// Problems found but not kept, beyond the first [`MAX_LISTED`].
    pub fn unlisted(&self) -> usize {
        self.unlisted
    }

    /// Always false; present because `len` is.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The same problems as a miette diagnostic whose headline is a one-line summary.
    ///
    /// miette's graphical renderer prints a diagnostic's `Display` as its headline before
    /// rendering the `related` diagnostics. `Diagnostics`' own `Display` is the full plain
    /// listing, so rendering `Diagnostics` itself graphically would list every problem twice;
    /// render this instead.
    pub fn summary_report(&self) -> SummaryReport {
        SummaryReport(self.clone())
    }

    fn summary(&self) -> String {
        let mut files: Vec<String> = Vec::new();
        for d in &self.items {
            let name = d.path().display().to_string();
            if !files.contains(&name) {
                files.push(name);
            }
        }
        let n = self.len();
        let problems = if n == 1 { "problem" } else { "problems" };
        format!("invalid platform spec: {n} {problems} in {}", files.join(", "))
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            d.write_plain(f)?;
        }
        if self.unlisted > 0 {
            write!(f, "\n... and {} more problems, not listed: fix these and run `validate` again", self.unlisted)?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl miette::Diagnostic for Diagnostics {
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        Some(Box::new(self.items.iter().map(|d| d as &dyn miette::Diagnostic)))
    }
}

/// [`Diagnostics`] with a one-line headline, for miette's graphical renderer; see
/// [`Diagnostics::summary_report`].
#[derive(Debug, Clone)]
pub struct SummaryReport(Diagnostics);

impl SummaryReport {
    /// The problems behind the summary.
    pub fn diagnostics(&self) -> &Diagnostics {
        &self.0
    }
}

impl fmt::Display for SummaryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.summary())
    }
}

impl std::error::Error for SummaryReport {}

impl miette::Diagnostic for SummaryReport {
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        self.0.related()
    }
}

/// Collects problems while a file is decoded and checked.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    pub items: Vec<SpecDiagnostic>,
    /// Problems past [`MAX_LISTED`], counted only.
    pub unlisted: usize,
}

impl Sink {
    /// Records a problem at `span` in `file`.
    pub(crate) fn error(&mut self, file: &Arc<SourceFile>, span: Span, p: Problem) {
        debug_assert!(p.help.is_some(), "every problem says how to fix it: {}", p.message);
        if self.items.len() >= MAX_LISTED {
            self.unlisted += 1;
            return;
        }
        let (message, label, help) = (printable(p.message), printable(p.label), p.help.map(printable));
        self.items.push(SpecDiagnostic::new(file, span, message, label, help, p.notes));
    }

    /// Takes in the problems `other` recorded (on another thread), after this one's.
    pub(crate) fn absorb(&mut self, other: Sink) {
        let room = MAX_LISTED.saturating_sub(self.items.len()).min(other.items.len());
        self.unlisted += other.unlisted + other.items.len() - room;
        self.items.extend(other.items.into_iter().take(room));
    }
}

/// Text fit for a terminal and a log line: control characters (a value's NUL, or an escape
/// sequence that would drive the terminal) written as escapes, and a message that quotes a huge
/// value cut in the middle.
fn printable(text: String) -> String {
    const MAX: usize = 600;
    let text = if text.chars().any(char::is_control) {
        text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
    } else {
        text
    };
    if text.len() <= MAX {
        return text;
    }
    let head = text.char_indices().map(|(i, _)| i).take_while(|i| *i <= MAX / 2).last().unwrap_or(0);
    let tail = text.char_indices().map(|(i, _)| i).find(|i| *i >= text.len() - MAX / 2).unwrap_or(text.len());
    format!("{} … {}", &text[..head], &text[tail..])
}

/// A finding before it has a location: what is wrong, a short label for the snippet, the fix.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub message: String,
    pub label: String,
    pub help: Option<String>,
    pub notes: Vec<Note>,
}

impl Problem {
    pub(crate) fn new(message: impl Into<String>, label: impl Into<String>) -> Self {
        Self { message: message.into(), label: label.into(), help: None, notes: Vec::new() }
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub(crate) fn note(mut self, note: Note) -> Self {
        self.notes.push(note);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters_not_bytes() {
        let f = SourceFile::new(Path::new("t.yaml"), "a: é\nbb: ü\n".to_string());
        // 'ü' is the 10th character (index 9) but starts at byte 10.
        assert_eq!(f.byte_of_char(9), 10);
        let p = f.pos_of_byte(10);
        assert_eq!((p.line, p.col), (2, 5));
    }

    #[test]
    fn plain_rendering_lists_location_note_and_help() {
        let f = SourceFile::new(Path::new("dir/matih.yaml"), "x: 1\ny: 2\n".to_string());
        let at = |byte| Span { start: f.pos_of_byte(byte), end: byte + 1 };
        let p = Problem::new("bad y", "here").help("fix y").note(Note {
            file: Arc::clone(&f),
            span: at(0),
            message: "x is related".into(),
        });
        let mut sink = Sink::default();
        sink.error(&f, at(5), p);
        sink.error(&f, at(0), Problem::new("bad x", "here").help("fix x"));
        let d = Diagnostics::new(sink, &[PathBuf::from("dir/matih.yaml")]);
        assert_eq!(
            d.to_string(),
            "dir/matih.yaml:1:1: bad x\n  help: fix x\n\
             dir/matih.yaml:2:1: bad y\n  note: dir/matih.yaml:1:1: x is related\n  help: fix y"
        );
        assert_eq!(d.summary_report().to_string(), "invalid platform spec: 2 problems in dir/matih.yaml");
        // miette prints an item's Display as its headline and renders location and help itself.
        assert_eq!(d.items()[1].to_string(), "bad y");
    }

    #[test]
    fn notes_in_other_files_become_related_diagnostics() {
        use miette::Diagnostic as _;
        let a = SourceFile::new(Path::new("a.yaml"), "slug: acme\n".to_string());
        let b = SourceFile::new(Path::new("b.yaml"), "slug: acme\n".to_string());
        let span = Span { start: a.pos_of_byte(6), end: 10 };
        let note = Note { file: Arc::clone(&a), span, message: "first here".into() };
        let d = SpecDiagnostic::new(&b, span, "dup", "again", None, vec![note]);
        assert_eq!(d.labels().unwrap().count(), 1);
        assert_eq!(d.related().unwrap().count(), 1);
    }
}
