//! Asking Syncthing to rescan exactly the paths that changed.
//!
//! Syncthing's own watcher waits at least a second before it scans; an explicit
//! `POST /rest/db/scan?folder=F&sub=PATH` right after a write delivers the file in ~20 ms. The
//! watcher (`super::watcher`) decides *what* to scan; a [`Scanner`] decides *how*.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use crate::engine::{RestClient, RestError};

/// Something that can rescan parts of a Syncthing folder.
///
/// `subs` are folder-relative paths with `/` separators; an empty slice means "the whole
/// folder". The call returns when the scan is done (Syncthing's REST scan is synchronous), which
/// is what lets the watcher keep exactly one scan in flight per folder.
pub trait Scanner: Send + Sync + 'static {
    fn scan(&self, folder_id: &str, subs: &[String]) -> impl Future<Output = Result<(), ScanError>> + Send;
}

/// A scan that failed: Syncthing's REST error, the one error of every REST call.
pub type ScanError = RestError;

/// Above this many paths in one request, [`RestScanner`] scans common parent directories instead:
/// a URL with thousands of `sub=` parameters is slow to build and parse, and Syncthing walks each
/// sub separately while one directory walk covers them all.
pub const DEFAULT_MAX_SUBS: usize = 64;

/// A scan request for one folder, reduced to at most a given number of paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanScope {
    Whole,
    Subs(Vec<String>),
}

/// Reduces `subs` to at most `max_subs` paths that still cover every one of them: first drops
/// paths already covered by an ancestor in the list, then repeatedly replaces the deepest paths
/// by their parent directories. Reaching the folder root means scanning the whole folder.
pub fn plan_scan(subs: &[String], max_subs: usize) -> ScanScope {
    let max_subs = max_subs.max(1);
    if subs.is_empty() || subs.iter().any(|s| s.is_empty()) {
        return ScanScope::Whole;
    }
    let mut set: BTreeSet<String> = subs.iter().cloned().collect();
    set = drop_covered(set);
    while set.len() > max_subs {
        let deepest = set.iter().map(|s| depth(s)).max().unwrap_or(0);
        let mut lifted = BTreeSet::new();
        for path in set {
            if depth(&path) == deepest {
                match parent(&path) {
                    Some(p) => {
                        lifted.insert(p.to_string());
                    }
                    None => return ScanScope::Whole,
                }
            } else {
                lifted.insert(path);
            }
        }
        set = drop_covered(lifted);
    }
    ScanScope::Subs(set.into_iter().collect())
}

fn depth(path: &str) -> usize {
    path.matches('/').count()
}

/// The parent directory of a folder-relative path; `None` when the parent is the folder root.
pub(crate) fn parent(path: &str) -> Option<&str> {
    path.rfind('/').map(|i| &path[..i])
}

/// Whether `ancestor` is `path` itself or one of its parent directories.
pub(crate) fn covers(ancestor: &str, path: &str) -> bool {
    ancestor.is_empty()
        || path == ancestor
        || (path.len() > ancestor.len() && path.starts_with(ancestor) && path.as_bytes()[ancestor.len()] == b'/')
}

/// Keeps only paths that no other path in the set covers. In a sorted set a path's descendants
/// follow it (`a` < `a/b` < `a0`), but unrelated siblings can sit between (`a` < `a-b` < `a/b`),
/// so each candidate is checked against its own ancestors.
fn drop_covered(set: BTreeSet<String>) -> BTreeSet<String> {
    let kept: BTreeSet<String> = set
        .iter()
        .filter(|path| {
            let mut p = path.as_str();
            while let Some(up) = parent(p) {
                if set.contains(up) {
                    return false;
                }
                p = up;
            }
            true
        })
        .cloned()
        .collect();
    kept
}

/// A scan of a large directory legitimately takes minutes; past this, something is stuck and the
/// folder's next batch must not wait forever behind it.
const SCAN_TIMEOUT: Duration = Duration::from_secs(600);

/// Scans through the engine's REST client (`RestClient::scan`), at most `max_subs` paths a
/// request (see [`plan_scan`]).
#[derive(Clone)]
pub struct RestScanner {
    rest: RestClient,
    max_subs: usize,
}

impl RestScanner {
    pub fn new(rest: &RestClient) -> Self {
        RestScanner { rest: rest.with_timeout(SCAN_TIMEOUT), max_subs: DEFAULT_MAX_SUBS }
    }

    pub fn with_max_subs(mut self, max_subs: usize) -> Self {
        self.max_subs = max_subs.max(1);
        self
    }
}

impl Scanner for RestScanner {
    async fn scan(&self, folder_id: &str, subs: &[String]) -> Result<(), ScanError> {
        match plan_scan(subs, self.max_subs) {
            ScanScope::Whole => self.rest.scan::<&str>(folder_id, &[]).await,
            ScanScope::Subs(paths) => self.rest.scan(folder_id, &paths).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn few_paths_pass_through_without_covered_children() {
        assert_eq!(plan_scan(&s(&["a/b", "a", "a-b", "c/d"]), 10), ScanScope::Subs(s(&["a", "a-b", "c/d"])));
    }

    #[test]
    fn empty_or_root_means_whole_folder() {
        assert_eq!(plan_scan(&[], 10), ScanScope::Whole);
        assert_eq!(plan_scan(&s(&["x", ""]), 10), ScanScope::Whole);
    }

    #[test]
    fn many_files_in_one_directory_become_that_directory() {
        let subs: Vec<String> = (0..2000).map(|i| format!("small/f{i:05}")).collect();
        assert_eq!(plan_scan(&subs, 64), ScanScope::Subs(s(&["small"])));
    }

    #[test]
    fn deepest_paths_are_lifted_first() {
        let mut subs: Vec<String> = (0..10).map(|i| format!("deep/x/y/f{i}")).collect();
        subs.push("top".into());
        subs.push("other/z".into());
        assert_eq!(plan_scan(&subs, 3), ScanScope::Subs(s(&["deep/x/y", "other/z", "top"])));
    }

    #[test]
    fn many_top_level_files_mean_whole_folder() {
        let subs: Vec<String> = (0..100).map(|i| format!("f{i}")).collect();
        assert_eq!(plan_scan(&subs, 64), ScanScope::Whole);
    }

    #[test]
    fn covers_is_component_wise() {
        assert!(covers("a", "a/b"));
        assert!(covers("a", "a"));
        assert!(covers("", "anything"));
        assert!(!covers("a", "ab"));
        assert!(!covers("a/b", "a"));
    }
}
