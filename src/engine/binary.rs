//! Obtaining Syncthing: an explicit path, our cached download, the one on PATH, or a fresh
//! download of the pinned release, verified the way Syncthing's own upgrader verifies one
//! (`lib/upgrade/upgrade_supported.go` `verifyUpgrade`, `lib/signature/signature.go` at v2.1.3):
//! the archive carries `release.sig`, an ECDSA P-521 signature over
//! `"<archive name>\n" + <the syncthing binary>`, made with Syncthing's release key
//! (`lib/upgrade/signingkey.pem`). The hash signed is the *hex text* of the SHA-256 digest, as
//! Syncthing's `hashReader` makes it. The mirror's checksum list proves nothing (it comes from the
//! same place as the archive) and is not used.
//!
//! The archive downloads into `<cache>/<archive>.part`, resumed with an HTTP range request after
//! an interruption; only a binary whose signature holds is moved into `<cache>/v<version>/` (with
//! its `release.sig`), and the cached binary's signature is checked again before each use, so a
//! damaged cache is removed and fetched again.

use std::ffi::OsString;
use std::fmt;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::EngineError;
use crate::platform::lock::DirLock;

/// An explicit Syncthing binary; wins over everything else.
pub const BINARY_ENV: &str = "BOTSYNC_SYNCTHING";
/// Replaces the GitHub releases download URL (`<mirror>/v<version>/<archive>`), for mirrors and tests.
pub const MIRROR_ENV: &str = "BOTSYNC_SYNCTHING_MIRROR";
pub const DEFAULT_MIRROR: &str = "https://github.com/syncthing/syncthing/releases/download";
/// The release botsync downloads when no usable Syncthing is installed.
pub const PINNED_VERSION: &str = "2.1.3";
/// The oldest Syncthing whose command line and REST API botsync speaks.
pub const MINIMUM: SyncthingVersion = SyncthingVersion { major: 1, minor: 19, patch: 0 };
/// The newest major version checked in `conformance`; a newer one is run only after
/// `check_unknown_major` finds the command line botsync uses.
pub const NEWEST_KNOWN_MAJOR: u32 = 2;
/// 2.x's SQLite database in Syncthing's home (`lib/locations/locations.go` `databaseName`).
pub const V2_DATABASE: &str = "index-v2";
/// Syncthing's release signing key, `lib/upgrade/signingkey.pem` at v2.1.3 (a public key).
pub const RELEASE_SIGNING_KEY: &str = "-----BEGIN EC PUBLIC KEY-----
MIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQA1iRk+p+DsmolixxVKcpEVlMDPOeQ
1dWthURMqsjxoJuDAe5I98P/A0kXSdBI7avm5hXhX2opJ5TAyBZLHPpDTRoBg4WN
7jUpeAjtPoVVxvOh37qDeDVcjCgJbbDTPKbjxq/Ae3SHlQMRcoes7lVY1+YJ8dPk
2oPfjA6jtmo9aVbf/uo=
-----END EC PUBLIC KEY-----";
/// Upper bounds from Syncthing's upgrader (`maxBinarySize`, `maxSignatureSize`, `maxArchiveMembers`).
const MAX_BINARY: u64 = 64 << 20;
const MAX_SIGNATURE: u64 = 10 << 10;
const MAX_MEMBERS: usize = 100;
const DOWNLOAD_LOCK_WAIT: Duration = Duration::from_secs(600);

const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SyncthingVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl SyncthingVersion {
    /// Reads the first `vX.Y.Z` out of `syncthing --version` output
    /// (`syncthing v1.19.2-ds1 "Fermium Flea" (go1.19.8 linux-amd64) ...`).
    pub fn parse_version_output(output: &str) -> Option<SyncthingVersion> {
        output.split_whitespace().find_map(|word| {
            let digits = word.strip_prefix('v')?;
            let core = digits.split(|c: char| !(c.is_ascii_digit() || c == '.')).next()?;
            let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
            let (major, minor, patch) = (parts.next()??, parts.next()??, parts.next().flatten().unwrap_or(0));
            Some(SyncthingVersion { major, minor, patch })
        })
    }

    /// 2.x dropped single-dash flags and the LevelDB database; botsync only uses forms both accept,
    /// but `generate --no-default-folder` exists on 1.x only.
    pub fn is_v2_or_later(self) -> bool {
        self.major >= 2
    }

    /// Before 1.20 Syncthing exchanged Hello messages one new connection at a time, with a 20 s
    /// deadline (`lib/connections/service.go` v1.19.2 line 248; each in its own goroutine since
    /// syncthing#8253, v1.20.0): two machines dialling each other at once can each wait for the
    /// other's Hello on a different connection until the deadline.
    pub fn exchanges_hellos_one_at_a_time(self) -> bool {
        self < SyncthingVersion { major: 1, minor: 20, patch: 0 }
    }
}

impl fmt::Display for SyncthingVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A Syncthing executable that answered `--version` with a version botsync supports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncthingBinary {
    pub path: PathBuf,
    pub version: SyncthingVersion,
    /// Size and mtime when the version was read: an unchanged file need not be run again.
    #[serde(default)]
    pub fingerprint: Option<Fingerprint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub size: u64,
    pub mtime_ns: u128,
}

impl Fingerprint {
    pub fn of(path: &Path) -> Option<Fingerprint> {
        let meta = std::fs::metadata(path).ok()?;
        let mtime = meta.modified().ok()?.duration_since(SystemTime::UNIX_EPOCH).ok()?;
        Some(Fingerprint { size: meta.len(), mtime_ns: mtime.as_nanos() })
    }
}

impl SyncthingBinary {
    /// Runs `path --version` and checks the version is supported.
    pub fn inspect(path: &Path) -> Result<SyncthingBinary, EngineError> {
        let version = read_version(path)?;
        if version < MINIMUM {
            return Err(EngineError::SyncthingTooOld { path: path.to_owned(), version });
        }
        if version.major > NEWEST_KNOWN_MAJOR {
            check_unknown_major(path, version)?;
            notice(&format!(
                "warning: Syncthing {version} at {} is newer than botsync knows ({NEWEST_KNOWN_MAJOR}.x); its command line has what botsync uses, so it runs, but report problems",
                path.display()
            ));
        }
        Ok(SyncthingBinary { path: path.to_owned(), version, fingerprint: Fingerprint::of(path) })
    }

    /// Whether the file is still the one whose version was recorded (same size and mtime).
    pub fn unchanged_on_disk(&self) -> bool {
        self.fingerprint.is_some() && Fingerprint::of(&self.path) == self.fingerprint && is_executable(&self.path)
    }
}

fn read_version(path: &Path) -> Result<SyncthingVersion, EngineError> {
    if !path.exists() {
        return Err(EngineError::SyncthingMissing { path: path.to_owned() });
    }
    if !is_executable(path) {
        return Err(EngineError::SyncthingNotExecutable { path: path.to_owned(), reason: "it is not an executable file".into() });
    }
    // `--version` is what 1.x and 2.x both document; `version` (a 2.x subcommand) is the fallback.
    let (status, output) = run_for_output(path, &["--version"])?;
    if let Some(version) = SyncthingVersion::parse_version_output(&output).filter(|_| status) {
        return Ok(version);
    }
    if let Ok((true, fallback)) = run_for_output(path, &["version"]) {
        if let Some(version) = SyncthingVersion::parse_version_output(&fallback) {
            return Ok(version);
        }
    }
    Err(EngineError::SyncthingNotExecutable {
        path: path.to_owned(),
        reason: format!("`--version` printed no Syncthing version ({})", first_line(&output)),
    })
}

/// A major version botsync has no conformance rows for must still show, in its own help, every
/// command, option and variable botsync passes to `serve` and `generate`.
fn check_unknown_major(path: &Path, version: SyncthingVersion) -> Result<(), EngineError> {
    let (_, serve) = run_for_output(path, &["serve", "--help"])?;
    let (_, generate) = run_for_output(path, &["generate", "--help"])?;
    let missing: Vec<&str> = [(&serve, "--home"), (&serve, "STGUIAPIKEY"), (&serve, "STGUIADDRESS"), (&serve, "STNOUPGRADE"), (&generate, "--home")]
        .into_iter()
        .filter(|(help, word)| !help.contains(word))
        .map(|(_, word)| word)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(EngineError::SyncthingUnknownCli { path: path.to_owned(), version, missing: missing.join(", ") })
}

/// Progress and warnings from obtaining Syncthing go to stderr: a bar and plain lines at a
/// terminal, JSON lines (`{"progress":…}` / `{"notice":…}`) when `--json` asked for them, so
/// stdout keeps exactly one JSON document.
static JSON_LINES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn set_json_lines(on: bool) {
    JSON_LINES.store(on, std::sync::atomic::Ordering::Relaxed);
}

fn json_lines() -> bool {
    JSON_LINES.load(std::sync::atomic::Ordering::Relaxed)
}

/// One line about obtaining or running Syncthing, for the person or agent waiting.
pub fn notice(message: &str) {
    if json_lines() {
        eprintln!("{}", serde_json::json!({ "notice": { "message": message } }));
    } else {
        eprintln!("botsync: {message}");
    }
}

/// Runs `path args…` with a deadline; (exited successfully, stdout + stderr).
fn run_for_output(path: &Path, args: &[&str]) -> Result<(bool, String), EngineError> {
    let arg = args.join(" ");
    let mut child = Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("STNOUPGRADE", "1")
        .spawn()
        .map_err(|e| EngineError::SyncthingNotExecutable { path: path.to_owned(), reason: e.to_string() })?;
    let deadline = std::time::Instant::now() + VERSION_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| EngineError::io("waiting for `syncthing --version`", e))? {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(EngineError::SyncthingNotExecutable { path: path.to_owned(), reason: format!("`{arg}` did not answer within 10 s") });
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let mut output = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut output);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut output);
    }
    Ok((status.success(), output))
}

fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("no output").trim();
    line.chars().take(120).collect()
}

pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Where to look for Syncthing, in order. `from_env` is what the commands use; tests build one directly.
#[derive(Debug, Clone)]
pub struct BinaryLocator {
    /// `BOTSYNC_SYNCTHING`: used as is, never falls back to anything else.
    pub explicit: Option<PathBuf>,
    /// Where downloads are cached (the user's data dir, outside every sync root).
    pub cache_dir: Option<PathBuf>,
    /// `PATH` to search for `syncthing`.
    pub search_path: Option<OsString>,
    /// Release download base URL.
    pub mirror: String,
    /// Whether a download may happen at all (false in checks like `doctor`).
    pub allow_download: bool,
    /// The PEM public key release signatures must verify against: Syncthing's
    /// (`RELEASE_SIGNING_KEY`); tests sign archives of their own with a key of their own.
    pub release_key: String,
}

impl BinaryLocator {
    pub fn from_env() -> BinaryLocator {
        BinaryLocator {
            explicit: std::env::var_os(BINARY_ENV).filter(|v| !v.is_empty()).map(PathBuf::from),
            cache_dir: directories::ProjectDirs::from("", "", "botsync").map(|d| d.data_dir().join("syncthing")),
            search_path: std::env::var_os("PATH"),
            mirror: std::env::var(MIRROR_ENV).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| DEFAULT_MIRROR.into()),
            allow_download: true,
            release_key: RELEASE_SIGNING_KEY.into(),
        }
    }

    /// The cached download of the pinned release.
    pub fn cached_path(&self) -> Option<PathBuf> {
        self.cache_dir.as_ref().map(|dir| dir.join(format!("v{PINNED_VERSION}")).join("syncthing"))
    }

    pub fn on_path(&self) -> Option<PathBuf> {
        let path = self.search_path.as_ref()?;
        std::env::split_paths(path).map(|dir| dir.join("syncthing")).find(|candidate| is_executable(candidate))
    }

    /// A usable Syncthing that needs no download, and what was rejected on the way (for messages).
    pub fn find_installed(&self) -> Result<(Option<SyncthingBinary>, Vec<String>), EngineError> {
        if let Some(explicit) = &self.explicit {
            return SyncthingBinary::inspect(explicit).map(|b| (Some(b), Vec::new())).map_err(|e| e.via_env_var());
        }
        let mut rejected = Vec::new();
        if let Some(cached) = self.cached_path().filter(|c| c.exists()) {
            if let Err(e) = verify_cached(&self.release_key, &cached) {
                notice(&format!("the cached Syncthing download is damaged ({e}); removing it and fetching it again"));
                if let Some(dir) = cached.parent() {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
        }
        for candidate in [self.cached_path(), self.on_path()].into_iter().flatten().filter(|c| c.exists()) {
            match SyncthingBinary::inspect(&candidate) {
                Ok(binary) => return Ok((Some(binary), rejected)),
                Err(e) => rejected.push(e.to_string()),
            }
        }
        Ok((None, rejected))
    }

    /// The recorded binary if it is still the same file, else a fresh lookup (a `BOTSYNC_SYNCTHING`
    /// set now still wins).
    pub async fn resolve(&self, recorded: Option<&SyncthingBinary>) -> Result<SyncthingBinary, EngineError> {
        if self.explicit.is_none() {
            // Our own download is re-verified (find_installed) rather than trusted by size and mtime.
            let ours = self.cached_path();
            if let Some(recorded) = recorded.filter(|r| r.unchanged_on_disk() && Some(&r.path) != ours.as_ref()) {
                return Ok(recorded.clone());
            }
        }
        self.locate().await
    }

    /// Explicit path, cached download, PATH, then a download of the pinned release.
    pub async fn locate(&self) -> Result<SyncthingBinary, EngineError> {
        let (found, rejected) = self.find_installed()?;
        if let Some(binary) = found {
            return Ok(binary);
        }
        if !self.allow_download {
            return Err(EngineError::SyncthingNotFound { reason: "no usable Syncthing is installed".into(), rejected });
        }
        self.download().await.map_err(|e| match e {
            EngineError::DownloadFailed { url, reason } => {
                EngineError::SyncthingNotFound { reason: format!("downloading {url} failed: {reason}"), rejected }
            }
            other => other,
        })
    }

    /// Downloads the pinned release for this platform into the cache and returns it, once its
    /// `release.sig` holds (see the module docs). One download per cache at a time; an
    /// interrupted one resumes; on any failure nothing but the partial archive is left behind.
    pub async fn download(&self) -> Result<SyncthingBinary, EngineError> {
        let platform = Platform::current().ok_or_else(|| EngineError::SyncthingNotFound {
            reason: format!("no Syncthing download exists for {}-{}", std::env::consts::OS, std::env::consts::ARCH),
            rejected: Vec::new(),
        })?;
        let cache = self.cache_dir.clone().ok_or_else(|| EngineError::SyncthingNotFound {
            reason: "cannot find a data directory to keep the download in".into(),
            rejected: Vec::new(),
        })?;
        crate::state_file::create_private_dir(&cache).map_err(|e| EngineError::io(format!("creating {}", cache.display()), e))?;
        let _lock = DirLock::acquire(&cache, DOWNLOAD_LOCK_WAIT)
            .await
            .map_err(|e| EngineError::io(format!("locking {}", cache.display()), e))?
            .ok_or_else(|| EngineError::io(format!("waiting for another download into {}", cache.display()), std::io::ErrorKind::TimedOut.into()))?;
        // Another process may have finished the same download while we waited.
        if let Some(done) = self.cached_path().filter(|p| verify_cached(&self.release_key, p).is_ok()) {
            return SyncthingBinary::inspect(&done);
        }
        let archive_name = platform.archive_name(PINNED_VERSION);
        let archive_url = format!("{}/v{PINNED_VERSION}/{archive_name}", self.mirror.trim_end_matches('/'));
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .user_agent(concat!("botsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EngineError::DownloadFailed { url: archive_url.clone(), reason: e.to_string() })?;
        let partial = cache.join(format!("{archive_name}.part"));
        let resumed = fetch_resumable(&http, &archive_url, &partial).await?;
        let installed = match self.install(&cache, &partial, &archive_name, platform.kind) {
            // A resumed archive whose signature fails may have a bad first part: start over once.
            Err(EngineError::SignatureInvalid { .. } | EngineError::Unpack { .. }) if resumed => {
                let _ = std::fs::remove_file(&partial);
                fetch_resumable(&http, &archive_url, &partial).await?;
                self.install(&cache, &partial, &archive_name, platform.kind)
            }
            other => other,
        };
        // Verified and installed, or refused: either way this archive is done with.
        let _ = std::fs::remove_file(&partial);
        installed
    }

    /// Unpacks `syncthing` and `release.sig` from the archive, verifies them and moves them into
    /// `<cache>/v<version>/`.
    fn install(&self, cache: &Path, archive: &Path, archive_name: &str, kind: ArchiveKind) -> Result<SyncthingBinary, EngineError> {
        let scratch = cache.join(format!(".unpack-{}", std::process::id()));
        let _cleanup = RemoveOnDrop(scratch.clone());
        let _ = std::fs::remove_dir_all(&scratch);
        crate::state_file::create_private_dir(&scratch).map_err(|e| EngineError::io(format!("creating {}", scratch.display()), e))?;
        let binary = scratch.join("syncthing");
        let signature = scratch.join("release.sig");
        extract_release(archive, kind, &binary, &signature)?;
        verify_release(&self.release_key, archive_name, &binary, &std::fs::read(&signature).unwrap_or_default())
            .map_err(|reason| EngineError::SignatureInvalid { file: archive_name.to_string(), reason })?;
        std::fs::write(scratch.join("archive-name"), archive_name).map_err(|e| EngineError::io(format!("writing {}", scratch.display()), e))?;
        let final_dir = cache.join(format!("v{PINNED_VERSION}"));
        let _ = std::fs::remove_dir_all(&final_dir);
        std::fs::rename(&scratch, &final_dir).map_err(|e| EngineError::io(format!("installing {}", final_dir.display()), e))?;
        SyncthingBinary::inspect(&final_dir.join("syncthing")).inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&final_dir);
        })
    }
}

/// Checks a cached download against the `release.sig` and archive name kept beside it.
pub fn verify_cached(key_pem: &str, binary: &Path) -> Result<(), String> {
    let dir = binary.parent().ok_or("no directory")?;
    let archive_name = std::fs::read_to_string(dir.join("archive-name")).map_err(|_| "its archive name is missing".to_string())?;
    let signature = std::fs::read(dir.join("release.sig")).map_err(|_| "its release.sig is missing".to_string())?;
    verify_release(key_pem, archive_name.trim(), binary, &signature)
}

/// Syncthing's `signature.Verify(key, sig, "<archive name>\n" + binary)`: `key_pem` is a PEM
/// SubjectPublicKeyInfo (label `EC PUBLIC KEY`), `signature_pem` a PEM `SIGNATURE` block holding
/// an ASN.1 `(r, s)`; the value signed is the lowercase hex of the SHA-256 of the data.
pub fn verify_release(key_pem: &str, archive_name: &str, binary: &Path, signature_pem: &[u8]) -> Result<(), String> {
    let mut hasher = Sha256::new();
    hasher.update(archive_name.as_bytes());
    hasher.update(b"\n");
    let mut file = std::fs::File::open(binary).map_err(|e| format!("cannot read {}: {e}", binary.display()))?;
    std::io::copy(&mut file, &mut hasher).map_err(|e| format!("cannot read {}: {e}", binary.display()))?;
    verify_hex_digest(key_pem, &data_encoding::HEXLOWER.encode(&hasher.finalize()), signature_pem)
}

/// The ECDSA check itself, over the hex digest text (see `verify_release`).
pub fn verify_hex_digest(key_pem: &str, hex_digest: &str, signature_pem: &[u8]) -> Result<(), String> {
    use p521::ecdsa::signature::hazmat::PrehashVerifier;
    use p521::pkcs8::DecodePublicKey;
    let key_der = pem_body(key_pem, "EC PUBLIC KEY").ok_or("the signing key is not a PEM public key")?;
    let key = p521::PublicKey::from_public_key_der(&key_der).map_err(|e| format!("the signing key is unusable: {e}"))?;
    let key = p521::ecdsa::VerifyingKey::from_affine(*key.as_affine()).map_err(|e| format!("the signing key is unusable: {e}"))?;
    let text = std::str::from_utf8(signature_pem).map_err(|_| "release.sig is not text")?;
    let der = pem_body(text, "SIGNATURE").ok_or("release.sig holds no PEM SIGNATURE block")?;
    let signature = p521::ecdsa::Signature::from_der(&der).map_err(|e| format!("release.sig is malformed: {e}"))?;
    key.verify_prehash(hex_digest.as_bytes(), &signature).map_err(|_| "the signature does not match (not Syncthing's release, or damaged)".to_string())
}

/// The base64 body of the first PEM block labelled `label`.
fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = text.split(&begin).nth(1)?.split(&end).next()?;
    let compact: String = body.lines().filter(|l| !l.contains(':')).collect::<String>().chars().filter(|c| !c.is_whitespace()).collect();
    data_encoding::BASE64.decode(compact.as_bytes()).ok()
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    TarGz,
    Zip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    pub os: &'static str,
    pub arch: &'static str,
    pub kind: ArchiveKind,
}

impl Platform {
    /// Syncthing's names for this OS and CPU, as used in release archive names.
    pub fn current() -> Option<Platform> {
        let (os, kind) = match std::env::consts::OS {
            "linux" => ("linux", ArchiveKind::TarGz),
            "macos" => ("macos", ArchiveKind::Zip),
            "freebsd" => ("freebsd", ArchiveKind::TarGz),
            "openbsd" => ("openbsd", ArchiveKind::TarGz),
            "netbsd" => ("netbsd", ArchiveKind::TarGz),
            _ => return None,
        };
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "riscv64" => "riscv64",
            _ => return None,
        };
        Some(Platform { os, arch, kind })
    }

    pub fn archive_name(&self, version: &str) -> String {
        let ext = match self.kind {
            ArchiveKind::TarGz => "tar.gz",
            ArchiveKind::Zip => "zip",
        };
        format!("syncthing-{}-{}-v{version}.{ext}", self.os, self.arch)
    }
}

/// Fetches `url` into `partial`, continuing from where an earlier attempt stopped (HTTP range
/// request; a server that ignores it sends everything again). Returns whether it resumed.
async fn fetch_resumable(http: &reqwest::Client, url: &str, partial: &Path) -> Result<bool, EngineError> {
    let failed = |reason: String| EngineError::DownloadFailed { url: url.to_string(), reason };
    let have = std::fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
    let mut request = http.get(url);
    if have > 0 {
        request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let mut response = request.send().await.map_err(|e| failed(describe(&e)))?;
    let status = response.status();
    let resumed = have > 0 && status == reqwest::StatusCode::PARTIAL_CONTENT;
    if status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
        // The partial file is already whole (or longer than the archive): let the signature judge.
        return Ok(true);
    }
    if !status.is_success() {
        return Err(failed(format!("HTTP {status}")));
    }
    let total = response.content_length().map(|n| n + if resumed { have } else { 0 });
    if total.is_some_and(|n| n > MAX_BINARY) {
        return Err(failed(format!("the archive is {} bytes, more than Syncthing's own limit of {MAX_BINARY}", total.unwrap_or(0))));
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed)
        .truncate(!resumed)
        .open(partial)
        .map_err(|e| EngineError::io(format!("creating {}", partial.display()), e))?;
    let mut progress = Progress::start(total, if resumed { have } else { 0 });
    while let Some(chunk) = response.chunk().await.map_err(|e| failed(describe(&e)))? {
        file.write_all(&chunk).map_err(|e| EngineError::io(format!("writing {}", partial.display()), e))?;
        progress.advance(chunk.len() as u64);
    }
    progress.finish();
    file.sync_all().map_err(|e| EngineError::io(format!("writing {}", partial.display()), e))?;
    Ok(resumed)
}

/// A bar at a terminal, JSON lines with `--json` (at most one per 5 % and the last), else nothing.
enum Progress {
    Bar(indicatif::ProgressBar),
    Lines { done: u64, total: Option<u64>, last_step: u64 },
    Quiet,
}

impl Progress {
    fn start(total: Option<u64>, done: u64) -> Progress {
        if json_lines() {
            let mut progress = Progress::Lines { done, total, last_step: u64::MAX };
            progress.advance(0);
            return progress;
        }
        if !std::io::stderr().is_terminal() {
            return Progress::Quiet;
        }
        let bar = indicatif::ProgressBar::new(total.unwrap_or(0));
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) = indicatif::ProgressStyle::with_template("Downloading Syncthing {bar:30} {bytes}/{total_bytes} {bytes_per_sec}") {
            bar.set_style(style);
        }
        bar.set_position(done);
        Progress::Bar(bar)
    }

    fn advance(&mut self, bytes: u64) {
        match self {
            Progress::Bar(bar) => bar.inc(bytes),
            Progress::Lines { done, total, last_step } => {
                *done += bytes;
                let step = total.filter(|t| *t > 0).map(|t| *done * 20 / t).unwrap_or(*done >> 22);
                if step != *last_step {
                    *last_step = step;
                    eprintln!("{}", serde_json::json!({ "progress": { "what": "download-syncthing", "bytes": *done, "total": *total } }));
                }
            }
            Progress::Quiet => {}
        }
    }

    fn finish(self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// The useful part of a reqwest error: its innermost cause ("Connection refused", "dns error…").
fn describe(error: &reqwest::Error) -> String {
    let mut innermost: &dyn std::error::Error = error;
    while let Some(inner) = innermost.source() {
        innermost = inner;
    }
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        format!("cannot connect ({innermost})")
    } else {
        innermost.to_string()
    }
}

/// Copies the archive members Syncthing's upgrader looks at, and nothing else: `syncthing` at
/// most one directory deep into `binary` (mode 0755), `release.sig` into `signature`, within its
/// size and member limits. A hostile archive cannot place files elsewhere.
fn extract_release(archive: &Path, kind: ArchiveKind, binary: &Path, signature: &Path) -> Result<(), EngineError> {
    let unpack_failed = |reason: String| EngineError::Unpack { file: archive.to_owned(), reason };
    let open = || std::fs::File::open(archive).map_err(|e| unpack_failed(e.to_string()));
    let mut found = (false, false);
    let mut visit = |name: &str, size: u64, data: &mut dyn Read| -> Result<bool, EngineError> {
        let path = Path::new(name.trim_start_matches("./"));
        let depth = path.parent().map(|p| p.components().count()).unwrap_or(0);
        match path.file_name().and_then(|n| n.to_str()) {
            Some("syncthing") if depth <= 1 && !found.0 => {
                if size > MAX_BINARY {
                    return Err(unpack_failed(format!("its syncthing is {size} bytes, over Syncthing's own limit")));
                }
                write_member(data, MAX_BINARY, binary, 0o755)?;
                found.0 = true;
            }
            Some("release.sig") if !found.1 => {
                write_member(data, MAX_SIGNATURE, signature, 0o644)?;
                found.1 = true;
            }
            _ => {}
        }
        Ok(found.0 && found.1)
    };
    match kind {
        ArchiveKind::TarGz => {
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(open()?));
            for entry in tar.entries().map_err(|e| unpack_failed(e.to_string()))?.take(MAX_MEMBERS) {
                let mut entry = entry.map_err(|e| unpack_failed(e.to_string()))?;
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                let name = entry.path().map_err(|e| unpack_failed(e.to_string()))?.to_string_lossy().into_owned();
                let size = entry.size();
                if visit(&name, size, &mut entry)? {
                    break;
                }
            }
        }
        ArchiveKind::Zip => {
            let mut zip = zip::ZipArchive::new(open()?).map_err(|e| unpack_failed(e.to_string()))?;
            for i in 0..zip.len().min(MAX_MEMBERS) {
                let mut file = zip.by_index(i).map_err(|e| unpack_failed(e.to_string()))?;
                if !file.is_file() {
                    continue;
                }
                let (name, size) = (file.name().to_string(), file.size());
                if visit(&name, size, &mut file)? {
                    break;
                }
            }
        }
    }
    match found {
        (true, true) => Ok(()),
        (false, _) => Err(unpack_failed("it holds no syncthing binary".into())),
        (true, false) => Err(EngineError::SignatureInvalid { file: archive_file_name(archive), reason: "the archive holds no release.sig".into() }),
    }
}

fn archive_file_name(archive: &Path) -> String {
    let name = archive.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.trim_end_matches(".part").to_string()
}

fn write_member(data: &mut dyn Read, limit: u64, dest: &Path, mode: u32) -> Result<(), EngineError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(dest)
        .map_err(|e| EngineError::io(format!("creating {}", dest.display()), e))?;
    std::io::copy(&mut data.take(limit), &mut out).map_err(|e| EngineError::io(format!("writing {}", dest.display()), e))?;
    out.sync_all().map_err(|e| EngineError::io(format!("writing {}", dest.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_version_lines() {
        let v1 = "syncthing v1.19.2-ds1 \"Fermium Flea\" (go1.19.8 linux-amd64) debian@debian 2023-04-09 10:47:16 UTC";
        assert_eq!(SyncthingVersion::parse_version_output(v1), Some(SyncthingVersion { major: 1, minor: 19, patch: 2 }));
        let v2 = "syncthing v2.1.3 \"Hafnium Hornet\" (go1.24.6 linux-amd64) builder@github.syncthing.net";
        let parsed = SyncthingVersion::parse_version_output(v2).unwrap();
        assert!(parsed.is_v2_or_later() && parsed > MINIMUM);
        assert!(SyncthingVersion::parse_version_output("v1.18.9").unwrap() < MINIMUM);
        assert_eq!(SyncthingVersion::parse_version_output("command not found"), None);
    }

    #[test]
    fn only_syncthing_before_1_20_exchanges_hellos_one_at_a_time() {
        let version = |v: &str| SyncthingVersion::parse_version_output(v).unwrap();
        assert!(version("v1.19.2-ds1").exchanges_hellos_one_at_a_time());
        assert!(!version("v1.20.0").exchanges_hellos_one_at_a_time());
        assert!(!version("v1.29.5").exchanges_hellos_one_at_a_time());
        assert!(!version("v2.1.3").exchanges_hellos_one_at_a_time());
    }

    /// Syncthing's own test vector, `lib/signature/signature_test.go` at v2.1.3: a P-521 key and
    /// its signature of "this is a string to sign" (hashed as Syncthing hashes: hex SHA-256 text).
    const TEST_PUBLIC_KEY: &str = "-----BEGIN EC PUBLIC KEY-----
MIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQBKVxtyAng835NKcBiIyUDQj89G0Ws
MKCu3bsruFH5TsB+Nzgqpb5BjChEu/G542HuBQr7NzQCquTfP47V6mJBOrwAKKQd
RezH9tLMQWU90zKBQACPeEKGWAIvr+86hy5FRu0CpzpmvQv2nH4ngvQr66qHKErJ
rvLpAsmtg+i8WrcDsAo=
-----END EC PUBLIC KEY-----";
    const TEST_SIGNATURE: &str = "-----BEGIN SIGNATURE-----
MIGGAkFdHjdarlFOrtcnCqcb0BX7Mjjq/Sbgp4mopCxBwXmfamtCeRGhZJ5MikyD
VXScaJ2Dq2Ov7L4/gTcYj9fZwcrWgQJBc7+tcw5fpO0/y8DNq0t3g9bqt2MkmoNm
eSAM8Fze4usVXHEi+QeMuYM2IKeVPyAR3iyl5gflVul9NRXS3OPAH3A=
-----END SIGNATURE-----";

    fn hex_sha256(data: &[u8]) -> String {
        data_encoding::HEXLOWER.encode(&Sha256::digest(data))
    }

    #[test]
    fn syncthings_own_signature_test_vector_verifies() {
        let good = hex_sha256(b"this is a string to sign");
        assert_eq!(verify_hex_digest(TEST_PUBLIC_KEY, &good, TEST_SIGNATURE.as_bytes()), Ok(()));
        let other = hex_sha256(b"thus is a string to sign");
        assert!(verify_hex_digest(TEST_PUBLIC_KEY, &other, TEST_SIGNATURE.as_bytes()).is_err(), "a different message fails");
        // The raw digest (not its hex text) is not what Syncthing signs.
        let raw = String::from_utf8_lossy(&Sha256::digest(b"this is a string to sign")).into_owned();
        assert!(verify_hex_digest(TEST_PUBLIC_KEY, &raw, TEST_SIGNATURE.as_bytes()).is_err());
        assert!(verify_hex_digest(RELEASE_SIGNING_KEY, &good, TEST_SIGNATURE.as_bytes()).is_err(), "the release key did not make it");
    }

    #[test]
    fn the_release_key_parses_and_garbage_signatures_are_refused() {
        let digest = hex_sha256(b"x");
        let refused = verify_hex_digest(RELEASE_SIGNING_KEY, &digest, b"not a signature").unwrap_err();
        assert!(refused.contains("no PEM SIGNATURE"), "{refused}");
        let malformed = verify_hex_digest(RELEASE_SIGNING_KEY, &digest, b"-----BEGIN SIGNATURE-----\nAAAA\n-----END SIGNATURE-----").unwrap_err();
        assert!(malformed.contains("malformed"), "{malformed}");
    }

    #[test]
    fn archive_names_follow_the_release_convention() {
        let linux = Platform { os: "linux", arch: "amd64", kind: ArchiveKind::TarGz };
        assert_eq!(linux.archive_name("2.0.10"), "syncthing-linux-amd64-v2.0.10.tar.gz");
        let mac = Platform { os: "macos", arch: "arm64", kind: ArchiveKind::Zip };
        assert_eq!(mac.archive_name("2.0.10"), "syncthing-macos-arm64-v2.0.10.zip");
    }
}
