//! Private state files: written atomically (temp file + rename) with mode 0600, so a crash
//! never leaves a half-written file and no other user can read keys or tokens.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("{path} is corrupted ({reason}); restore it from a backup or remove the root's .botsync folder to start over")]
    Corrupted { path: PathBuf, reason: String },
}

/// Creates `dir` (and parents) with mode 0700 where it has to create it.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Replaces `path` with `bytes` atomically; the file is 0600 from the moment it exists.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StateFileError> {
    let fail = |source| StateFileError::Write { path: path.to_owned(), source };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    create_private_dir(dir).map_err(fail)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
        std::process::id()
    ));
    let result = (|| {
        let mut file = open_private(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(fail)
}

fn open_private(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StateFileError> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("state types always serialize");
    bytes.push(b'\n');
    write_private(path, &bytes)
}

/// Reads a JSON state file; `Ok(None)` when it does not exist. An empty or unparsable file is
/// `Corrupted`, never silently treated as absent: absent would mean "start over" and lose a pairing.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StateFileError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StateFileError::Read { path: path.to_owned(), source }),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(StateFileError::Corrupted { path: path.to_owned(), reason: "empty file".into() });
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StateFileError::Corrupted { path: path.to_owned(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn written_files_are_private_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/state.json");
        write_json(&path, &serde_json::json!({"key": "secret"})).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let back: serde_json::Value = read_json(&path).unwrap().unwrap();
        assert_eq!(back["key"], "secret");
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file may remain");
    }

    #[test]
    fn empty_and_garbage_files_are_corrupted_not_absent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        assert!(read_json::<serde_json::Value>(&path).unwrap().is_none());
        fs::write(&path, "").unwrap();
        assert!(matches!(read_json::<serde_json::Value>(&path), Err(StateFileError::Corrupted { .. })));
        fs::write(&path, "{\"truncated\": ").unwrap();
        assert!(matches!(read_json::<serde_json::Value>(&path), Err(StateFileError::Corrupted { .. })));
    }
}
