//! The plausible-label rule, `analytics.plausible_label()` in SQL: which metric values may become a
//! version, a distribution method or any other derived column, index or rollup. The decoder applies
//! it to a report's version and `typed_metrics` to the typed columns, so it sits below both.

/// Longest value [`is_plausible_label`] accepts: real versions run to about 40 bytes
/// (`10.6.16-MariaDB-1:10.6.16+maria~ubu2004`), and btree keys must stay far below PostgreSQL's
/// 2,704-byte limit.
pub const MAX_LABEL_BYTES: usize = 64;

/// `analytics.plausible_label()`: whether a metric value may enter a derived column (a version, a
/// distribution method), an index or a rollup: 1 to [`MAX_LABEL_BYTES`] printable ASCII characters,
/// neither starting nor ending with a space. Anything else stays only in the raw metrics.
pub fn is_plausible_label(value: &str) -> bool {
    let bytes = value.as_bytes();
    let printable = |b: &u8| (b' '..=b'~').contains(b);
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            bytes.len() <= MAX_LABEL_BYTES
                && first != b' '
                && last != b' '
                && bytes.iter().all(printable)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_short_printable_ascii() {
        for good in [
            "8.0.36-28",
            "3.2.0",
            "16.4 (Ubuntu 16.4-1.pgdg22.04+1)",
            "10.6.16-MariaDB-1:10.6.16+maria~ubu2004",
            "DOCKER",
            "x",
            &"9".repeat(MAX_LABEL_BYTES),
        ] {
            assert!(is_plausible_label(good), "{good:?}");
        }
        for bad in [
            "",
            " 8.0",
            "8.0 ",
            "8.0\t",
            "8.0\n1",
            "8.0\u{0}",
            "8.0\u{7f}",
            "8.0.٣",
            "versión",
            &"9".repeat(MAX_LABEL_BYTES + 1),
            &"8.0.36-28 ".repeat(300),
        ] {
            assert!(!is_plausible_label(bad), "{bad:?}");
        }
    }
}
