//! PostgreSQL array literals (`{"a",NULL,"b"}`), for passing an array per row through `UNNEST`,
//! which cannot take an array of arrays whose rows differ in length; the statement casts each
//! literal back (`::text[]`, `::bigint[]`).

use std::fmt::{Display, Write};

/// A text[] literal: every string quoted, `"` and `\` escaped, `None` as NULL.
pub(super) fn text<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> String {
    let mut literal = String::from("{");
    for (index, value) in values.into_iter().enumerate() {
        if index > 0 {
            literal.push(',');
        }
        let Some(value) = value else {
            literal.push_str("NULL");
            continue;
        };
        literal.push('"');
        let mut rest = value;
        while let Some(at) = rest.find(['"', '\\']) {
            literal.push_str(&rest[..at]);
            literal.push('\\');
            literal.push_str(&rest[at..=at]);
            rest = &rest[at + 1..];
        }
        literal.push_str(rest);
        literal.push('"');
    }
    literal.push('}');
    literal
}

/// A literal of an array whose values print as PostgreSQL reads them, unquoted: numbers
/// (integer[], bigint[]) and UUIDs. `None` as NULL.
pub(super) fn unquoted<T: Display>(values: impl IntoIterator<Item = Option<T>>) -> String {
    let mut literal = String::from("{");
    for (index, value) in values.into_iter().enumerate() {
        if index > 0 {
            literal.push(',');
        }
        match value {
            Some(value) => write!(literal, "{value}").expect("writing to a String cannot fail"),
            None => literal.push_str("NULL"),
        }
    }
    literal.push('}');
    literal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_literals_escape_quotes_and_backslashes_and_keep_nulls() {
        let values = [
            Some("8.0"),
            Some(r#"a"b\c"#),
            Some("{x,y}"),
            None,
            Some("NULL"),
        ];
        assert_eq!(text(values), r#"{"8.0","a\"b\\c","{x,y}",NULL,"NULL"}"#);
        assert_eq!(text([]), "{}");
    }

    #[test]
    fn unquoted_literals_keep_nulls_and_take_uuids() {
        assert_eq!(unquoted([Some(-1_i64), None, Some(7)]), "{-1,NULL,7}");
        assert_eq!(unquoted::<i32>([]), "{}");
        let id = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(
            unquoted([Some(id)]),
            "{01234567-89ab-cdef-0123-456789abcdef}"
        );
    }
}
