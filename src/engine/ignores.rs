//! `<folder>/.stignore`: the files that should never sync, written once by `init` (an existing
//! file, the user's, is never touched). Syncthing does not sync `.stignore` itself, so each
//! machine keeps its own.

use std::path::PathBuf;

use super::EngineError;
use crate::root::{SharedFolder, SyncRoot};

/// Editor swap and lock files, desktop metadata, and downloads still in progress. `(?d)` lets
/// Syncthing delete such a file when it is all that keeps a directory from being removed.
pub const DEFAULTS: &str = "\
// botsync's defaults: files here never sync to your other machines.
// Add your own patterns below, one per line (`*.log`, `build/`, `/only-at-top.txt`);
// `!pattern` syncs something a later line would ignore. This file itself does not sync.
// Syntax: https://docs.syncthing.net/users/ignoring.html
(?d).DS_Store
(?d)._*
(?d)Thumbs.db
(?d)desktop.ini
(?d).Spotlight-V100
(?d).Trashes
*.swp
*.swo
*.swx
.*.sw?
*~
.#*
4913
.~lock.*#
~$*
*.part
*.partial
*.crdownload
*.download
";

/// Writes the defaults into each folder that has no `.stignore`; returns the files it created.
pub fn write_defaults(root: &SyncRoot) -> Result<Vec<PathBuf>, EngineError> {
    let mut created = Vec::new();
    for folder in SharedFolder::ALL {
        let path = root.folder_dir(folder).join(".stignore");
        if path.exists() {
            continue;
        }
        std::fs::write(&path, DEFAULTS).map_err(|e| EngineError::io(format!("writing {}", path.display()), e))?;
        created.push(path);
    }
    Ok(created)
}
