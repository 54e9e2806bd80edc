//! Country lookup from a memory-mapped MaxMind-format database. The address goes in, an ISO 3166-1
//! alpha-2 code comes out, and the address is not kept anywhere.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use maxminddb::{MaxMindDbError, Mmap, Reader, path};
use tokio::sync::watch;

use crate::observability;
use crate::reload::{FileFingerprint, ReloadSubscription};

/// File name of the bundled CC BY 4.0 database (see `data/README.md`).
pub const BUNDLED_GEOIP_FILE: &str = "geo-whois-asn-country.mmdb";

/// Where the bundled database is looked for when `GEOIP_DATABASE` is not set: next to the sources
/// (a clone or `cargo run`), then where the container image and packages install it.
pub fn bundled_geoip_candidates() -> Vec<PathBuf> {
    vec![
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("data")
            .join(BUNDLED_GEOIP_FILE),
        Path::new("data").join(BUNDLED_GEOIP_FILE),
        Path::new("/usr/share/telemetry-server").join(BUNDLED_GEOIP_FILE),
    ]
}

/// Where the country code sits in a database's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordLayout {
    /// MaxMind GeoIP2 / GeoLite2 Country and City: `country.iso_code`, else `registered_country.iso_code`.
    MaxMind,
    /// geo-whois-asn-country and similar: a top-level `country_code`.
    CountryCode,
}

#[derive(Debug, thiserror::Error)]
pub enum GeoIpError {
    #[error("cannot open GeoIP database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: MaxMindDbError,
    },
    #[error("GeoIP database {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: MaxMindDbError,
    },
    #[error("GeoIP database {path} has no country data (type {database_type:?})")]
    NoCountryData {
        path: PathBuf,
        database_type: String,
    },
}

/// One opened database file.
pub struct CountryDatabase {
    reader: Reader<Mmap>,
    layout: RecordLayout,
    path: PathBuf,
    /// The file as it was just before it was opened: a later change means a newer file may be there.
    fingerprint: Option<FileFingerprint>,
}

impl CountryDatabase {
    /// Opens, verifies and recognises a database file.
    pub fn open(path: &Path) -> Result<Self, GeoIpError> {
        let fingerprint = FileFingerprint::of(path).ok();
        // SAFETY: the mapping stays valid as long as the file is replaced by renaming a new file over
        // it (what geoipupdate, `install` and Kubernetes volume updates do), which is the documented
        // way to update the database. Rewriting it in place (`cp` over it) would change or truncate
        // the pages under the database in use.
        #[allow(unsafe_code)]
        let reader = unsafe { Reader::open_mmap(path) }.map_err(|source| GeoIpError::Open {
            path: path.to_owned(),
            source,
        })?;
        verify(&reader).map_err(|source| GeoIpError::Corrupt {
            path: path.to_owned(),
            source,
        })?;
        let layout = detect_layout(&reader).ok_or_else(|| GeoIpError::NoCountryData {
            path: path.to_owned(),
            database_type: reader.metadata().database_type.clone(),
        })?;
        Ok(Self {
            reader,
            layout,
            path: path.to_owned(),
            fingerprint,
        })
    }

    pub fn layout(&self) -> RecordLayout {
        self.layout
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// When the database was built, in seconds since the Unix epoch.
    pub fn build_epoch(&self) -> u64 {
        self.reader.metadata().build_epoch
    }

    /// The country of a public address, or None for private, loopback, link-local and unknown ones.
    pub fn country(&self, ip: IpAddr) -> Option<String> {
        let ip = ip.to_canonical();
        if !is_public(ip) {
            observability::geoip_lookup("not_public");
            return None;
        }
        let code = self.lookup(ip);
        observability::geoip_lookup(if code.is_some() { "found" } else { "not_found" });
        code
    }

    fn lookup(&self, ip: IpAddr) -> Option<String> {
        let result = self.reader.lookup(ip).ok()?;
        if !result.has_data() {
            return None;
        }
        let code: Option<String> = match self.layout {
            RecordLayout::MaxMind => result
                .decode_path(&path!["country", "iso_code"])
                .ok()
                .flatten()
                .or_else(|| {
                    result
                        .decode_path(&path!["registered_country", "iso_code"])
                        .ok()
                        .flatten()
                }),
            RecordLayout::CountryCode => result.decode_path(&path!["country_code"]).ok().flatten(),
        };
        code.map(|code: String| code.to_ascii_uppercase())
            .filter(|code| code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()))
    }
}

/// maxminddb's full check, except that an empty metadata description (as geo-whois-asn-country has) is
/// accepted: the search tree and every record are then checked by walking all networks.
fn verify(reader: &Reader<Mmap>) -> Result<(), MaxMindDbError> {
    if !reader.metadata().description.is_empty() {
        return reader.verify();
    }
    let options = maxminddb::WithinOptions::default();
    for network in reader.networks(options)? {
        network?.decode::<serde::de::IgnoredAny>()?;
    }
    Ok(())
}

/// How many records [`detect_layout`] inspects before concluding that a database has no country data.
const LAYOUT_SAMPLE_RECORDS: usize = 1000;

/// Recognises the layout: MaxMind's country-bearing database types by name, anything else (the
/// geo-whois-asn-country type is just "country ipvAll") by the first records that carry a country.
/// MaxMind's other types (ASN, ISP, Anonymous-IP...) have no country and are refused.
fn detect_layout(reader: &Reader<Mmap>) -> Option<RecordLayout> {
    let database_type = reader.metadata().database_type.to_ascii_lowercase();
    let maxmind_family = ["geoip2", "geolite2", "dbip"]
        .iter()
        .any(|prefix| database_type.starts_with(prefix));
    let has_country = ["country", "city", "enterprise"]
        .iter()
        .any(|kind| database_type.contains(kind));
    if maxmind_family && has_country {
        return Some(RecordLayout::MaxMind);
    }
    let networks = reader.networks(maxminddb::WithinOptions::default()).ok()?;
    networks
        .take(LAYOUT_SAMPLE_RECORDS)
        .filter_map(Result::ok)
        .find_map(|record| {
            let has = |path: &[maxminddb::PathElement<'_>]| {
                matches!(record.decode_path::<String>(path), Ok(Some(_)))
            };
            if has(&path!["country_code"]) {
                Some(RecordLayout::CountryCode)
            } else if has(&path!["country", "iso_code"])
                || has(&path!["registered_country", "iso_code"])
            {
                Some(RecordLayout::MaxMind)
            } else {
                None
            }
        })
}

/// Addresses that can never belong to a country: loopback, private, link-local, shared, documentation,
/// multicast and unspecified ranges.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

/// The database in use, swappable while requests keep flowing.
pub struct GeoIp {
    path: PathBuf,
    current: ArcSwap<CountryDatabase>,
    reloads: watch::Sender<ReloadStatus>,
}

/// What became of the reload attempts so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadStatus {
    /// Reload attempts, successful or not.
    pub attempts: u64,
    /// Attempts that swapped a new database in.
    pub loaded: u64,
    /// Why the latest attempt was refused; None once an attempt succeeds.
    pub last_refusal: Option<String>,
}

impl GeoIp {
    /// Opens, verifies and recognises the database file. This walks the whole database: call it
    /// where blocking is allowed.
    pub fn open(path: &Path) -> Result<Self, GeoIpError> {
        let database = CountryDatabase::open(path)?;
        observability::geoip_database_built(database.build_epoch());
        Ok(Self {
            path: path.to_owned(),
            current: ArcSwap::from_pointee(database),
            reloads: watch::Sender::new(ReloadStatus::default()),
        })
    }

    pub fn country(&self, ip: IpAddr) -> Option<String> {
        self.current.load().country(ip)
    }

    pub fn current(&self) -> Arc<CountryDatabase> {
        self.current.load_full()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Follows the outcome of every reload attempt.
    pub fn reload_status(&self) -> watch::Receiver<ReloadStatus> {
        self.reloads.subscribe()
    }

    /// Re-opens the database file and swaps it in; a file that cannot be opened, is corrupt or has
    /// no country data is refused and the current database stays in use. Blocking, like [`Self::open`].
    pub fn reload(&self) -> Result<(), GeoIpError> {
        let result = CountryDatabase::open(&self.path);
        let outcome = match result {
            Ok(database) => {
                tracing::info!(
                    path = %self.path.display(),
                    database_type = database.database_type(),
                    layout = ?database.layout(),
                    "GeoIP database reloaded"
                );
                observability::geoip_database_built(database.build_epoch());
                self.current.store(Arc::new(database));
                observability::geoip_reload("loaded");
                Ok(())
            }
            Err(error) => {
                tracing::error!(
                    path = %self.path.display(),
                    %error,
                    "new GeoIP database refused; the previous one stays in use"
                );
                observability::geoip_reload("refused");
                Err(error)
            }
        };
        self.reloads.send_modify(|status| {
            status.attempts += 1;
            match &outcome {
                Ok(()) => {
                    status.loaded += 1;
                    status.last_refusal = None;
                }
                Err(error) => status.last_refusal = Some(error.to_string()),
            }
        });
        outcome
    }
}

/// Keeps the database current: reloads it on every reload request, and whenever the file's
/// fingerprint changes, checked every `poll_interval` (None: only on request). A file that was
/// refused is not retried until it changes again, so a bad file is reported once, not every poll.
/// Runs until dropped.
pub async fn watch_file(
    geoip: Arc<GeoIp>,
    mut requests: ReloadSubscription,
    poll_interval: Option<Duration>,
) {
    let mut seen = geoip.current().fingerprint;
    let mut ticker = poll_interval.map(|period| {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker
    });
    loop {
        let poll = async {
            match ticker.as_mut() {
                Some(ticker) => {
                    ticker.tick().await;
                }
                None => std::future::pending().await,
            }
        };
        let forced = tokio::select! {
            () = requests.next() => true,
            () = poll => false,
        };
        let now = FileFingerprint::of(geoip.path()).ok();
        if !forced && now == seen {
            continue;
        }
        seen = now;
        let reloading = geoip.clone();
        // The verification walks the whole database: keep it off the request-serving threads.
        // Its outcome is logged and counted by reload() itself.
        tokio::task::spawn_blocking(move || reloading.reload().ok())
            .await
            .ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_looked_up() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.1.2.3",
            "192.0.2.1",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
        ] {
            let ip: IpAddr = private.parse().unwrap();
            assert!(!is_public(ip), "{private} is not public");
            assert!(!is_public(ip.to_canonical()), "{private} is not public");
        }
        for public in ["8.8.8.8", "81.2.69.142", "2001:218::1", "2a00:1450::1"] {
            assert!(is_public(public.parse().unwrap()), "{public} is public");
        }
    }

    #[test]
    fn country_lookup_canonicalises_mapped_addresses() {
        let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/geo-whois-asn-country.mmdb");
        let database = CountryDatabase::open(&bundled).unwrap();
        // The database has no IPv4-mapped subtree: without canonicalisation these would be unknown.
        assert_eq!(
            database
                .country("::ffff:8.8.8.8".parse().unwrap())
                .as_deref(),
            Some("US")
        );
        assert_eq!(database.country("::ffff:10.0.0.1".parse().unwrap()), None);
        assert_eq!(database.country("::ffff:127.0.0.1".parse().unwrap()), None);
    }
}
