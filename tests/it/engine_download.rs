//! Downloading Syncthing from a loopback mirror serving a release archive built and signed here,
//! exactly as Syncthing signs its own (`release.sig` = ECDSA P-521 over the hex SHA-256 of
//! "<archive name>\n" + the binary), with a key of our own given to the locator in place of
//! Syncthing's. Its `syncthing` is a shell script that prints a version and records that it ran.


use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use botsync::engine::binary::{BinaryLocator, Platform, SyncthingBinary, PINNED_VERSION};
use botsync::engine::EngineError;
use crate::support::block_on;
use p521::ecdsa::signature::hazmat::PrehashSigner;
use p521::ecdsa::{Signature, SigningKey};
use p521::pkcs8::EncodePublicKey;
use sha2::{Digest, Sha256};

/// How the mirror answers the archive request.
#[derive(Clone, Copy, PartialEq)]
enum Serve {
    Whole,
    /// Sends the headers for the whole body, then only this many bytes, then closes.
    CutAfter(usize),
}

/// Serves `files` (URL path -> body) on 127.0.0.1 until dropped; honours `Range: bytes=N-`;
/// records every request line and range.
struct Mirror {
    url: String,
    hits: Arc<AtomicUsize>,
    ranges: Arc<Mutex<Vec<Option<String>>>>,
    mode: Arc<Mutex<Serve>>,
}

impl Mirror {
    fn serve(files: HashMap<String, Vec<u8>>) -> Mirror {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/releases", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let ranges = Arc::new(Mutex::new(Vec::new()));
        let mode = Arc::new(Mutex::new(Serve::Whole));
        let (counter, seen, how) = (hits.clone(), ranges.clone(), mode.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut range = None;
                let mut header = String::new();
                while reader.read_line(&mut header).map(|n| n > 2).unwrap_or(false) {
                    if let Some(value) = header.to_ascii_lowercase().strip_prefix("range: bytes=") {
                        range = Some(value.trim().trim_end_matches('-').to_string());
                    }
                    header.clear();
                }
                counter.fetch_add(1, Ordering::SeqCst);
                seen.lock().unwrap().push(range.clone());
                let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let Some(body) = files.get(&path) else {
                    let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found");
                    continue;
                };
                let from: usize = range.as_deref().and_then(|r| r.parse().ok()).unwrap_or(0).min(body.len());
                let status = if from > 0 { "206 Partial Content" } else { "200 OK" };
                let part = &body[from..];
                let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", part.len());
                let sent = match *how.lock().unwrap() {
                    Serve::Whole => part,
                    Serve::CutAfter(n) => &part[..n.min(part.len())],
                };
                let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(sent));
            }
        });
        Mirror { url, hits, ranges, mode }
    }
}

fn fake_syncthing(ran_marker: &Path) -> String {
    // Padding makes the archive big enough to be cut in the middle.
    format!(
        "#!/bin/sh\ntouch '{}'\necho 'syncthing v{PINNED_VERSION} \"Test Build\" (go1.24 linux-amd64) test@botsync 2025-01-01 00:00:00 UTC'\n# {}\n",
        ran_marker.display(),
        "x".repeat(64 * 1024)
    )
}

/// Syncthing's construction (`lib/signature/signature.go` Sign): ECDSA over the hex text of the
/// SHA-256, ASN.1 (r, s) in a PEM `SIGNATURE` block.
fn sign(key: &SigningKey, archive_name: &str, binary: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(archive_name.as_bytes());
    hasher.update(b"\n");
    hasher.update(binary);
    let hex = data_encoding::HEXLOWER.encode(&hasher.finalize());
    let signature: Signature = key.sign_prehash(hex.as_bytes()).unwrap();
    let der = signature.to_der();
    let body = data_encoding::BASE64.encode(der.as_bytes());
    format!("-----BEGIN SIGNATURE-----\n{body}\n-----END SIGNATURE-----\n")
}

fn public_pem(key: &SigningKey) -> String {
    let der = p521::PublicKey::from_affine(*p521::ecdsa::VerifyingKey::from(key).as_affine()).unwrap().to_public_key_der().unwrap();
    format!("-----BEGIN EC PUBLIC KEY-----\n{}\n-----END EC PUBLIC KEY-----\n", data_encoding::BASE64.encode(der.as_bytes()))
}

fn new_key() -> SigningKey {
    SigningKey::from_slice(&rand::random::<[u8; 32]>()).unwrap()
}

/// A release archive like Syncthing's (`.tar.gz` on Linux, `.zip` on macOS): `<name>/syncthing`,
/// `<name>/README.txt` and (unless `signature` is None) `<name>/release.sig`.
fn release_archive(archive_name: &str, binary: &str, signature: Option<&str>) -> Vec<u8> {
    let dir = archive_name.trim_end_matches(".tar.gz").trim_end_matches(".zip");
    let mut members = vec![(format!("{dir}/README.txt"), "readme".to_string(), 0o644), (format!("{dir}/syncthing"), binary.to_string(), 0o755)];
    if let Some(signature) = signature {
        members.push((format!("{dir}/release.sig"), signature.to_string(), 0o644));
    }
    if archive_name.ends_with(".zip") {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, body, mode) in members {
            zip.start_file(name, zip::write::SimpleFileOptions::default().unix_permissions(mode)).unwrap();
            zip.write_all(body.as_bytes()).unwrap();
        }
        return zip.finish().unwrap().into_inner();
    }
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none()));
    for (name, body, mode) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        builder.append_data(&mut header, name, body.as_bytes()).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

struct Setup {
    _scratch: tempfile::TempDir,
    cache: PathBuf,
    ran_marker: PathBuf,
    locator: BinaryLocator,
    mirror: Mirror,
    archive_len: usize,
}

enum Signed {
    /// By the key the locator trusts.
    Good,
    /// By another key.
    OtherKey,
    /// Over a different archive name (a binary for another platform or version).
    OtherName,
    Unsigned,
}

fn setup(signed: Signed) -> Setup {
    let scratch = tempfile::tempdir().unwrap();
    let cache = scratch.path().join("cache");
    let ran_marker = scratch.path().join("fake-syncthing-ran");
    let empty_path = scratch.path().join("empty-bin");
    std::fs::create_dir(&empty_path).unwrap();
    let archive_name = Platform::current().expect("a platform Syncthing publishes").archive_name(PINNED_VERSION);
    let binary = fake_syncthing(&ran_marker);
    let trusted = new_key();
    let signature = match signed {
        Signed::Good => Some(sign(&trusted, &archive_name, binary.as_bytes())),
        Signed::OtherKey => Some(sign(&new_key(), &archive_name, binary.as_bytes())),
        Signed::OtherName => Some(sign(&trusted, "syncthing-linux-386-v1.0.0.tar.gz", binary.as_bytes())),
        Signed::Unsigned => None,
    };
    let tarball = release_archive(&archive_name, &binary, signature.as_deref());
    let archive_len = tarball.len();
    let mut files = HashMap::new();
    files.insert(format!("/releases/v{PINNED_VERSION}/{archive_name}"), tarball);
    let mirror = Mirror::serve(files);
    let locator = BinaryLocator {
        explicit: None,
        cache_dir: Some(cache.clone()),
        search_path: Some(empty_path.into_os_string()),
        mirror: mirror.url.clone(),
        allow_download: true,
        release_key: public_pem(&trusted),
    };
    Setup { _scratch: scratch, cache, ran_marker, locator, mirror, archive_len }
}

fn cache_entries(cache: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(cache) {
        Ok(entries) => entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

fn installed_dir(setup: &Setup) -> PathBuf {
    setup.cache.join(format!("v{PINNED_VERSION}"))
}

#[test]
fn a_good_signature_installs_into_the_cache_and_is_reused() {
    let setup = setup(Signed::Good);
    let binary = block_on(setup.locator.locate()).expect("download and install");
    assert_eq!(binary.path, installed_dir(&setup).join("syncthing"));
    assert_eq!(binary.version.to_string(), format!("v{PINNED_VERSION}"));
    assert!(setup.ran_marker.exists(), "the installed binary answered --version");
    assert_eq!(cache_entries(&setup.cache), vec![format!("v{PINNED_VERSION}")], "no partial archive or scratch left");
    assert_eq!(cache_entries(&installed_dir(&setup)), ["archive-name", "release.sig", "syncthing"], "only the binary and its signature");
    assert_eq!(setup.mirror.hits.load(Ordering::SeqCst), 1, "one request: the archive (no checksum list)");

    let again = block_on(setup.locator.locate()).unwrap();
    assert_eq!(again.path, binary.path);
    assert_eq!(setup.mirror.hits.load(Ordering::SeqCst), 1, "the cached download is used, no new request");
}

fn assert_refused(signed: Signed, expect: &str) {
    let setup = setup(signed);
    let error = block_on(setup.locator.locate()).unwrap_err();
    assert!(matches!(error, EngineError::SignatureInvalid { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("signature") && message.contains(expect) && !message.contains('\n'), "{message}");
    assert!(!setup.ran_marker.exists(), "nothing from the archive was executed");
    assert!(cache_entries(&setup.cache).is_empty(), "nothing left in the cache: {:?}", cache_entries(&setup.cache));
}

#[test]
fn a_signature_by_another_key_is_refused_and_nothing_is_left_or_run() {
    assert_refused(Signed::OtherKey, "does not match");
}

#[test]
fn a_signature_for_another_archive_name_is_refused() {
    assert_refused(Signed::OtherName, "does not match");
}

#[test]
fn an_archive_without_release_sig_is_refused() {
    assert_refused(Signed::Unsigned, "no release.sig");
}

#[test]
fn an_interrupted_download_never_becomes_the_binary_and_resumes() {
    let setup = setup(Signed::Good);
    let half = setup.archive_len / 2;
    *setup.mirror.mode.lock().unwrap() = Serve::CutAfter(half);
    let error = block_on(setup.locator.locate()).unwrap_err();
    assert!(error.to_string().contains("BOTSYNC_SYNCTHING"), "a failed download names the ways out: {error}");
    assert!(!installed_dir(&setup).exists(), "half an archive is never installed");
    let archive_name = Platform::current().unwrap().archive_name(PINNED_VERSION);
    let partial = setup.cache.join(format!("{archive_name}.part"));
    assert_eq!(std::fs::metadata(&partial).map(|m| m.len() as usize).ok(), Some(half), "the first half is kept");
    assert!(!setup.ran_marker.exists());

    *setup.mirror.mode.lock().unwrap() = Serve::Whole;
    let binary = block_on(setup.locator.locate()).expect("resumed download installs");
    assert_eq!(binary.path, installed_dir(&setup).join("syncthing"));
    assert_eq!(setup.mirror.ranges.lock().unwrap().last().cloned().flatten(), Some(half.to_string()), "the second request asked for the rest only");
    assert!(!partial.exists(), "the partial archive is gone once installed");
}

#[test]
fn a_corrupted_cached_binary_is_detected_removed_and_fetched_again() {
    let setup = setup(Signed::Good);
    let binary = block_on(setup.locator.locate()).unwrap();
    // Same size, one byte changed: only the signature can tell.
    let mut bytes = std::fs::read(&binary.path).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x01;
    std::fs::write(&binary.path, &bytes).unwrap();
    let recorded = SyncthingBinary { fingerprint: None, ..binary.clone() };
    let again = block_on(setup.locator.resolve(Some(&recorded))).expect("fetched again");
    assert_eq!(setup.mirror.hits.load(Ordering::SeqCst), 2, "the damaged copy was replaced by a new download");
    assert_ne!(std::fs::read(&again.path).unwrap(), bytes, "the damaged bytes are gone");
    // And through the fast path too: a recorded binary that is our cached download is re-verified.
    let mut bytes = std::fs::read(&again.path).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(&again.path, &bytes).unwrap();
    let fresh = SyncthingBinary { fingerprint: botsync::engine::binary::Fingerprint::of(&again.path), ..again.clone() };
    block_on(setup.locator.resolve(Some(&fresh))).unwrap();
    assert_eq!(setup.mirror.hits.load(Ordering::SeqCst), 3, "unchanged size and mtime do not skip the signature check");
}

#[test]
fn offline_says_to_install_syncthing_or_set_botsync_syncthing() {
    let mut setup = setup(Signed::Good);
    // A port nothing listens on.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    setup.locator.mirror = format!("http://{closed}/releases");
    let error = block_on(setup.locator.locate()).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, EngineError::SyncthingNotFound { .. }), "{message}");
    assert!(message.contains("Install it") && message.contains("BOTSYNC_SYNCTHING") && !message.contains('\n'), "{message}");
    assert_eq!(botsync::Error::from(error).code().as_str(), "BOTSYNC_SYNCTHING_UNAVAILABLE");
}
