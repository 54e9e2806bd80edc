//! The first stage of decoding a `ReportRequest`, doing what Percona's front end does before any
//! field is looked at: Go's `encoding/json` reads the body's first JSON value (at most 10,000 levels
//! deep) and nothing after it; protojson then refuses invalid UTF-8, an escape that is not a
//! character (a lone surrogate), and a field of the request, a report or a metric given twice, and
//! skips unknown fields whatever they hold. One pass over the bytes, without recursion, so that the
//! two decoders after it see only what both can read, and answer alike.

use std::borrow::Cow;
use std::ops::Range;

use super::IngestError;

/// Go's `encoding/json` refuses a value nested deeper than this (`maxNestingDepth`), counting the
/// request object itself as the first level.
pub const MAX_DEPTH: usize = 10_000;

/// The fields of the three messages, by JSON name and proto name; protojson takes either, once.
const REQUEST_FIELDS: &[(&str, &str)] = &[("reports", "reports")];
const REPORT_FIELDS: &[(&str, &str)] = &[
    ("id", "id"),
    ("createTime", "create_time"),
    ("instanceId", "instance_id"),
    ("productFamily", "product_family"),
    ("metrics", "metrics"),
];
const METRIC_FIELDS: &[(&str, &str)] = &[("key", "key"), ("value", "value")];
/// Where the repeated message fields sit in those lists.
const REPORTS_FIELD: usize = 0;
const METRICS_FIELD: usize = 4;

/// The first JSON value of a body that passed every check above.
pub(super) struct Scanned<'a> {
    pub value: &'a [u8],
    /// Where in `value` the values of unknown fields of the request, its reports and their metrics are.
    unknown: Vec<Range<usize>>,
}

impl Scanned<'_> {
    /// The value with every unknown field's value replaced by `0`: the same request to a decoder, but
    /// one that a recursive parser can read whatever the unknown fields held.
    pub fn without_unknown_fields(&self) -> Cow<'_, [u8]> {
        if self.unknown.is_empty() {
            return Cow::Borrowed(self.value);
        }
        let mut pruned = Vec::with_capacity(self.value.len());
        let mut from = 0;
        for range in &self.unknown {
            pruned.extend_from_slice(&self.value[from..range.start]);
            pruned.push(b'0');
            from = range.end;
        }
        pruned.extend_from_slice(&self.value[from..]);
        Cow::Owned(pruned)
    }
}

/// What a value is to the schema, which decides what its members and elements are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Request,
    ReportList,
    Report,
    MetricList,
    Metric,
    /// The value of a known scalar field, or anything inside a value that is not a message.
    Plain,
    /// The value of an unknown field of a message: skipped, and left out for the tree decoder.
    Unknown,
}

struct Frame {
    role: Role,
    is_object: bool,
    /// Fields of a message seen so far, by their index in the message's field list.
    seen: u8,
    /// Elements of an array begun so far.
    elements: usize,
    /// Where an unknown field's value began, when this container is that value.
    unknown_from: Option<usize>,
}

impl Frame {
    fn fields(&self) -> &'static [(&'static str, &'static str)] {
        match (self.role, self.is_object) {
            (Role::Request, true) => REQUEST_FIELDS,
            (Role::Report, true) => REPORT_FIELDS,
            (Role::Metric, true) => METRIC_FIELDS,
            _ => &[],
        }
    }

    /// The role of a member's value, given which known field (if any) its key named.
    fn member_role(&self, field: Option<usize>) -> Role {
        match (self.fields().is_empty(), field) {
            (true, _) => Role::Plain,
            (false, None) => Role::Unknown,
            (false, Some(REPORTS_FIELD)) if self.role == Role::Request => Role::ReportList,
            (false, Some(METRICS_FIELD)) if self.role == Role::Report => Role::MetricList,
            (false, Some(_)) => Role::Plain,
        }
    }

    fn element_role(&self) -> Role {
        match self.role {
            Role::ReportList => Role::Report,
            Role::MetricList => Role::Metric,
            _ => Role::Plain,
        }
    }
}

/// The body's first JSON value, checked; `None` for a body of whitespace only, which Percona's
/// front end reads as an empty request.
pub(super) fn first_value(body: &[u8]) -> Result<Option<Scanned<'_>>, IngestError> {
    let mut scanner = Scanner {
        bytes: body,
        pos: 0,
        stack: Vec::new(),
        unknown: Vec::new(),
    };
    scanner.skip_whitespace();
    if scanner.pos == body.len() {
        return Ok(None);
    }
    let start = scanner.pos;
    scanner.value(Role::Request)?;
    let value = &body[start..scanner.pos];
    // Outside strings only ASCII is valid JSON, so this checks exactly the strings' UTF-8.
    if let Err(error) = std::str::from_utf8(value) {
        return Err(syntax(start + error.valid_up_to(), "invalid UTF-8"));
    }
    let unknown = scanner
        .unknown
        .into_iter()
        .map(|range| range.start - start..range.end - start)
        .collect();
    Ok(Some(Scanned { value, unknown }))
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Frame>,
    unknown: Vec<Range<usize>>,
}

impl<'a> Scanner<'a> {
    /// Reads one whole value of the given role, iteratively, leaving `pos` just after it.
    fn value(&mut self, mut role: Role) -> Result<(), IngestError> {
        loop {
            self.skip_whitespace();
            let begin = self.pos;
            match self.peek() {
                Some(open @ (b'{' | b'[')) => {
                    self.pos += 1;
                    let is_object = open == b'{';
                    let role_here = match (role, is_object) {
                        (Role::Request | Role::Report | Role::Metric, true)
                        | (Role::ReportList | Role::MetricList, false) => role,
                        (Role::Unknown, _) => Role::Unknown,
                        _ => Role::Plain,
                    };
                    self.stack.push(Frame {
                        role: role_here,
                        is_object,
                        seen: 0,
                        elements: 0,
                        unknown_from: (role == Role::Unknown).then_some(begin),
                    });
                    if self.stack.len() > MAX_DEPTH {
                        return Err(syntax(
                            begin,
                            &format!("nesting deeper than {MAX_DEPTH} levels"),
                        ));
                    }
                    self.skip_whitespace();
                    let close = if is_object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        self.close_container();
                    } else if is_object {
                        role = self.member()?;
                        continue;
                    } else {
                        role = self.element();
                        continue;
                    }
                }
                Some(b'"') => {
                    self.string(false)?;
                    self.close_scalar(role, begin);
                }
                Some(b'-' | b'0'..=b'9') => {
                    self.number()?;
                    self.close_scalar(role, begin);
                }
                Some(b't') => self.literal(b"true", role, begin)?,
                Some(b'f') => self.literal(b"false", role, begin)?,
                Some(b'n') => self.literal(b"null", role, begin)?,
                Some(_) => return Err(syntax(begin, "expected a value")),
                None => return Err(syntax(begin, "unexpected end of input")),
            }
            // A value ended: continue its container, or finish.
            loop {
                let Some(top) = self.stack.last() else {
                    return Ok(());
                };
                let (is_object, close) = (top.is_object, if top.is_object { b'}' } else { b']' });
                self.skip_whitespace();
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        role = if is_object {
                            self.member()?
                        } else {
                            self.element()
                        };
                        break;
                    }
                    Some(byte) if byte == close => {
                        self.pos += 1;
                        self.close_container();
                    }
                    _ => {
                        return Err(syntax(
                            self.pos,
                            if is_object {
                                "expected ',' or '}'"
                            } else {
                                "expected ',' or ']'"
                            },
                        ));
                    }
                }
            }
        }
    }

    /// Reads `"key":` of the innermost object and returns the role of the value that follows.
    fn member(&mut self) -> Result<Role, IngestError> {
        self.skip_whitespace();
        if self.peek() != Some(b'"') {
            return Err(syntax(self.pos, "expected a string as object key"));
        }
        let frame = self.stack.last().expect("inside an object");
        let fields = frame.fields();
        let key = self.string(!fields.is_empty())?;
        let field = key.as_deref().and_then(|key| {
            fields
                .iter()
                .position(|(json, proto)| key == *json || key == *proto)
        });
        if let Some(index) = field {
            let frame = self.stack.last_mut().expect("inside an object");
            if frame.seen & (1 << index) != 0 {
                return Err(IngestError::DuplicateField {
                    path: self.path(),
                    field: key.map(Cow::into_owned).unwrap_or_default(),
                });
            }
            frame.seen |= 1 << index;
        }
        self.skip_whitespace();
        if self.peek() != Some(b':') {
            return Err(syntax(self.pos, "expected ':'"));
        }
        self.pos += 1;
        Ok(self
            .stack
            .last()
            .expect("inside an object")
            .member_role(field))
    }

    /// Counts a new element of the innermost array and returns its role.
    fn element(&mut self) -> Role {
        let frame = self.stack.last_mut().expect("inside an array");
        frame.elements += 1;
        frame.element_role()
    }

    fn close_container(&mut self) {
        let frame = self.stack.pop().expect("a container was open");
        if let Some(from) = frame.unknown_from {
            self.unknown.push(from..self.pos);
        }
    }

    fn close_scalar(&mut self, role: Role, begin: usize) {
        if role == Role::Unknown {
            self.unknown.push(begin..self.pos);
        }
    }

    fn literal(&mut self, word: &[u8], role: Role, begin: usize) -> Result<(), IngestError> {
        if !self.bytes[self.pos..].starts_with(word) {
            return Err(syntax(self.pos, "invalid literal"));
        }
        self.pos += word.len();
        self.close_scalar(role, begin);
        Ok(())
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<(), IngestError> {
        let begin = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(syntax(begin, "invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(syntax(begin, "invalid number"));
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(syntax(begin, "invalid number"));
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    /// Reads a string from its opening quote; with `decode`, returns its text (object keys of
    /// messages), borrowed from the body unless it has escapes. UTF-8 is checked once for the whole
    /// value, by the caller: until then, an invalid sequence reads as U+FFFD.
    fn string(&mut self, decode: bool) -> Result<Option<Cow<'a, str>>, IngestError> {
        let begin = self.pos;
        self.pos += 1;
        // Filled only once an escape is met: before it, the text is the body's own bytes.
        let mut unescaped: Option<Vec<u8>> = None;
        let mut run_start = self.pos;
        loop {
            let run = self.bytes[self.pos..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .ok_or_else(|| syntax(begin, "unterminated string"))?;
            self.pos += run;
            match self.bytes[self.pos] {
                b'"' => {
                    let run = &self.bytes[run_start..self.pos];
                    self.pos += 1;
                    if !decode {
                        return Ok(None);
                    }
                    return Ok(Some(match unescaped {
                        None => String::from_utf8_lossy(run),
                        Some(mut text) => {
                            text.extend_from_slice(run);
                            Cow::Owned(String::from_utf8_lossy(&text).into_owned())
                        }
                    }));
                }
                b'\\' => {
                    let run = &self.bytes[run_start..self.pos];
                    let character = self.escape()?;
                    if decode {
                        let text = unescaped.get_or_insert_with(Vec::new);
                        text.extend_from_slice(run);
                        text.extend_from_slice(character.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                    run_start = self.pos;
                }
                _ => return Err(syntax(self.pos, "control character in string")),
            }
        }
    }

    /// Reads one escape from its backslash. protojson refuses a `\u` escape of a surrogate unless
    /// a low one immediately follows a high one, the pair making one character.
    fn escape(&mut self) -> Result<char, IngestError> {
        let begin = self.pos;
        let simple = match self.bytes.get(self.pos + 1) {
            Some(b'"') => Some('"'),
            Some(b'\\') => Some('\\'),
            Some(b'/') => Some('/'),
            Some(b'b') => Some('\u{8}'),
            Some(b'f') => Some('\u{c}'),
            Some(b'n') => Some('\n'),
            Some(b'r') => Some('\r'),
            Some(b't') => Some('\t'),
            Some(b'u') => None,
            _ => return Err(syntax(begin, "invalid escape")),
        };
        if let Some(character) = simple {
            self.pos += 2;
            return Ok(character);
        }
        let first = self.hex_escape()?;
        if let Some(character) = char::from_u32(first) {
            return Ok(character);
        }
        if (0xD800..0xDC00).contains(&first) && self.bytes[self.pos..].starts_with(b"\\u") {
            let second = self.hex_escape()?;
            if (0xDC00..0xE000).contains(&second) {
                let combined = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                return char::from_u32(combined).ok_or_else(|| syntax(begin, "invalid escape"));
            }
        }
        Err(syntax(begin, "a \\u escape of a lone surrogate"))
    }

    /// `\uXXXX` from its backslash.
    fn hex_escape(&mut self) -> Result<u32, IngestError> {
        let begin = self.pos;
        let digits = self
            .bytes
            .get(self.pos + 2..self.pos + 6)
            .filter(|digits| digits.iter().all(u8::is_ascii_hexdigit))
            .ok_or_else(|| syntax(begin, "invalid \\u escape"))?;
        let value = digits.iter().fold(0, |value, digit| {
            value * 16 + char::from(*digit).to_digit(16).unwrap_or(0)
        });
        self.pos += 6;
        Ok(value)
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Where the innermost object is, as the decoders' messages name it: `reports[2].metrics[0]`.
    fn path(&self) -> String {
        let mut path = String::new();
        for frame in &self.stack {
            match frame.role {
                Role::ReportList => path.push_str(&format!("reports[{}]", frame.elements - 1)),
                Role::MetricList => path.push_str(&format!(".metrics[{}]", frame.elements - 1)),
                _ => {}
            }
        }
        if path.is_empty() {
            "request".to_owned()
        } else {
            path
        }
    }
}

fn syntax(at: usize, problem: &str) -> IngestError {
    IngestError::InvalidJson(format!("{problem} at byte {at}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(body: &str) -> Result<Option<String>, IngestError> {
        first_value(body.as_bytes()).map(|scanned| {
            scanned.map(|s| String::from_utf8(s.without_unknown_fields().into_owned()).unwrap())
        })
    }

    #[test]
    fn reads_the_first_value_only() {
        assert_eq!(scan("  \n\t").unwrap(), None);
        assert_eq!(
            scan(r#" {"reports":[]} x"#).unwrap().as_deref(),
            Some(r#"{"reports":[]}"#)
        );
        assert_eq!(scan("{}{").unwrap().as_deref(), Some("{}"));
        assert!(scan(r#"{"reports":[]"#).is_err());
    }

    #[test]
    fn duplicate_fields_of_messages_are_refused_anywhere() {
        let cases = [
            (r#"{"reports":[],"reports":[]}"#, "request", "reports"),
            (r#"{"reports":[{"id":"a","id":"b"}]}"#, "reports[0]", "id"),
            (
                r#"{"reports":[{},{"instanceId":"a","instance_id":"b"}]}"#,
                "reports[1]",
                "instance_id",
            ),
            (
                r#"{"reports":[{"createTime":null,"createTime":"x"}]}"#,
                "reports[0]",
                "createTime",
            ),
            (
                r#"{"reports":[{"metrics":[{"key":"OS","value":"x","value":"y"}]}]}"#,
                "reports[0].metrics[0]",
                "value",
            ),
            (
                r#"{"reports":[{"\u0069d":"a","id":"b"}]}"#,
                "reports[0]",
                "id",
            ),
        ];
        for (body, path, field) in cases {
            assert_eq!(
                scan(body),
                Err(IngestError::DuplicateField {
                    path: path.into(),
                    field: field.into()
                }),
                "{body}"
            );
        }
        // Unknown fields, and objects that are not messages, may repeat keys, as protojson skips them.
        for body in [
            r#"{"x":1,"x":2,"reports":[{"other":{"a":1,"a":2},"o":1,"o":2}]}"#,
            r#"{"reports":[{"id":{"a":1,"a":2}}]}"#,
        ] {
            assert!(scan(body).is_ok(), "{body}");
        }
    }

    #[test]
    fn strings_are_characters() {
        for body in [
            r#"{"x":"\ud800"}"#,
            r#"{"x":"\udc00\ud800"}"#,
            r#"{"x":"\ud800\u0041"}"#,
            r#"{"x":"\u12"}"#,
            r#"{"x":"\q"}"#,
            "{\"x\":\"a\tb\"}",
        ] {
            assert!(
                matches!(scan(body), Err(IngestError::InvalidJson(_))),
                "{body}"
            );
        }
        assert!(matches!(
            first_value(b"{\"x\":\"\xff\"}"),
            Err(IngestError::InvalidJson(_))
        ));
        assert!(scan(r#"{"x":"\ud83d\ude00\u0000"}"#).is_ok());
    }

    #[test]
    fn nesting_is_limited_as_go_limits_it() {
        let nested = |depth: usize| {
            format!(
                "{{\"x\":{}{}}}",
                "[".repeat(depth - 1),
                "]".repeat(depth - 1)
            )
        };
        assert!(scan(&nested(MAX_DEPTH)).is_ok());
        assert!(matches!(
            scan(&nested(MAX_DEPTH + 1)),
            Err(IngestError::InvalidJson(_))
        ));
    }

    #[test]
    fn unknown_values_are_left_out_for_the_tree_decoder() {
        assert_eq!(
            scan(r#"{"x":[[{"a":1}]],"reports":[{"id":"a","y":"b","metrics":[{"key":"k","z":null}]}]}"#)
                .unwrap()
                .as_deref(),
            Some(r#"{"x":0,"reports":[{"id":"a","y":0,"metrics":[{"key":"k","z":0}]}]}"#)
        );
    }
}
