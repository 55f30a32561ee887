//! Versions a peer cannot destroy, between two real paired roots: trash-can versioning is on
//! for every folder; a file the peer overwrites or deletes can be listed and restored; the
//! restored file syncs back to the peer as a new version (and the peer keeps the copy it
//! replaces); restoring what never existed, or from before any version, is a clear error.
//! Run with Debian's 1.19.2 and with 1.29.5 when it is unpacked here.

use std::path::Path;

use crate::support::agents::{isolated_with_1_29, pair, wait_options};
use botsync::commands::versions::{self, KeepOptions, RestoreOptions, VersionsOptions};
use botsync::commands::wait;
use botsync::engine::Engine;
use botsync::root::SharedFolder;
use botsync::ErrorCode;
use crate::support::{block_on, isolated, root_at, StopOnDrop};

async fn list(root: &Path, path: &str) -> Vec<versions::KeptVersion> {
    let options = VersionsOptions { root: Some(root.display().to_string()), path: path.into() };
    versions::list(&options).await.expect("versions").versions
}

fn restore_options(root: &Path, path: &str, at: Option<&str>) -> RestoreOptions {
    RestoreOptions { root: Some(root.display().to_string()), path: path.into(), at: at.map(str::to_owned) }
}

fn versions_flow(scratch: &Path) {
    let (a, b) = (scratch.join("a"), scratch.join("b"));
    let _guards = (StopOnDrop(root_at(a.clone())), StopOnDrop(root_at(b.clone())));
    block_on(async {
        pair(&a, &b).await;
        // Every folder on both sides has trash-can versioning, 30 days by default.
        for root in [&a, &b] {
            let rest = Engine::load(&root_at(root.clone())).unwrap().rest();
            for folder in SharedFolder::ALL {
                let config = rest.folder(folder.folder_id()).await.unwrap().unwrap();
                let versioning = &config.other["versioning"];
                assert_eq!(versioning["type"], "trashcan", "{}: {versioning}", folder.folder_id());
                assert_eq!(versioning["params"]["cleanoutDays"], "30");
            }
        }

        // B has v1; A (the peer) overwrites it.
        std::fs::write(a.join("shared/doc.txt"), "v1\n").unwrap();
        wait::run(&wait_options(&a, "shared/doc.txt", 30_000)).await.expect("v1 on B");
        assert!(list(&b, "shared/doc.txt").await.is_empty(), "nothing replaced yet");
        std::fs::write(a.join("shared/doc.txt"), "version two\n").unwrap();
        wait::run(&wait_options(&a, "shared/doc.txt", 30_000)).await.expect("v2 on B");
        assert_eq!(std::fs::read_to_string(b.join("shared/doc.txt")).unwrap(), "version two\n");
        let kept = list(&b, "shared/doc.txt").await;
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(kept[0].size, 3, "the copy A replaced is v1");

        // `--at` before any version: a clear error, nothing changes.
        let early = versions::restore(&restore_options(&b, "shared/doc.txt", Some("2000-01-01T00:00:00Z"))).await.unwrap_err();
        assert_eq!(early.code(), ErrorCode::NotFound, "{early}");
        assert!(early.to_string().contains("the oldest is from"), "{early}");
        assert_eq!(std::fs::read_to_string(b.join("shared/doc.txt")).unwrap(), "version two\n");
        let bad_time = versions::restore(&restore_options(&b, "shared/doc.txt", Some("last tuesday"))).await.unwrap_err();
        assert_eq!(bad_time.code(), ErrorCode::Usage, "{bad_time}");

        // Restore on B: v1 is back, and reaches A as a new version; A keeps the copy it replaces.
        let restored = versions::restore(&restore_options(&b, "shared/doc.txt", Some(&kept[0].version_time))).await.expect("restore");
        assert_eq!(restored.restored, kept[0]);
        assert_eq!(std::fs::read_to_string(b.join("shared/doc.txt")).unwrap(), "v1\n");
        wait::run(&wait_options(&b, "shared/doc.txt", 30_000)).await.expect("the restored file reaches A");
        assert_eq!(std::fs::read_to_string(a.join("shared/doc.txt")).unwrap(), "v1\n");
        let on_a = list(&a, "shared/doc.txt").await;
        assert_eq!(on_a.iter().map(|v| v.size).collect::<Vec<_>>(), vec![12], "A kept the version B's restore replaced");

        // A deletes it: B keeps it, and restoring brings it back on both.
        std::fs::remove_file(a.join("shared/doc.txt")).unwrap();
        wait::run(&wait_options(&a, "shared/doc.txt", 30_000)).await.expect("deletion on B");
        assert!(!b.join("shared/doc.txt").exists());
        versions::restore(&restore_options(&b, &b.join("shared/doc.txt").display().to_string(), None)).await.expect("restore after delete");
        assert_eq!(std::fs::read_to_string(b.join("shared/doc.txt")).unwrap(), "v1\n");
        wait::run(&wait_options(&b, "shared/doc.txt", 30_000)).await.expect("back on A");
        assert_eq!(std::fs::read_to_string(a.join("shared/doc.txt")).unwrap(), "v1\n");

        // Never existed, outside the root, a folder: clear errors.
        let never = versions::restore(&restore_options(&b, "shared/never.txt", None)).await.unwrap_err();
        assert_eq!(never.code(), ErrorCode::NotFound, "{never}");
        let outside = versions::restore(&restore_options(&b, "shared/../../etc/passwd", None)).await.unwrap_err();
        assert_eq!(outside.code(), ErrorCode::PathRefused, "{outside}");
        let private = versions::list(&VersionsOptions { root: Some(b.display().to_string()), path: "shared/.stversions/doc.txt".into() })
            .await
            .unwrap_err();
        assert_eq!(private.code(), ErrorCode::PathRefused, "{private}");

        // Retention is configurable per root.
        let keep = versions::keep(&KeepOptions { root: Some(b.display().to_string()), days: 7 }).await.unwrap();
        assert_eq!(keep.changed.len(), 3);
        let rest = Engine::load(&root_at(b.clone())).unwrap().rest();
        let config = rest.folder("botsync-inbox").await.unwrap().unwrap();
        assert_eq!(config.other["versioning"]["params"]["cleanoutDays"], "7");
    });
}

#[test]
fn versions_with_syncthing_1_19() {
    isolated(test_path!("versions_with_syncthing_1_19"), versions_flow);
}

#[test]
fn versions_with_syncthing_1_29() {
    isolated_with_1_29(test_path!("versions_with_syncthing_1_29"), versions_flow);
}
