//! The file tools: `send` (write atomically), `list` (with who last changed each file) and
//! `read` (capped, by offset). Paths arrive already checked (`FolderPath`).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{DeliveryOutput, Folder, WritableFolder};
use crate::engine::Engine;
use crate::error::Error;
use crate::folder_path::FolderPath;
use crate::root::SyncRoot;

/// `text` or `base64` content, decoded.
pub const MAX_INLINE_BYTES: usize = 8 * 1024 * 1024;
/// A local file copied with `copyFrom`.
pub const MAX_COPY_BYTES: u64 = 256 * 1024 * 1024;
/// One `read` call.
pub const MAX_READ_BYTES: u32 = 1024 * 1024;
const DEFAULT_READ_BYTES: u32 = 256 * 1024;
const DEFAULT_LIST_LIMIT: u32 = 500;
const MAX_LIST_LIMIT: u32 = 5000;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendInput {
    /// `deliverables` (for the human) or `shared`.
    pub folder: WritableFolder,
    /// Where, relative to the folder (directories are created).
    pub path: String,
    /// UTF-8 content (up to 8 MiB).
    pub text: Option<String>,
    /// Binary content, base64 (up to 8 MiB decoded).
    pub base64: Option<String>,
    /// Copy this local file instead (absolute path, up to 256 MiB).
    pub copy_from: Option<String>,
    /// Return only once the peers hold it.
    pub wait: Option<bool>,
    /// With `wait`: only these peers (names or device IDs).
    pub peers: Option<Vec<String>>,
    /// With `wait`: give up after this many milliseconds (default 60000).
    pub timeout_ms: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendOutput {
    /// `folder/relative`.
    pub path: String,
    pub local_path: String,
    pub size: u64,
    /// With `wait`: the receipt.
    pub delivered: Option<DeliveryOutput>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {
    pub folder: Folder,
    /// A subdirectory, relative to the folder; default the whole folder.
    pub path: Option<String>,
    /// At most this many files (default 500, at most 5000).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListOutput {
    pub folder: String,
    pub files: Vec<FileEntry>,
    /// More files exist than `limit`.
    pub truncated: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileEntry {
    /// Relative to the folder.
    pub path: String,
    pub size: u64,
    /// Modification time (RFC 3339).
    pub modified: String,
    /// Who made the current version: `this machine`, or a peer as `name (SHORTID)`. Absent
    /// until Syncthing has indexed the file.
    pub last_changed_by: Option<String>,
    /// Syncthing's version vector (absent until indexed).
    pub version: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadInput {
    pub folder: Folder,
    /// The file, relative to the folder.
    pub path: String,
    /// Byte offset to start at (from a previous `nextOffset`).
    pub offset: Option<u64>,
    /// At most this many bytes (default 262144, at most 1048576).
    pub max_bytes: Option<u32>,
    /// `text` (default; UTF-8) or `base64`.
    pub encoding: Option<Encoding>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Text,
    Base64,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadOutput {
    pub path: String,
    /// The whole file's size.
    pub size: u64,
    pub offset: u64,
    /// Bytes returned.
    pub length: u64,
    pub text: Option<String>,
    pub base64: Option<String>,
    /// Where the next call continues; absent at the end of the file.
    pub next_offset: Option<u64>,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::Engine(crate::engine::EngineError::io(context, e))
}

pub async fn send(root: &SyncRoot, target: &FolderPath, input: &SendInput) -> Result<SendOutput, Error> {
    if target.relative.is_empty() {
        return Err(Error::Usage("`path` names the file to write, relative to the folder".into()));
    }
    let content = match (&input.text, &input.base64, &input.copy_from) {
        (Some(text), None, None) => Content::Bytes(text.as_bytes().to_vec()),
        (None, Some(encoded), None) => {
            if encoded.len() > MAX_INLINE_BYTES / 3 * 4 + 4 {
                return Err(too_large_inline());
            }
            let cleaned: String = encoded.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            Content::Bytes(data_encoding::BASE64.decode(cleaned.as_bytes()).map_err(|e| Error::Usage(format!("`base64` is not valid base64: {e}")))?)
        }
        (None, None, Some(source)) => Content::Copy(check_source(root, source)?),
        _ => return Err(Error::Usage("give exactly one of `text`, `base64` or `copyFrom`".into())),
    };
    if let Content::Bytes(bytes) = &content {
        if bytes.len() > MAX_INLINE_BYTES {
            return Err(too_large_inline());
        }
    }
    let destination = target.local_path(root);
    if destination.is_dir() {
        return Err(Error::Usage(format!("{} is a directory", target.display())));
    }
    let parent = destination.parent().expect("a file in a folder has a parent").to_owned();
    std::fs::create_dir_all(&parent).map_err(io(format!("creating {}", parent.display())))?;
    // Created directories could not have escaped (the path has no `..` and its existing part was
    // checked), but a racing symlink swap could: check again before writing.
    target.check_no_escape(root)?;
    let name = destination.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    // Syncthing's own temporary-name pattern: its scanner skips it, so no half-written file syncs.
    let temporary = parent.join(format!(".syncthing.{name}.{}.tmp", std::process::id()));
    let written = match &content {
        Content::Bytes(bytes) => std::fs::write(&temporary, bytes).map(|()| bytes.len() as u64),
        Content::Copy(source) => std::fs::copy(source, &temporary),
    };
    let size = match written.and_then(|size| std::fs::rename(&temporary, &destination).map(|()| size)) {
        Ok(size) => size,
        Err(e) => {
            let _ = std::fs::remove_file(&temporary);
            return Err(io(format!("writing {}", target.display()))(e));
        }
    };
    Ok(SendOutput { path: target.display(), local_path: destination.display().to_string(), size, delivered: None })
}

enum Content {
    Bytes(Vec<u8>),
    Copy(std::path::PathBuf),
}

fn too_large_inline() -> Error {
    Error::TooLarge(format!("content over {} MiB; write it to a local file and send it with `copyFrom`", MAX_INLINE_BYTES / 1024 / 1024))
}

/// A local file to copy: a regular file, not botsync's private state, under the copy cap.
fn check_source(root: &SyncRoot, source: &str) -> Result<std::path::PathBuf, Error> {
    let path = Path::new(source);
    if !path.is_absolute() {
        return Err(Error::Usage(format!("`copyFrom` must be an absolute path, not {source:?}")));
    }
    let resolved = path.canonicalize().map_err(|_| Error::NotFound(format!("{source} does not exist")))?;
    let private = root.state_dir().canonicalize().unwrap_or_else(|_| root.state_dir());
    if resolved.starts_with(&private) {
        return Err(Error::PathRefused(format!("{source} is botsync's private state; it cannot be sent")));
    }
    let meta = std::fs::metadata(&resolved).map_err(io(format!("reading {source}")))?;
    if !meta.is_file() {
        return Err(Error::Usage(format!("{source} is not a regular file")));
    }
    if meta.len() > MAX_COPY_BYTES {
        return Err(Error::TooLarge(format!("{source} is over {} MiB, the cap for one send", MAX_COPY_BYTES / 1024 / 1024)));
    }
    Ok(resolved)
}

pub async fn list(root: &SyncRoot, target: &FolderPath, limit: Option<u32>) -> Result<ListOutput, Error> {
    let limit = limit.unwrap_or(DEFAULT_LIST_LIMIT).clamp(1, MAX_LIST_LIMIT) as usize;
    let base = root.folder_dir(target.folder);
    let start = target.local_path(root);
    if !start.is_dir() {
        return Err(Error::NotFound(format!("{} is not a directory", target.display())));
    }
    let (mut found, truncated) = crate::daemon::notify::derive::folder_files(&base, &start, limit);
    found.retain(|(_, meta)| meta.is_file());
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let who = Changers::load(root).await;
    let mut files = Vec::with_capacity(found.len());
    for (path, meta) in found {
        let record = match &who {
            Some(who) => who.engine.rest().db_file(target.folder.folder_id(), &path).await.ok().flatten(),
            None => None,
        };
        let modified = meta.modified().map(crate::clock::unix_ms).map(crate::clock::rfc3339).unwrap_or_default();
        files.push(FileEntry {
            path,
            size: meta.len(),
            modified,
            last_changed_by: record.as_ref().and_then(|r| who.as_ref().map(|w| w.label(&r.global.modified_by))),
            version: record.map(|r| r.global.version_string()),
        });
    }
    Ok(ListOutput { folder: target.folder.dir_name().to_string(), files, truncated })
}

/// Short device IDs to labels, for `lastChangedBy`. `None` while the engine is not running.
struct Changers {
    engine: Engine,
    me: String,
    names: HashMap<String, String>,
}

impl Changers {
    async fn load(root: &SyncRoot) -> Option<Changers> {
        let engine = Engine::load(root).ok()?;
        let devices = engine.rest().devices().await.ok()?;
        let me = engine.device_id().to_string();
        let names = devices
            .into_iter()
            .map(|d| {
                let id = d.device_id.to_string();
                (id.get(..7).unwrap_or(&id).to_string(), crate::commands::wait::label(&id, &d.name))
            })
            .collect();
        Some(Changers { me: me.get(..7).unwrap_or(&me).to_string(), engine, names })
    }

    fn label(&self, short: &str) -> String {
        if short == self.me {
            "this machine".into()
        } else {
            self.names.get(short).cloned().unwrap_or_else(|| short.to_string())
        }
    }
}

pub fn read(root: &SyncRoot, target: &FolderPath, input: &ReadInput) -> Result<ReadOutput, Error> {
    let path = target.local_path(root);
    let meta = std::fs::metadata(&path).map_err(|_| Error::NotFound(format!("{} does not exist", target.display())))?;
    if !meta.is_file() {
        return Err(Error::Usage(format!("{} is not a file", target.display())));
    }
    let max = input.max_bytes.unwrap_or(DEFAULT_READ_BYTES);
    if max > MAX_READ_BYTES {
        return Err(Error::TooLarge(format!("maxBytes {max} is over the cap of {MAX_READ_BYTES}; read in steps with `offset`")));
    }
    let size = meta.len();
    let offset = input.offset.unwrap_or(0);
    if offset > size {
        return Err(Error::Usage(format!("offset {offset} is past the end of {} ({size} bytes)", target.display())));
    }
    let mut file = std::fs::File::open(&path).map_err(io(format!("opening {}", target.display())))?;
    file.seek(SeekFrom::Start(offset)).map_err(io(format!("reading {}", target.display())))?;
    let mut bytes = Vec::with_capacity(max.min(size as u32 + 1) as usize);
    file.take(u64::from(max)).read_to_end(&mut bytes).map_err(io(format!("reading {}", target.display())))?;
    let encoding = input.encoding.unwrap_or(Encoding::Text);
    let (text, base64) = match encoding {
        Encoding::Base64 => (None, Some(data_encoding::BASE64.encode(&bytes))),
        Encoding::Text => {
            match std::str::from_utf8(&bytes) {
                Ok(_) => {}
                // A character cut by the byte limit: stop before it, the next call starts there.
                Err(e) if e.error_len().is_none() && offset + (bytes.len() as u64) < size => bytes.truncate(e.valid_up_to()),
                Err(_) => {
                    return Err(Error::Usage(format!("{} is not UTF-8 text; read it with encoding `base64`", target.display())))
                }
            }
            (Some(String::from_utf8(bytes.clone()).expect("checked above")), None)
        }
    };
    let end = offset + bytes.len() as u64;
    Ok(ReadOutput { path: target.display(), size, offset, length: bytes.len() as u64, text, base64, next_offset: (end < size).then_some(end) })
}
