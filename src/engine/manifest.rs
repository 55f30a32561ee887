//! `<root>/BOTSYNC.md`: tells an agent that finds the root what the folders are for.

use std::path::Path;

use super::EngineError;

/// The first line identifies a manifest botsync wrote (and may therefore rewrite).
const HEADER: &str = "# botsync root";

pub fn text() -> String {
    format!(
        "{HEADER}\n\n\
This directory is synced peer-to-peer with other machines by botsync (Syncthing underneath).\n\
Files appear on every paired machine within seconds; nothing goes through a server.\n\n\
## Folders\n\n\
| Folder | Use it for |\n\
|---|---|\n\
| `shared/` | Work both sides read and write. Conflicts are possible here. |\n\
| `deliverables/` | Outputs an agent hands to a human for review. Agents write, humans read. |\n\
| `inbox/` | Files a human drops for an agent to process. Humans write, agents read. |\n\n\
## Rules for agents\n\n\
- Write a file completely before others rely on it: write to a temporary name in the same folder,\n  then rename it (a rename syncs as one change).\n\
- Do not edit the same file on two machines at once. When that happens, both versions survive: the\n  newer keeps the name, the other becomes `<name>.sync-conflict-<date>-<time>-<device><ext>` next to it.\n  Look for `*.sync-conflict-*` files, merge them by hand, then delete them.\n\
- Deleting a file deletes it on every machine.\n\
- `.botsync/` holds botsync's private state (keys, configuration); it is not synced. Do not edit it.\n\
- `.stfolder` directories are Syncthing's folder markers; leave them alone.\n\
- Each folder's `.stignore` lists files that never sync (editor swap files, `.DS_Store`,\n  `Thumbs.db`, partial downloads). Add your own patterns there, one per line; it does not sync itself.\n\
- When a peer overwrites or deletes a file, the previous version is kept for 30 days in the\n  folder's `.stversions/`. List them with `botsync versions <path>`, bring one back with\n  `botsync restore <path> [--at TIME]`. Do not edit `.stversions/` by hand.\n\n\
## Commands\n\n\
`botsync status` (add `--json` for agents) shows peers and whether folders are in sync;\n\
`botsync wait <path>` returns once every peer holds the current version of that file (a\n\
delivery receipt; `--peer NAME` for one peer, `--timeout S`); `botsync watch --json` prints\n\
arrivals and receipts (`delivered`) as they happen; `botsync invite` prints a code to add a\n\
machine; `botsync doctor` checks the setup. `botsync mcp` serves all of this to MCP clients over stdio.\n"
    )
}

/// Writes the manifest unless a file of someone else's is already there.
pub fn write(path: &Path) -> Result<bool, EngineError> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        if !existing.starts_with(HEADER) || existing == text() {
            return Ok(false);
        }
    } else if path.exists() {
        return Ok(false);
    }
    std::fs::write(path, text()).map_err(|e| EngineError::io(format!("writing {}", path.display()), e))?;
    Ok(true)
}
