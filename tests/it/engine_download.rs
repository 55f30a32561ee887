//! Downloading Syncthing from a loopback HTTP server serving a tarball built here (its `syncthing`
//! is a shell script that prints a version): a good checksum installs, a bad one is refused before
//! anything is unpacked or run, and nothing is left behind.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use botsync::engine::binary::{BinaryLocator, Platform, PINNED_VERSION};
use botsync::engine::EngineError;
use crate::support::block_on;
use sha2::{Digest, Sha256};

/// Serves `files` (URL path -> body) on 127.0.0.1 until dropped; counts requests.
struct Mirror {
    url: String,
    hits: Arc<AtomicUsize>,
}

impl Mirror {
    fn serve(files: HashMap<String, Vec<u8>>) -> Mirror {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/releases", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut header = String::new();
                while reader.read_line(&mut header).map(|n| n > 2).unwrap_or(false) {
                    header.clear();
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, body) = match files.get(&path) {
                    Some(body) => ("200 OK", body.clone()),
                    None => ("404 Not Found", b"not found".to_vec()),
                };
                let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
            }
        });
        Mirror { url, hits }
    }
}

/// A release tarball like Syncthing's: `<name>/syncthing` plus a README. Running the script
/// records that it ran in `ran_marker`.
fn release_tarball(archive_name: &str, ran_marker: &Path) -> Vec<u8> {
    let dir = archive_name.trim_end_matches(".tar.gz");
    let script = format!(
        "#!/bin/sh\ntouch '{}'\necho 'syncthing v{PINNED_VERSION} \"Test Build\" (go1.24 linux-amd64) test@botsync 2025-01-01 00:00:00 UTC'\n",
        ran_marker.display()
    );
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (name, body, mode) in [(format!("{dir}/README.txt"), "readme".to_string(), 0o644), (format!("{dir}/syncthing"), script, 0o755)] {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        builder.append_data(&mut header, name, body.as_bytes()).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

fn sums_listing(archive_name: &str, sha256_hex: &str) -> Vec<u8> {
    format!(
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n{}  syncthing-other-v{PINNED_VERSION}.tar.gz\n{sha256_hex}  {archive_name}\n-----BEGIN PGP SIGNATURE-----\nxyz\n-----END PGP SIGNATURE-----\n",
        "0".repeat(64)
    )
    .into_bytes()
}

struct Setup {
    _scratch: tempfile::TempDir,
    cache: PathBuf,
    ran_marker: PathBuf,
    locator: BinaryLocator,
    mirror: Mirror,
}

/// A mirror serving the tarball with the checksum `tamper` turns the real one into.
fn setup(tamper: impl Fn(String) -> Option<String>) -> Setup {
    let scratch = tempfile::tempdir().unwrap();
    let cache = scratch.path().join("cache");
    let ran_marker = scratch.path().join("fake-syncthing-ran");
    let empty_path = scratch.path().join("empty-bin");
    std::fs::create_dir(&empty_path).unwrap();
    let archive_name = Platform::current().expect("a platform Syncthing publishes").archive_name(PINNED_VERSION);
    let tarball = release_tarball(&archive_name, &ran_marker);
    let real = data_encoding::HEXLOWER.encode(&Sha256::digest(&tarball));
    let mut files = HashMap::new();
    let listing = match tamper(real) {
        Some(sum) => sums_listing(&archive_name, &sum),
        None => sums_listing("some-other-file.tar.gz", &"1".repeat(64)),
    };
    files.insert(format!("/releases/v{PINNED_VERSION}/sha256sum.txt.asc"), listing);
    files.insert(format!("/releases/v{PINNED_VERSION}/{archive_name}"), tarball);
    let mirror = Mirror::serve(files);
    let locator = BinaryLocator {
        explicit: None,
        cache_dir: Some(cache.clone()),
        search_path: Some(empty_path.into_os_string()),
        mirror: mirror.url.clone(),
        allow_download: true,
    };
    Setup { _scratch: scratch, cache, ran_marker, locator, mirror }
}

fn cache_entries(cache: &Path) -> Vec<String> {
    match std::fs::read_dir(cache) {
        Ok(entries) => entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn good_checksum_installs_into_the_cache_and_is_reused() {
    let setup = setup(Some);
    let binary = block_on(setup.locator.locate()).expect("download and install");
    assert_eq!(binary.path, setup.cache.join(format!("v{PINNED_VERSION}/syncthing")));
    assert_eq!(binary.version.to_string(), format!("v{PINNED_VERSION}"));
    assert!(setup.ran_marker.exists(), "the installed binary answered --version");
    assert_eq!(cache_entries(&setup.cache), vec![format!("v{PINNED_VERSION}")], "no temporary files left");
    assert_eq!(cache_entries(&setup.cache.join(format!("v{PINNED_VERSION}"))), vec!["syncthing".to_string()], "only the binary is unpacked");
    assert_eq!(setup.mirror.hits.load(Ordering::SeqCst), 2, "checksum list and archive");

    let again = block_on(setup.locator.locate()).unwrap();
    assert_eq!(again.path, binary.path);
    assert_eq!(setup.mirror.hits.load(Ordering::SeqCst), 2, "the cached download is used, no new request");
}

#[test]
fn bad_checksum_is_refused_and_nothing_is_left_or_run() {
    let setup = setup(|real| Some(real.chars().rev().collect()));
    let error = block_on(setup.locator.locate()).unwrap_err();
    assert!(matches!(error, EngineError::ChecksumMismatch { .. }), "{error}");
    assert!(error.to_string().contains("SHA-256") && !error.to_string().contains('\n'));
    assert!(!setup.ran_marker.exists(), "nothing from the archive was executed");
    assert!(cache_entries(&setup.cache).is_empty(), "nothing left in the cache: {:?}", cache_entries(&setup.cache));
}

#[test]
fn missing_checksum_line_is_refused() {
    let setup = setup(|_| None);
    let error = block_on(setup.locator.locate()).unwrap_err();
    assert!(matches!(error, EngineError::ChecksumMissing { .. }), "{error}");
    assert_eq!(setup.mirror.hits.load(Ordering::SeqCst), 1, "the archive is never fetched");
    assert!(cache_entries(&setup.cache).is_empty());
}
