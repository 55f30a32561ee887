//! The load tool's engine, small: CI proves it runs and that a relay under concurrent load loses
//! and duplicates no code. (Throughput is measured with `examples/relay_load.rs` in release.)

use std::time::Duration;

#[path = "../../examples/relay_load/load.rs"]
mod load;

use load::LoadOptions;
use crate::support::relay::{unlimited, Kind, TestRelay};

async fn small_load(kind: Kind, pairings: usize) {
    let relay = TestRelay::start(kind, unlimited()).await;
    let options = LoadOptions { url: relay.url.clone(), pairings, concurrency: 16, time_limit: Duration::from_secs(60) };
    let report = load::run(&options).await.expect("load run");
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(report.pairings_completed, pairings);
    assert!(report.p50_ms > 0.0 && report.p50_ms <= report.p99_ms && report.p99_ms <= report.max_ms, "{report:#?}");
    // Every pairing consumed its code: nothing is left behind but rate counters (none here).
    assert!(relay.store.dump().await.iter().all(|(k, _)| !k.contains("pair")), "codes left after resolve");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_run_is_clean_in_memory() {
    small_load(Kind::Memory, 500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_run_is_clean_on_redis() {
    small_load(Kind::Redis, 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_run_reports_rate_limited_creations_as_failures() {
    // With default limits only 10 creations pass: the tool must say so, not claim success.
    let relay = TestRelay::start(Kind::Memory, botsync::relay::RelayConfig::default()).await;
    let options = LoadOptions { url: relay.url.clone(), pairings: 30, concurrency: 4, time_limit: Duration::from_secs(30) };
    let report = load::run(&options).await.unwrap();
    assert!(!report.is_clean());
    assert_eq!(report.pairings_completed, 10, "{report:#?}");
    assert_eq!(report.create_failures, 20);
    assert!(report.first_errors.iter().any(|e| e.contains("429")), "{report:#?}");
}
