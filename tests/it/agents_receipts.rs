//! Per-file delivery receipts between two real paired roots: `waitForSync({path})` resolves once
//! the peer holds the path's current version (Syncthing's per-file availability), at once when
//! it already does, fails with BOTSYNC_TIMEOUT naming the peer that lacks it, and refuses a path
//! that does not exist; the sender's event feed reports a `delivered` event. Run with Debian's
//! 1.19.2 and with 1.29.5 when it is unpacked here.

use std::path::Path;
use std::time::Duration;

use crate::support::agents::{isolated_with_1_29, pair};
use botsync::commands::{self, watch::WaitForSyncOptions, RootOptions};
use botsync::daemon::notify::{BotsyncEvent, EventFeed};
use botsync::ErrorCode;
use crate::support::{block_on, isolated, root_at, StopOnDrop};

fn receipts(scratch: &Path) {
    let (a, b) = (scratch.join("a"), scratch.join("b"));
    let _guards = (StopOnDrop(root_at(a.clone())), StopOnDrop(root_at(b.clone())));
    block_on(async {
        let b_id = pair(&a, &b).await;
        let b_short = &b_id[..7];

        // The feed on A reports the receipt for a file A wrote.
        let mut feed = EventFeed::open(&root_at(a.clone())).await.expect("event feed on A");
        std::fs::write(a.join("deliverables/report.md"), "# report\n").unwrap();
        let report = commands::wait::run(&crate::support::agents::wait_options(&a, "deliverables/report.md", 30_000)).await.expect("delivered to B");
        assert_eq!(std::fs::read_to_string(b.join("deliverables/report.md")).unwrap(), "# report\n", "the receipt came after the file landed on B");
        assert_eq!(report.path.as_deref(), Some("deliverables/report.md"));
        assert_eq!(report.peers.len(), 1);
        assert!(report.peers[0].contains(b_short), "{report:?}");
        assert_eq!(report.deleted, Some(false));
        let version = report.version.clone().expect("a version");
        assert!(!version.is_empty());

        let delivered = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let event @ BotsyncEvent::Delivered { .. } = feed.next().await {
                    return event;
                }
            }
        })
        .await
        .expect("a delivered event on A");
        match delivered {
            BotsyncEvent::Delivered { folder, path, peer, version: delivered_version, deleted, .. } => {
                assert_eq!((folder.as_str(), path.as_str(), deleted), ("deliverables", "report.md", false));
                assert_eq!(peer.device_id, b_id);
                assert_eq!(delivered_version, version);
            }
            _ => unreachable!(),
        }

        // A burst: more pending paths than an index update looks up while B still needs files;
        // every one is still delivered, at the latest once B needs nothing more.
        let burst: Vec<String> = (0..200).map(|i| format!("burst/f{i:03}.txt")).collect();
        std::fs::create_dir(a.join("shared/burst")).unwrap();
        for path in &burst {
            std::fs::write(a.join("shared").join(path), path).unwrap();
        }
        let mut owed: std::collections::HashSet<&str> = burst.iter().map(String::as_str).collect();
        let all_delivered = tokio::time::timeout(Duration::from_secs(60), async {
            while !owed.is_empty() {
                if let BotsyncEvent::Delivered { folder, path, .. } = feed.next().await {
                    if folder == "shared" {
                        owed.remove(path.as_str());
                    }
                }
            }
        })
        .await;
        assert!(all_delivered.is_ok(), "no receipt for {} of the 200 files of the burst", owed.len());

        // Already delivered: resolves without waiting at all, even with a 1 ms budget; by
        // absolute path and by peer name too.
        let again = commands::wait::run(&crate::support::agents::wait_options(&a, &a.join("deliverables/report.md").display().to_string(), 1)).await.expect("at once");
        assert_eq!(again.version.as_deref(), Some(version.as_str()));
        let by_name = commands::wait::run(&WaitForSyncOptions { peers: Some(vec![b_short.to_lowercase()]), ..crate::support::agents::wait_options(&a, "deliverables/report.md", 1) })
            .await
            .expect("by peer ID prefix");
        assert_eq!(by_name.peers, report.peers);

        // A path that does not exist, outside the root, or an unknown peer: clear errors.
        let missing = commands::wait::run(&crate::support::agents::wait_options(&a, "deliverables/nope.md", 2000)).await.unwrap_err();
        assert_eq!(missing.code(), ErrorCode::NotFound, "{missing}");
        assert!(missing.to_string().contains("deliverables/nope.md does not exist"), "{missing}");
        let outside = commands::wait::run(&crate::support::agents::wait_options(&a, "/etc/passwd", 2000)).await.unwrap_err();
        assert_eq!(outside.code(), ErrorCode::PathRefused, "{outside}");
        let stranger = commands::wait::run(&WaitForSyncOptions { peers: Some(vec!["nobody".into()]), ..crate::support::agents::wait_options(&a, "deliverables/report.md", 2000) })
            .await
            .unwrap_err();
        assert_eq!(stranger.code(), ErrorCode::Usage, "{stranger}");

        // Deletions are delivered too.
        std::fs::remove_file(a.join("deliverables/report.md")).unwrap();
        let gone = commands::wait::run(&crate::support::agents::wait_options(&a, "deliverables/report.md", 30_000)).await.expect("deletion delivered");
        assert_eq!(gone.deleted, Some(true));
        assert!(!b.join("deliverables/report.md").exists());

        // The default .stignore is in each folder, Syncthing reads it without complaint, and an
        // editor's swap file is never synced (nor waited for).
        for folder in ["shared", "deliverables", "inbox"] {
            let text = std::fs::read_to_string(a.join(folder).join(".stignore")).unwrap();
            assert!(text.contains("(?d).DS_Store") && text.contains("*.swp") && text.contains("// Add your own patterns"), "{text}");
        }
        let rest = botsync::engine::Engine::load(&root_at(a.clone())).unwrap().rest();
        let ignores = rest.ignores("botsync-shared").await.unwrap();
        assert!(ignores.error.as_deref().unwrap_or("").is_empty(), "{ignores:?}");
        assert!(ignores.ignore.unwrap_or_default().iter().any(|p| p == "*.swp"));
        std::fs::write(a.join("shared/.notes.md.swp"), "swap").unwrap();
        let swap = commands::wait::run(&crate::support::agents::wait_options(&a, "shared/.notes.md.swp", 5000)).await.unwrap_err();
        assert_eq!(swap.code(), ErrorCode::NotFound, "{swap}");
        assert!(swap.to_string().contains(".stignore"), "{swap}");

        // B away: the wait times out naming it, with the stable code.
        commands::stop::run(&RootOptions { root: Some(b.display().to_string()) }).await.unwrap();
        std::fs::write(a.join("shared/late.txt"), "late\n").unwrap();
        let late = commands::wait::run(&crate::support::agents::wait_options(&a, "shared/late.txt", 1500)).await.unwrap_err();
        assert_eq!(late.code(), ErrorCode::Timeout, "{late}");
        assert!(late.to_string().contains("shared/late.txt has not reached") && late.to_string().contains(b_short), "{late}");

        // The CLI: one JSON error object and exit 1 for a missing path.
        let argv: Vec<String> = ["botsync", "wait", "shared/missing.txt", "--json", "--root"].iter().map(|s| s.to_string()).chain([a.display().to_string()]).collect();
        assert_eq!(botsync::cli::run(argv).await, 1);
    });
}

#[test]
fn receipts_with_syncthing_1_19() {
    isolated(test_path!("receipts_with_syncthing_1_19"), receipts);
}

#[test]
fn receipts_with_syncthing_1_29() {
    isolated_with_1_29(test_path!("receipts_with_syncthing_1_29"), receipts);
}
