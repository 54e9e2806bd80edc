//! How a report's metrics are written to `reports.metrics`: a JSON array of `{"key","value"}` pairs,
//! in the order sent, exactly as sent. The one exception is U+0000, which Percona accepts in any
//! string but PostgreSQL's `text` and `jsonb` cannot hold: a pair whose key or value has one is
//! stored with `"nul_escaped": true`, and in its key and value every U+0000 is written `\0` and
//! every backslash `\\`. Nothing else changes, so every other pair reads as sent, and the escaped
//! ones decode back to exactly what was sent (`analytics.metric_bytes()`, docs/analytics.md).

use std::borrow::Cow;

use serde::Serialize;

use crate::report::Metric;

/// Whether PostgreSQL `text` can hold the string: a value that cannot is never lifted out of the
/// metrics into a column of its own (it stays, escaped, in `reports.metrics`).
pub fn fits_text(text: &str) -> bool {
    !text.contains('\0')
}

/// `reports.metrics` for the given pairs, as JSON text for a `::jsonb` cast.
pub fn to_json(metrics: &[Metric]) -> String {
    #[derive(Serialize)]
    struct StoredPair<'a> {
        key: Cow<'a, str>,
        value: Cow<'a, str>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        nul_escaped: bool,
    }
    let pairs: Vec<StoredPair> = metrics
        .iter()
        .map(|metric| {
            if fits_text(&metric.key) && fits_text(&metric.value) {
                StoredPair {
                    key: Cow::Borrowed(&metric.key),
                    value: Cow::Borrowed(&metric.value),
                    nul_escaped: false,
                }
            } else {
                StoredPair {
                    key: Cow::Owned(escape(&metric.key)),
                    value: Cow::Owned(escape(&metric.value)),
                    nul_escaped: true,
                }
            }
        })
        .collect();
    serde_json::to_string(&pairs).expect("a list of string pairs always serialises")
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\0' => escaped.push_str("\\0"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(key: &str, value: &str) -> Metric {
        Metric {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn pairs_without_nul_are_stored_as_sent() {
        let metrics = [pair("OS", r#"C:\ "quoted" \0 é"#), pair("", "")];
        let stored: serde_json::Value = serde_json::from_str(&to_json(&metrics)).unwrap();
        assert_eq!(
            stored,
            serde_json::json!([{"key": "OS", "value": r#"C:\ "quoted" \0 é"#}, {"key": "", "value": ""}])
        );
    }

    #[test]
    fn pairs_with_nul_are_escaped_whole() {
        let metrics = [pair("k\0", r"a\0b\c"), pair("k", "\0")];
        let stored = to_json(&metrics);
        assert!(!stored.contains("\\u0000"), "{stored}");
        let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(
            stored,
            serde_json::json!([
                {"key": r"k\0", "value": r"a\\0b\\c", "nul_escaped": true},
                {"key": "k", "value": r"\0", "nul_escaped": true},
            ])
        );
    }
}
