//! Reading a report request's body: at most `max_bytes` once inflated, as Percona's front end reads
//! at most a 10 MiB message.
//!
//! Percona's grpc-gateway ignores `Content-Encoding` and decodes every body as JSON. This service also
//! takes gzip, which Percona would refuse, so inflating is a leniency: it happens only when a gzip
//! coding is declared (in any letter case) *and* the body starts with gzip's magic bytes, which no JSON
//! text can. Anything else is decoded as sent, exactly as Percona would: a JSON body under a wrong or
//! unknown `Content-Encoding` is still accepted.

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use flate2::read::MultiGzDecoder;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::body_budget::{self, BudgetSpent};

/// The first two bytes of every gzip member (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Inflated bytes are charged to the memory budget this many at a time.
const INFLATE_CHUNK_BYTES: usize = 64 * 1024;

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body is larger than the limit of {max_bytes} bytes")]
    TooLarge { max_bytes: usize },
    #[error("request body could not be read: {0}")]
    Unreadable(String),
    #[error("request body is not valid gzip: {0}")]
    InvalidGzip(String),
    /// The memory budget for bodies in flight (`crate::body_budget`) could not hold it.
    #[error(transparent)]
    BudgetSpent(#[from] BudgetSpent),
}

/// Reads the whole body, inflating it if it is gzip; refuses it once it (or what it inflates to)
/// passes `max_bytes`. What it inflates to is charged with `charge` as it comes out (the raw bytes
/// are charged as they arrive, by `crate::body_budget`).
pub async fn read(
    headers: &HeaderMap,
    body: Body,
    max_bytes: usize,
    charge: impl FnMut(usize) -> Result<(), BudgetSpent>,
) -> Result<Bytes, BodyError> {
    let raw = Limited::new(body, raw_limit(max_bytes))
        .collect()
        .await
        .map_err(|error| {
            if error.downcast_ref::<LengthLimitError>().is_some() {
                BodyError::TooLarge { max_bytes }
            } else if body_budget::is_budget_spent(&*error) {
                BodyError::BudgetSpent(BudgetSpent)
            } else {
                BodyError::Unreadable(error.to_string())
            }
        })?
        .to_bytes();
    if declares_gzip(headers) && raw.starts_with(&GZIP_MAGIC) {
        inflate(&raw, max_bytes, charge).map(Bytes::from)
    } else if raw.len() > max_bytes {
        Err(BodyError::TooLarge { max_bytes })
    } else {
        Ok(raw)
    }
}

/// What may arrive on the wire: gzip of incompressible data is slightly larger than the data (5 bytes
/// per 64 KiB stored block, plus each member's header and trailer), and that must not turn a body
/// under the limit into a refusal.
fn raw_limit(max_bytes: usize) -> usize {
    max_bytes
        .saturating_add(max_bytes / 1024)
        .saturating_add(4096)
}

/// `Content-Encoding: gzip` (or `x-gzip`), compared case-insensitively as RFC 9110 says codings are,
/// in any of the header's values or list entries.
fn declares_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|coding| coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip"))
}

/// Inflates every member of a multi-member gzip stream, one after another, as Go's `gzip.Reader` does;
/// stops reading once the output passes `max_bytes`, so a small bomb costs no more than the limit.
fn inflate(
    compressed: &[u8],
    max_bytes: usize,
    mut charge: impl FnMut(usize) -> Result<(), BudgetSpent>,
) -> Result<Vec<u8>, BodyError> {
    let mut inflated = Vec::new();
    let mut decoder = MultiGzDecoder::new(compressed);
    let mut chunk = vec![0; INFLATE_CHUNK_BYTES];
    loop {
        let read = decoder
            .read(&mut chunk)
            .map_err(|error| BodyError::InvalidGzip(error.to_string()))?;
        if read == 0 {
            return Ok(inflated);
        }
        if inflated.len() + read > max_bytes {
            return Err(BodyError::TooLarge { max_bytes });
        }
        charge(read)?;
        inflated.extend_from_slice(&chunk[..read]);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use axum::http::HeaderValue;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn encoded(coding: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
        headers
    }

    async fn read_all(
        headers: &HeaderMap,
        body: Vec<u8>,
        max_bytes: usize,
    ) -> Result<Bytes, BodyError> {
        read(headers, Body::from(body), max_bytes, |_| Ok(())).await
    }

    #[tokio::test]
    async fn every_member_of_a_multi_member_stream_is_inflated() {
        let mut body = gzip(b"{\"reports\":");
        body.extend(gzip(b"[]"));
        body.extend(gzip(b"}"));
        let inflated = read_all(&encoded("gzip"), body, 1024).await.unwrap();
        assert_eq!(&inflated[..], b"{\"reports\":[]}");
    }

    #[tokio::test]
    async fn the_coding_is_matched_in_any_case_and_in_a_list() {
        for coding in ["GZIP", "Gzip", "x-gzip", "identity, gzip", " gzip "] {
            let inflated = read_all(&encoded(coding), gzip(b"{}"), 1024).await.unwrap();
            assert_eq!(&inflated[..], b"{}", "{coding}");
        }
    }

    #[tokio::test]
    async fn a_body_that_is_not_gzip_is_read_as_sent() {
        // Percona's front end ignores Content-Encoding: JSON under a wrong coding is still JSON.
        for coding in ["gzip", "br", "deflate"] {
            let body = read_all(&encoded(coding), b"{}".to_vec(), 1024)
                .await
                .unwrap();
            assert_eq!(&body[..], b"{}", "{coding}");
        }
        // Without a declared coding, gzip bytes are what the JSON decoder gets (and refuses).
        let body = read_all(&HeaderMap::new(), gzip(b"{}"), 1024)
            .await
            .unwrap();
        assert!(body.starts_with(&GZIP_MAGIC));
    }

    #[tokio::test]
    async fn the_limit_holds_before_and_after_inflation() {
        assert!(
            read_all(&HeaderMap::new(), vec![b' '; 1024], 1024)
                .await
                .is_ok()
        );
        assert!(matches!(
            read_all(&HeaderMap::new(), vec![b' '; 1025], 1024).await,
            Err(BodyError::TooLarge { max_bytes: 1024 })
        ));
        let at_limit = gzip(&[b' '; 1024]);
        assert_eq!(
            read_all(&encoded("gzip"), at_limit, 1024)
                .await
                .unwrap()
                .len(),
            1024
        );
        let bomb = gzip(&vec![b' '; 1024 * 1024]);
        assert!(matches!(
            read_all(&encoded("gzip"), bomb, 1024).await,
            Err(BodyError::TooLarge { max_bytes: 1024 })
        ));
    }

    #[tokio::test]
    async fn what_gzip_inflates_to_is_charged_to_the_budget() {
        let mut charged = 0;
        let inflated = read(
            &encoded("gzip"),
            Body::from(gzip(&[b' '; 200_000])),
            1 << 20,
            |bytes| {
                charged += bytes;
                Ok(())
            },
        )
        .await
        .unwrap();
        assert_eq!((inflated.len(), charged), (200_000, 200_000));
        let spent = read(
            &encoded("gzip"),
            Body::from(gzip(&[b' '; 200_000])),
            1 << 20,
            |_| Err(BudgetSpent),
        )
        .await;
        assert!(matches!(spent, Err(BodyError::BudgetSpent(_))));
    }

    #[tokio::test]
    async fn corrupt_gzip_is_named() {
        let mut truncated = gzip(b"{\"reports\":[]}");
        truncated.truncate(truncated.len() - 4);
        for body in [b"\x1f\x8b\x08\x00garbage".to_vec(), truncated] {
            assert!(matches!(
                read_all(&encoded("gzip"), body, 1024).await,
                Err(BodyError::InvalidGzip(_))
            ));
        }
    }
}
