//! The sync root: where the shared folders live, and `<root>/.botsync/` for botsync's own state.

use std::path::{Path, PathBuf};

/// The environment variable the original botsync used for the root; kept for compatibility.
pub const ROOT_ENV: &str = "BOTSYNC_ROOT";

#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("cannot find your home directory; pass --root or set {ROOT_ENV}")]
    NoHome,
    #[error("{ROOT_ENV} is set but empty; unset it or give it a directory path")]
    EmptyEnv,
    #[error("cannot resolve the current directory for the relative root {0}")]
    NoCwd(PathBuf),
}

/// The three shared folders, their Syncthing folder IDs and the directories they live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedFolder {
    Shared,
    Deliverables,
    Inbox,
}

impl SharedFolder {
    pub const ALL: [SharedFolder; 3] = [SharedFolder::Shared, SharedFolder::Deliverables, SharedFolder::Inbox];

    pub fn dir_name(self) -> &'static str {
        match self {
            SharedFolder::Shared => "shared",
            SharedFolder::Deliverables => "deliverables",
            SharedFolder::Inbox => "inbox",
        }
    }

    pub fn folder_id(self) -> &'static str {
        match self {
            SharedFolder::Shared => "botsync-shared",
            SharedFolder::Deliverables => "botsync-deliverables",
            SharedFolder::Inbox => "botsync-inbox",
        }
    }

    pub fn from_folder_id(id: &str) -> Option<SharedFolder> {
        Self::ALL.into_iter().find(|f| f.folder_id() == id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRoot {
    path: PathBuf,
}

impl SyncRoot {
    /// `--root`, else `$BOTSYNC_ROOT`, else `~/sync`. Relative paths are made absolute, because
    /// the root is recorded in state and used by a background process with another cwd.
    pub fn locate(explicit: Option<&Path>) -> Result<Self, RootError> {
        let chosen = match explicit {
            Some(path) => path.to_owned(),
            None => match std::env::var_os(ROOT_ENV) {
                Some(value) if value.is_empty() => return Err(RootError::EmptyEnv),
                Some(value) => PathBuf::from(value),
                None => directories::BaseDirs::new().ok_or(RootError::NoHome)?.home_dir().join("sync"),
            },
        };
        Self::at(chosen)
    }

    pub fn at(path: PathBuf) -> Result<Self, RootError> {
        let path = if path.is_absolute() {
            path
        } else {
            std::env::current_dir().map_err(|_| RootError::NoCwd(path.clone()))?.join(path)
        };
        Ok(SyncRoot { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// botsync's private state; not inside any shared folder, so it never syncs.
    pub fn state_dir(&self) -> PathBuf {
        self.path.join(".botsync")
    }

    pub fn config_file(&self) -> PathBuf {
        self.state_dir().join("config.json")
    }

    pub fn folder_dir(&self, folder: SharedFolder) -> PathBuf {
        self.path.join(folder.dir_name())
    }

    pub fn manifest_file(&self) -> PathBuf {
        self.path.join("BOTSYNC.md")
    }

    /// The root as shown to people: `~/sync` rather than `/home/me/sync`.
    pub fn display(&self) -> String {
        tilde(&self.path)
    }
}

/// Shortens a path under the home directory to `~/…` for messages.
pub fn tilde(path: &Path) -> String {
    if let Some(home) = directories::BaseDirs::new().map(|b| b.home_dir().to_owned()) {
        if let Ok(rest) = path.strip_prefix(&home) {
            return if rest.as_os_str().is_empty() { "~".into() } else { format!("~/{}", rest.display()) };
        }
    }
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_root_wins_and_is_absolute() {
        let root = SyncRoot::locate(Some(Path::new("relative/dir"))).unwrap();
        assert!(root.path().is_absolute());
        assert!(root.path().ends_with("relative/dir"));
        assert_eq!(root.config_file(), root.path().join(".botsync/config.json"));
    }

    #[test]
    fn folder_ids_round_trip() {
        for folder in SharedFolder::ALL {
            assert_eq!(SharedFolder::from_folder_id(folder.folder_id()), Some(folder));
        }
        assert_eq!(SharedFolder::from_folder_id("default"), None);
    }
}
