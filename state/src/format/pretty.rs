//! The pretty-printing layout of state files: serde_json's `PrettyFormatter` with a two-space
//! indent, except that it can start at any depth. That lets parts of one document be rendered
//! separately (on several threads) and joined into exactly the bytes a single pass would give.
//! It also writes each line break and its indentation with one copy rather than one per level.

use std::io;

use serde_json::ser::Formatter;

/// Enough for 60 levels; deeper indentation is written in pieces.
const NEWLINE_INDENT: &[u8] =
    b"\n                                                                                                                        ";

pub(super) struct Pretty {
    level: usize,
    has_value: bool,
}

impl Pretty {
    /// A formatter for a value that sits `level` levels deep in the document.
    pub(super) fn at(level: usize) -> Self {
        Pretty { level, has_value: false }
    }
}

/// Writes a line break and the indentation for `level`, preceded by a comma unless `first`.
pub(super) fn line<W: ?Sized + io::Write>(w: &mut W, first: bool, level: usize) -> io::Result<()> {
    if !first {
        w.write_all(b",")?;
    }
    let mut spaces = 2 * level;
    let n = spaces.min(NEWLINE_INDENT.len() - 1);
    w.write_all(&NEWLINE_INDENT[..1 + n])?;
    spaces -= n;
    while spaces > 0 {
        let n = spaces.min(NEWLINE_INDENT.len() - 1);
        w.write_all(&NEWLINE_INDENT[1..1 + n])?;
        spaces -= n;
    }
    Ok(())
}

impl Formatter for Pretty {
    #[inline]
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(b"[")
    }

    #[inline]
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level -= 1;
        if self.has_value {
            line(w, true, self.level)?;
        }
        w.write_all(b"]")
    }

    #[inline]
    fn begin_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        line(w, first, self.level)
    }

    #[inline]
    fn end_array_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    #[inline]
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(b"{")
    }

    #[inline]
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level -= 1;
        if self.has_value {
            line(w, true, self.level)?;
        }
        w.write_all(b"}")
    }

    #[inline]
    fn begin_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        line(w, first, self.level)
    }

    #[inline]
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    #[inline]
    fn end_object_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[test]
    fn matches_serde_json_pretty_at_level_zero() {
        let deep = (0..70).fold(serde_json::json!("leaf"), |v, i| serde_json::json!({ format!("k{i}"): [v, {}, []] }));
        let v = serde_json::json!({ "a": [], "b": {}, "c": [1, {"x": null}], "d": "s\n\"", "deep": deep });
        let mut ours = Vec::new();
        v.serialize(&mut serde_json::Serializer::with_formatter(&mut ours, Pretty::at(0))).unwrap();
        assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string_pretty(&v).unwrap());
    }
}
