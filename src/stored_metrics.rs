//! How a report's metrics are stored: a JSON array of `{"key","value"}` pairs, in the order sent,
//! exactly as sent, as `reports.metrics` shows them. The one exception is U+0000, which Percona
//! accepts in any string but PostgreSQL's `text` and `jsonb` cannot hold: a pair whose key or value
//! has one is stored with `"nul_escaped": true`, and in its key and value every U+0000 is written
//! `\0` and every backslash `\\`. Nothing else changes, so every other pair reads as sent, and the
//! escaped ones decode back to exactly what was sent (`analytics.metric_bytes()`, docs/analytics.md).
//!
//! On disk the pairs are packed ([`pack`]) as the SQL function `pack_metrics()` packs them: the key
//! list and the long values go to `report_metric_values` once per instance and month, and the
//! report's row keeps the short values and the digests of the long ones. Packing here rather than in
//! SQL spares the database's CPU, the scarcest resource of ingest; `tests/api/packing.rs` holds the
//! two to the same bytes.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use crate::report::Metric;

/// Metric values this long in bytes, or longer, are kept once per instance and month in
/// `report_metric_values`; shorter ones stay in the report's row. The SQL function
/// `metric_dictionary_min_bytes()` says the same, for `pack_metrics()`.
pub const DICTIONARY_MIN_BYTES: usize = 32;

/// Whether PostgreSQL `text` can hold the string: a value that cannot is never lifted out of the
/// metrics into a column of its own (it stays, escaped, in `reports.metrics`).
pub fn fits_text(text: &str) -> bool {
    !text.contains('\0')
}

/// A report's metrics in the columns `report_rows` stores them in, and the entries the report needs
/// in `report_metric_values`: what `pack_metrics()` makes of `reports.metrics`. The values are
/// borrowed from the metrics unless they had to be escaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedMetrics<'a> {
    /// [`digest`] of `key_list`: `report_rows.metric_keys`.
    pub keys: i64,
    /// The keys in order, as a JSON array written as PostgreSQL writes `jsonb`.
    pub key_list: String,
    /// The values shorter than [`DICTIONARY_MIN_BYTES`], in order, `None` where a long value is.
    pub short_values: Vec<Option<Cow<'a, str>>>,
    /// The [`digest`] of each long value, in order, `None` where a short value is; `None`
    /// altogether when there is no long value.
    pub value_digests: Option<Vec<Option<i64>>>,
    /// The 1-based positions of the pairs stored `nul_escaped`; `None` when there is none.
    pub nul_escaped: Option<Vec<i32>>,
    /// The long values with their digests, in order.
    pub long_values: Vec<(i64, Cow<'a, str>)>,
}

impl PackedMetrics<'_> {
    /// The entries of `report_metric_values` this report refers to: its key list and long values.
    pub fn dictionary_entries(&self) -> impl Iterator<Item = (i64, &str)> {
        std::iter::once((self.keys, self.key_list.as_str())).chain(
            self.long_values
                .iter()
                .map(|(digest, value)| (*digest, value.as_ref())),
        )
    }
}

/// The first 64 bits of the SHA-256 of `text`, big-endian and signed: the SQL function
/// `metric_digest()`.
pub fn digest(text: &str) -> i64 {
    let hash = Sha256::digest(text.as_bytes());
    let mut first = [0; 8];
    first.copy_from_slice(&hash[..8]);
    i64::from_be_bytes(first)
}

/// Packs the pairs as sent into the stored columns.
pub fn pack(metrics: &[Metric]) -> PackedMetrics<'_> {
    let mut key_list = String::from("[");
    let mut short_values = Vec::with_capacity(metrics.len());
    let mut digests = Vec::with_capacity(metrics.len());
    let mut nul_escaped = Vec::new();
    let mut long_values = Vec::new();
    for (index, metric) in metrics.iter().enumerate() {
        let (key, value) = if fits_text(&metric.key) && fits_text(&metric.value) {
            (
                Cow::Borrowed(metric.key.as_str()),
                Cow::Borrowed(metric.value.as_str()),
            )
        } else {
            nul_escaped.push(i32::try_from(index + 1).unwrap_or(i32::MAX));
            (
                Cow::Owned(escape(&metric.key)),
                Cow::Owned(escape(&metric.value)),
            )
        };
        if index > 0 {
            key_list.push_str(", ");
        }
        push_json_string(&mut key_list, &key);
        if value.len() < DICTIONARY_MIN_BYTES {
            short_values.push(Some(value));
            digests.push(None);
        } else {
            let value_digest = digest(&value);
            short_values.push(None);
            digests.push(Some(value_digest));
            long_values.push((value_digest, value));
        }
    }
    key_list.push(']');
    PackedMetrics {
        keys: digest(&key_list),
        key_list,
        short_values,
        value_digests: (!long_values.is_empty()).then_some(digests),
        nul_escaped: (!nul_escaped.is_empty()).then_some(nul_escaped),
        long_values,
    }
}

/// `text` as a JSON string the way PostgreSQL's `jsonb` output writes it: `"` and `\` escaped, the
/// control characters with a short escape where JSON has one and as `\u00xx` otherwise, everything
/// else (non-ASCII included) as is. serde_json's writer does exactly that; keys seldom need it.
fn push_json_string(out: &mut String, text: &str) {
    if text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(&serde_json::to_string(text).expect("a string always serialises"));
    } else {
        out.push('"');
        out.push_str(text);
        out.push('"');
    }
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
        let long = "x".repeat(DICTIONARY_MIN_BYTES);
        let metrics = [
            pair("OS", r#"C:\ "quoted" \0 é"#),
            pair("", ""),
            pair("Long", &long),
        ];
        let packed = pack(&metrics);
        assert_eq!(packed.key_list, r#"["OS", "", "Long"]"#);
        assert_eq!(packed.keys, digest(&packed.key_list));
        assert_eq!(
            packed.short_values,
            [
                Some(Cow::from(r#"C:\ "quoted" \0 é"#)),
                Some(Cow::from("")),
                None
            ]
        );
        assert_eq!(
            packed.value_digests,
            Some(vec![None, None, Some(digest(&long))])
        );
        assert_eq!(packed.long_values, [(digest(&long), Cow::from(&long))]);
        assert_eq!(packed.nul_escaped, None);
    }

    #[test]
    fn pairs_with_nul_are_escaped_whole() {
        let metrics = [pair("k\0", r"a\0b\c"), pair("k", "\0")];
        let packed = pack(&metrics);
        assert_eq!(packed.key_list, r#"["k\\0", "k"]"#);
        assert_eq!(
            packed.short_values,
            [Some(Cow::from(r"a\\0b\\c")), Some(Cow::from(r"\0"))]
        );
        assert_eq!(packed.nul_escaped, Some(vec![1, 2]));
        assert_eq!(packed.value_digests, None);
    }

    #[test]
    fn a_digest_is_the_first_eight_bytes_of_the_sha256() {
        // sha256("") = e3b0c442 98fc1c14 ...
        assert_eq!(
            digest(""),
            i64::from_be_bytes([0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14])
        );
    }
}
