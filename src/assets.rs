//! The files of `static/`, compiled into the binary so that an installed binary needs no asset
//! directory next to it: a `ServeDir` backend that serves them, and the fingerprint every page
//! appends to their URLs (the landing page and the statistics page alike).

use std::future::{Ready, ready};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};
use tower_http::services::fs::{Backend, File, Metadata};

/// Every file under `static/`, by its path relative to that directory.
pub(crate) static ASSETS: &[(&str, &[u8])] = &[
    ("style.css", include_bytes!("../static/style.css")),
    ("favicon.svg", include_bytes!("../static/favicon.svg")),
    ("favicon.ico", include_bytes!("../static/favicon.ico")),
    ("robots.txt", include_bytes!("../static/robots.txt")),
    ("openapi.json", include_bytes!("../static/openapi.json")),
];

/// A short fingerprint of the stylesheet and icon, appended to their URLs so that a new release is
/// fetched at once instead of after the cache lifetime.
pub fn asset_version() -> &'static str {
    static VERSION: LazyLock<String> = LazyLock::new(|| {
        let mut hasher = DefaultHasher::new();
        ASSETS.hash(&mut hasher);
        format!("{:016x}", hasher.finish())[..10].to_owned()
    });
    &VERSION
}

/// When the embedded files were "modified": the moment this process first served one. A new binary
/// means a restart, so the time (and with it the ETag) changes whenever the content can.
static PUBLISHED: LazyLock<SystemTime> = LazyLock::new(SystemTime::now);

/// `ServeDir` backend that reads the files compiled in from `static/`.
#[derive(Clone, Copy, Debug, Default)]
pub struct EmbeddedAssets;

impl EmbeddedAssets {
    fn lookup(path: &Path) -> io::Result<&'static [u8]> {
        let relative = path
            .strip_prefix("./static")
            .or_else(|_| path.strip_prefix("static"))
            .ok()
            .and_then(Path::to_str);
        ASSETS
            .iter()
            .find(|(name, _)| Some(*name) == relative)
            .map(|(_, bytes)| *bytes)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such asset"))
    }
}

impl Backend for EmbeddedAssets {
    type File = EmbeddedFile;
    type Metadata = EmbeddedMetadata;
    type OpenFuture = Ready<io::Result<EmbeddedFile>>;
    type MetadataFuture = Ready<io::Result<EmbeddedMetadata>>;

    fn open(&self, path: PathBuf) -> Self::OpenFuture {
        ready(Self::lookup(&path).map(|bytes| EmbeddedFile(Cursor::new(bytes))))
    }

    fn metadata(&self, path: PathBuf) -> Self::MetadataFuture {
        ready(Self::lookup(&path).map(|bytes| EmbeddedMetadata(bytes.len() as u64)))
    }
}

/// One embedded file, read from memory.
pub struct EmbeddedFile(Cursor<&'static [u8]>);

impl AsyncRead for EmbeddedFile {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncSeek for EmbeddedFile {
    fn start_seek(mut self: Pin<&mut Self>, position: io::SeekFrom) -> io::Result<()> {
        Pin::new(&mut self.0).start_seek(position)
    }

    fn poll_complete(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Pin::new(&mut self.0).poll_complete(cx)
    }
}

impl File for EmbeddedFile {
    type Metadata = EmbeddedMetadata;
    type MetadataFuture<'a> = Ready<io::Result<EmbeddedMetadata>>;

    fn metadata(&self) -> Self::MetadataFuture<'_> {
        ready(Ok(EmbeddedMetadata(self.0.get_ref().len() as u64)))
    }
}

/// Size of an embedded file; embedded paths are never directories.
pub struct EmbeddedMetadata(u64);

impl Metadata for EmbeddedMetadata {
    fn is_dir(&self) -> bool {
        false
    }

    fn modified(&self) -> io::Result<SystemTime> {
        Ok(*PUBLISHED)
    }

    fn len(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_assets_match_the_static_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|(name, _)| (*name).to_owned()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "every file in static/ is embedded");
    }

    #[test]
    fn asset_lookup_stays_inside_static() {
        assert!(EmbeddedAssets::lookup(Path::new("./static/style.css")).is_ok());
        assert!(EmbeddedAssets::lookup(Path::new("./static")).is_err());
        assert!(EmbeddedAssets::lookup(Path::new("./other/style.css")).is_err());
        assert!(EmbeddedAssets::lookup(Path::new("./static/missing.css")).is_err());
    }
}
