//! Compute list filters (`?filter=`), in both styles the API accepts:
//! - AIP-160: `name = x`, `name != x`, `labels.k = v`, `labels.k:*` (presence), `name:pre*`,
//!   `description = "two words"`, `mtu > 1400`, combined with `AND` (or juxtaposition), `OR`,
//!   `NOT`/`-` and parentheses: `(a = 1) (b = 2)`;
//! - regular expressions: `name eq 'matih-.*'`, `name ne x`, one bare comparison or several in
//!   parentheses; the pattern must match the whole value (RE2 via the `regex` crate).
//!
//! Mixing the two styles in one filter is refused, as compute refuses it. Fields are dotted JSON
//! paths into the resource as GET answers it; a repeated field matches if any element does.
//! Not done: functions, timestamps, `~` operators, or the wildcard `*` inside `=` values.

use regex::Regex;
use serde_json::Value;

/// A parsed filter.
#[derive(Debug)]
pub(crate) struct Filter(Option<Expr>);

#[derive(Debug)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Cmp { field: String, op: Op, value: String, re: Option<Regex> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Has,
    Lt,
    Le,
    Gt,
    Ge,
    ReEq,
    ReNe,
}

/// Why a filter was refused: the message compute sends.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FilterError(pub String);

impl Filter {
    pub(crate) fn parse(s: &str) -> Result<Filter, FilterError> {
        let mut p = Parser { c: s.chars().collect(), i: 0, aip: false, re: false };
        p.ws();
        if p.eof() {
            return Ok(Filter(None));
        }
        let e = p.or()?;
        p.ws();
        if !p.eof() {
            return Err(p.err());
        }
        if p.aip && p.re {
            return Err(FilterError(format!(
                "Invalid list filter expression '{s}': the eq/ne and AIP-160 styles cannot be mixed."
            )));
        }
        Ok(Filter(Some(e)))
    }

    pub(crate) fn matches(&self, v: &Value) -> bool {
        self.0.as_ref().is_none_or(|e| e.matches(v))
    }
}

struct Parser {
    c: Vec<char>,
    i: usize,
    aip: bool,
    re: bool,
}

impl Parser {
    fn eof(&self) -> bool {
        self.i >= self.c.len()
    }

    fn peek(&self) -> Option<char> {
        self.c.get(self.i).copied()
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.i += 1;
        }
    }

    fn err(&self) -> FilterError {
        let s: String = self.c.iter().collect();
        FilterError(format!("Invalid list filter expression '{s}'."))
    }

    /// Consumes `k` if it stands alone here (followed by space, `(` or the end).
    fn keyword(&mut self, k: &str) -> bool {
        let n = k.chars().count();
        let word: String = self.c.iter().skip(self.i).take(n).collect();
        let after = self.c.get(self.i + n).copied();
        if word == k && after.is_none_or(|c| c.is_whitespace() || c == '(') {
            self.i += n;
            return true;
        }
        false
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut v = vec![self.and()?];
        loop {
            self.ws();
            if !self.keyword("OR") {
                break;
            }
            self.aip = true;
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 { v.pop().expect("one") } else { Expr::Or(v) })
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut v = vec![self.unary()?];
        loop {
            self.ws();
            if self.eof() || self.peek() == Some(')') {
                break;
            }
            let save = self.i;
            if self.keyword("OR") {
                self.i = save;
                break;
            }
            if self.keyword("AND") {
                self.aip = true;
            }
            v.push(self.unary()?);
        }
        Ok(if v.len() == 1 { v.pop().expect("one") } else { Expr::And(v) })
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        self.ws();
        if self.keyword("NOT") {
            self.aip = true;
            return Ok(Expr::Not(Box::new(self.primary()?)));
        }
        if self.peek() == Some('-') {
            self.i += 1;
            self.aip = true;
            return Ok(Expr::Not(Box::new(self.primary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, FilterError> {
        self.ws();
        if self.peek() == Some('(') {
            self.i += 1;
            let e = self.or()?;
            self.ws();
            if self.peek() != Some(')') {
                return Err(self.err());
            }
            self.i += 1;
            return Ok(e);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, FilterError> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '.' || c == '_') {
            self.i += 1;
        }
        let field: String = self.c[start..self.i].iter().collect();
        if field.is_empty() {
            return Err(self.err());
        }
        self.ws();
        let op = if self.keyword("eq") {
            Op::ReEq
        } else if self.keyword("ne") {
            Op::ReNe
        } else {
            let two: String = self.c.iter().skip(self.i).take(2).collect();
            let (op, n) = match two.as_str() {
                "!=" => (Op::Ne, 2),
                "<=" => (Op::Le, 2),
                ">=" => (Op::Ge, 2),
                _ => match self.peek() {
                    Some('=') => (Op::Eq, 1),
                    Some(':') => (Op::Has, 1),
                    Some('<') => (Op::Lt, 1),
                    Some('>') => (Op::Gt, 1),
                    _ => return Err(self.err()),
                },
            };
            self.i += n;
            op
        };
        if matches!(op, Op::ReEq | Op::ReNe) {
            self.re = true;
        } else {
            self.aip = true;
        }
        self.ws();
        let value = self.value()?;
        let re = match op {
            Op::ReEq | Op::ReNe => Some(Regex::new(&format!("^(?:{value})$")).map_err(|_| self.err())?),
            _ => None,
        };
        Ok(Expr::Cmp { field, op, value, re })
    }

    fn value(&mut self) -> Result<String, FilterError> {
        match self.peek() {
            Some(q @ ('\'' | '"')) => {
                self.i += 1;
                let mut out = String::new();
                loop {
                    match self.peek() {
                        None => return Err(self.err()),
                        Some('\\') if self.c.get(self.i + 1) == Some(&q) => {
                            out.push(q);
                            self.i += 2;
                        }
                        Some(c) if c == q => {
                            self.i += 1;
                            return Ok(out);
                        }
                        Some(c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
            }
            _ => {
                let start = self.i;
                while self.peek().is_some_and(|c| !c.is_whitespace() && c != ')' && c != '(') {
                    self.i += 1;
                }
                if start == self.i {
                    return Err(self.err());
                }
                Ok(self.c[start..self.i].iter().collect())
            }
        }
    }
}

/// A scalar as the filter compares it.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn lookup<'a>(v: &'a Value, field: &str) -> Option<&'a Value> {
    let mut cur = v;
    for part in field.split('.') {
        cur = cur.get(part)?;
    }
    (!cur.is_null()).then_some(cur)
}

impl Expr {
    fn matches(&self, v: &Value) -> bool {
        match self {
            Expr::And(es) => es.iter().all(|e| e.matches(v)),
            Expr::Or(es) => es.iter().any(|e| e.matches(v)),
            Expr::Not(e) => !e.matches(v),
            Expr::Cmp { field, op, value, re } => {
                let found = lookup(v, field);
                let scalars: Vec<String> = match found {
                    Some(Value::Array(a)) => a.iter().filter_map(text).collect(),
                    Some(other) => text(other).into_iter().collect(),
                    None => Vec::new(),
                };
                let any = |f: &dyn Fn(&str) -> bool| scalars.iter().any(|s| f(s));
                match op {
                    Op::Eq => any(&|s| s == value),
                    Op::Ne => !any(&|s| s == value),
                    Op::Has if value == "*" => found.is_some(),
                    Op::Has => match value.strip_suffix('*') {
                        Some(prefix) => any(&|s| s.starts_with(prefix)),
                        None => any(&|s| s == value),
                    },
                    Op::Lt | Op::Le | Op::Gt | Op::Ge => any(&|s| {
                        let ord = match (s.parse::<f64>(), value.parse::<f64>()) {
                            (Ok(a), Ok(b)) => a.partial_cmp(&b),
                            _ => Some(s.cmp(value.as_str())),
                        };
                        ord.is_some_and(|o| match op {
                            Op::Lt => o.is_lt(),
                            Op::Le => o.is_le(),
                            Op::Gt => o.is_gt(),
                            _ => o.is_ge(),
                        })
                    }),
                    Op::ReEq => re.as_ref().is_some_and(|r| any(&|s| r.is_match(s))),
                    Op::ReNe => !re.as_ref().is_some_and(|r| any(&|s| r.is_match(s))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(f: &str, v: &Value) -> bool {
        Filter::parse(f).unwrap_or_else(|e| panic!("{f}: {e:?}")).matches(v)
    }

    #[test]
    fn aip_style() {
        let v = json!({"name": "matih-a", "description": "two words", "labels": {"env": "dev"}, "mtu": 1460,
            "autoCreateSubnetworks": false, "users": ["u1", "u2"]});
        assert!(m("name = matih-a", &v));
        assert!(m("name=matih-a", &v));
        assert!(!m("name = matih", &v));
        assert!(m("name != other", &v));
        assert!(m("description = \"two words\"", &v));
        assert!(m("labels.env = dev", &v));
        assert!(m("labels.env:*", &v) && !m("labels.owner:*", &v));
        assert!(m("name:matih-*", &v));
        assert!(m("(name = matih-a) (labels.env = dev)", &v));
        assert!(m("(name = matih-a) AND (labels.env = dev)", &v));
        assert!(!m("(name = matih-a) AND (labels.env = prod)", &v));
        assert!(m("(name = x) OR (labels.env = dev)", &v));
        assert!(m("NOT labels.env = prod", &v) && m("-labels.env = prod", &v));
        assert!(m("autoCreateSubnetworks = false", &v));
        assert!(m("mtu > 1400", &v) && !m("mtu < 1400", &v));
        assert!(m("users = u2", &v));
        assert!(m("", &v));
    }

    #[test]
    fn regex_style() {
        let v = json!({"name": "matih-dev-net", "description": "x"});
        assert!(m("name eq 'matih-.*'", &v));
        assert!(m("name eq matih-.*-net", &v));
        assert!(!m("name eq 'matih'", &v), "the whole value must match");
        assert!(m("name ne 'other.*'", &v));
        assert!(m("(name eq 'matih-.*') (description eq x)", &v));
    }

    #[test]
    fn bad_filters_are_refused() {
        assert!(Filter::parse("name").is_err());
        assert!(Filter::parse("(name = x").is_err());
        assert!(Filter::parse("name = ").is_err());
        assert!(Filter::parse("(name eq x) (labels.a = b)").is_err(), "styles do not mix");
        assert!(Filter::parse("name eq '('").is_err(), "not a regular expression");
    }
}
