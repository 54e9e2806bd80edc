//! PostgreSQL array literals (`{"a",NULL,"b"}`), for passing an array per row through `UNNEST`,
//! which cannot take an array of arrays whose rows differ in length; the statement casts each
//! literal back (`::text[]`, `::bigint[]`).

use std::fmt::Display;

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
        for c in value.chars() {
            if c == '"' || c == '\\' {
                literal.push('\\');
            }
            literal.push(c);
        }
        literal.push('"');
    }
    literal.push('}');
    literal
}

/// A literal of a numeric array (integer[], bigint[]), `None` as NULL.
pub(super) fn numbers<T: Display>(values: impl IntoIterator<Item = Option<T>>) -> String {
    let items: Vec<String> = values
        .into_iter()
        .map(|value| value.map_or_else(|| "NULL".to_owned(), |value| value.to_string()))
        .collect();
    format!("{{{}}}", items.join(","))
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
    fn number_literals_keep_nulls() {
        assert_eq!(numbers([Some(-1_i64), None, Some(7)]), "{-1,NULL,7}");
        assert_eq!(numbers::<i32>([]), "{}");
    }
}
