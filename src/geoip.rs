//! Country lookup from a memory-mapped MaxMind-format database. The address goes in, an ISO 3166-1
//! alpha-2 code comes out, and the address is not kept anywhere.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use maxminddb::{MaxMindDbError, Mmap, Reader, path};

use crate::observability;

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
}

impl CountryDatabase {
    /// Opens, verifies and recognises a database file.
    pub fn open(path: &Path) -> Result<Self, GeoIpError> {
        // SAFETY: the mapping stays valid as long as the file is replaced by renaming a new file over
        // it (what geoipupdate and `install` do), which is the documented way to update the database.
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

/// Recognises the layout from the metadata's database type, and failing that from a sample record.
fn detect_layout(reader: &Reader<Mmap>) -> Option<RecordLayout> {
    let database_type = reader.metadata().database_type.to_ascii_lowercase();
    if database_type.contains("geoip2") || database_type.contains("geolite2") {
        return Some(RecordLayout::MaxMind);
    }
    let samples: [IpAddr; 4] = [
        [8, 8, 8, 8].into(),
        [1, 1, 1, 1].into(),
        [81, 2, 69, 142].into(),
        "2001:4860:4860::8888".parse().ok()?,
    ];
    samples.into_iter().find_map(|ip| {
        let result = reader.lookup(ip).ok()?;
        if result
            .decode_path::<String>(&path!["country_code"])
            .ok()?
            .is_some()
        {
            Some(RecordLayout::CountryCode)
        } else if result
            .decode_path::<String>(&path!["country", "iso_code"])
            .ok()?
            .is_some()
            || result
                .decode_path::<String>(&path!["registered_country", "iso_code"])
                .ok()?
                .is_some()
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
    current: ArcSwap<CountryDatabase>,
}

impl GeoIp {
    pub fn new(database: CountryDatabase) -> Self {
        Self {
            current: ArcSwap::from_pointee(database),
        }
    }

    pub fn open(path: &Path) -> Result<Self, GeoIpError> {
        CountryDatabase::open(path).map(Self::new)
    }

    pub fn country(&self, ip: IpAddr) -> Option<String> {
        self.current.load().country(ip)
    }

    pub fn current(&self) -> Arc<CountryDatabase> {
        self.current.load_full()
    }

    /// Re-opens the database file; a file that cannot be opened leaves the current database in use.
    pub fn reload(&self) -> Result<(), GeoIpError> {
        let path = self.current.load().path.clone();
        let database = CountryDatabase::open(&path)?;
        tracing::info!(path = %path.display(), database_type = database.database_type(), "GeoIP database reloaded");
        self.current.store(Arc::new(database));
        Ok(())
    }
}
