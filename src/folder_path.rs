//! A path inside one of the root's shared folders, checked once where it enters botsync (the
//! CLI, the Node API, the MCP server) so that nothing downstream can be pointed outside its
//! folder: no `..`, no absolute path where a relative one is expected, no symlink that leads
//! out, and nothing in the private directories (`.botsync/`, Syncthing's `.stversions/`,
//! `.stfolder`, `.stignore`).

use std::path::{Component, Path, PathBuf};

use crate::root::{SharedFolder, SyncRoot};

/// Names botsync and Syncthing keep for themselves inside a folder.
const PRIVATE_NAMES: [&str; 4] = [".stversions", ".stfolder", ".stignore", ".botsync"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PathRefused(pub String);

/// `folder` plus a relative path with `/` separators (empty: the folder itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderPath {
    pub folder: SharedFolder,
    pub relative: String,
}

impl FolderPath {
    /// A path given relative to `folder` (MCP tools, the Node API's `folder` + `path`).
    pub fn in_folder(folder: SharedFolder, relative: &str) -> Result<FolderPath, PathRefused> {
        if relative.contains('\0') {
            return Err(PathRefused("paths cannot contain NUL bytes".into()));
        }
        let trimmed = relative.trim_start_matches("./");
        if Path::new(trimmed).is_absolute() || trimmed.starts_with('\\') {
            return Err(PathRefused(format!("{relative:?} is absolute; give a path relative to {}/", folder.dir_name())));
        }
        let mut parts = Vec::new();
        for component in Path::new(trimmed).components() {
            match component {
                Component::Normal(part) => {
                    let part = part.to_str().ok_or_else(|| PathRefused(format!("{relative:?} is not valid UTF-8")))?;
                    if part.contains('\\') {
                        return Err(PathRefused(format!("{relative:?} contains a backslash; use / between directories")));
                    }
                    parts.push(part);
                }
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(PathRefused(format!("{relative:?} contains `..`; paths must stay inside {}/", folder.dir_name())))
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(PathRefused(format!("{relative:?} is absolute; give a path relative to {}/", folder.dir_name())))
                }
            }
        }
        if let Some(first) = parts.first().filter(|p| PRIVATE_NAMES.contains(p)) {
            return Err(PathRefused(format!("{first} is private to botsync and Syncthing; it cannot be read or written this way")));
        }
        Ok(FolderPath { folder, relative: parts.join("/") })
    }

    /// `shared/notes.md` style: the folder's directory name first.
    pub fn in_root(relative_to_root: &str) -> Result<FolderPath, PathRefused> {
        let trimmed = relative_to_root.trim_start_matches("./");
        let (first, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
        let folder = SharedFolder::ALL.into_iter().find(|f| f.dir_name() == first).ok_or_else(|| {
            PathRefused(format!("{relative_to_root:?} is not inside shared/, deliverables/ or inbox/ of the root"))
        })?;
        Self::in_folder(folder, rest)
    }

    /// A path as a person types it: absolute, or relative to `cwd` when `cwd` is inside the
    /// root, else relative to the root (`deliverables/report.md`). No file has to exist.
    pub fn locate(root: &SyncRoot, given: &str, cwd: Option<&Path>) -> Result<FolderPath, PathRefused> {
        let given_path = Path::new(given);
        let absolute = if given_path.is_absolute() {
            given_path.to_owned()
        } else {
            match cwd.filter(|c| c.starts_with(root.path())) {
                Some(cwd) => cwd.join(given_path),
                None => root.path().join(given_path),
            }
        };
        let lexical = normalize(&absolute);
        let relative = lexical.strip_prefix(root.path()).map_err(|_| {
            PathRefused(format!("{given} is outside the botsync root {}", root.display()))
        })?;
        let relative = relative.to_str().ok_or_else(|| PathRefused(format!("{given} is not valid UTF-8")))?;
        Self::in_root(relative)
    }

    /// Where it lives on this machine.
    pub fn local_path(&self, root: &SyncRoot) -> PathBuf {
        let dir = root.folder_dir(self.folder);
        if self.relative.is_empty() {
            dir
        } else {
            dir.join(&self.relative)
        }
    }

    /// `shared/notes.md`.
    pub fn display(&self) -> String {
        if self.relative.is_empty() {
            format!("{}/", self.folder.dir_name())
        } else {
            format!("{}/{}", self.folder.dir_name(), self.relative)
        }
    }

    /// Refuses a path whose existing part resolves (through symlinks) outside its folder. The
    /// part that does not exist yet cannot lead anywhere else.
    pub fn check_no_escape(&self, root: &SyncRoot) -> Result<(), PathRefused> {
        let folder_dir = root.folder_dir(self.folder);
        let base = folder_dir.canonicalize().unwrap_or(folder_dir);
        let mut existing = self.local_path(root);
        while std::fs::symlink_metadata(&existing).is_err() {
            if !existing.pop() {
                return Ok(());
            }
        }
        let resolved = existing.canonicalize().map_err(|e| PathRefused(format!("cannot resolve {}: {e}", self.display())))?;
        if resolved.starts_with(&base) {
            Ok(())
        } else {
            Err(PathRefused(format!("{} leads outside {}/ through a symbolic link", self.display(), self.folder.dir_name())))
        }
    }
}

/// Removes `.` and folds `..` without touching the disk (the file need not exist).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> SyncRoot {
        SyncRoot::at(PathBuf::from("/r")).unwrap()
    }

    #[test]
    fn relative_paths_stay_inside_their_folder() {
        let ok = FolderPath::in_folder(SharedFolder::Shared, "./notes/plan.md").unwrap();
        assert_eq!(ok.relative, "notes/plan.md");
        assert_eq!(ok.display(), "shared/notes/plan.md");
        for bad in ["../x", "a/../../x", "/etc/passwd", ".stversions/x", ".botsync/config.json", ".stignore", "a\0b", "a\\..\\b"] {
            assert!(FolderPath::in_folder(SharedFolder::Shared, bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn typed_paths_resolve_against_the_root_or_cwd() {
        let r = root();
        assert_eq!(FolderPath::locate(&r, "deliverables/report.md", None).unwrap().display(), "deliverables/report.md");
        assert_eq!(FolderPath::locate(&r, "/r/inbox/a.txt", None).unwrap().display(), "inbox/a.txt");
        assert_eq!(FolderPath::locate(&r, "a.txt", Some(Path::new("/r/shared/sub"))).unwrap().display(), "shared/sub/a.txt");
        assert_eq!(FolderPath::locate(&r, "shared/a.txt", Some(Path::new("/elsewhere"))).unwrap().display(), "shared/a.txt");
        assert!(FolderPath::locate(&r, "/etc/passwd", None).is_err());
        assert!(FolderPath::locate(&r, "shared/../../etc/passwd", None).is_err());
        assert!(FolderPath::locate(&r, ".botsync/config.json", None).is_err());
        assert!(FolderPath::locate(&r, "shared/.stversions/a.txt", None).is_err());
    }

    #[test]
    fn symlinks_out_of_the_folder_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let r = SyncRoot::at(dir.path().to_owned()).unwrap();
        std::fs::create_dir_all(r.folder_dir(SharedFolder::Shared)).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), r.folder_dir(SharedFolder::Shared).join("out")).unwrap();
        let escaping = FolderPath::in_folder(SharedFolder::Shared, "out/secret.txt").unwrap();
        assert!(escaping.check_no_escape(&r).is_err());
        let fine = FolderPath::in_folder(SharedFolder::Shared, "new/dir/file.txt").unwrap();
        assert!(fine.check_no_escape(&r).is_ok());
    }
}
