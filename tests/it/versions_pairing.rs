//! Two machines on Syncthing versions chosen by the environment pair and sync both ways: the host
//! runs `BOTSYNC_TEST_SYNCTHING` (default Debian's /usr/bin/syncthing), the joiner
//! `BOTSYNC_TEST_SYNCTHING_PEER` (default the same). `.ci/run` runs it for 1.19.2, 1.29.5, and
//! the mixed pair, where a user pairs an old machine with a new one. It prints the join time and
//! the 1 KiB arrival medians each way, per pair of versions (also appended to
//! `$BOTSYNC_TEST_FIGURES` when set, since the isolated harness shows output only on failure).


use std::path::Path;
use std::time::{Duration, Instant};

use botsync::commands;
use crate::support::{block_on, isolated};
use crate::support::reliability::*;

const SAMPLES: usize = 9;
const SPACING: Duration = Duration::from_millis(400);

/// Writes a 1 KiB file into `from` and returns how long until `to` has it (polled every 2 ms).
fn arrival(from: &Path, to: &Path, name: &str) -> Duration {
    let content: Vec<u8> = (0..1024u32).map(|i| (i * 7 + name.len() as u32) as u8).collect();
    let started = Instant::now();
    std::fs::write(from.join(name), &content).unwrap();
    loop {
        if std::fs::read(to.join(name)).is_ok_and(|c| c == content) {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{name} did not reach {}", to.display());
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn median_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

#[test]
fn a_host_and_a_joiner_on_the_chosen_versions_pair_and_sync_both_ways() {
    isolated(test_path!("a_host_and_a_joiner_on_the_chosen_versions_pair_and_sync_both_ways"), |scratch| {
        use_daemon_bin();
        let host_binary = std::env::var("BOTSYNC_SYNCTHING").expect("the harness names the host's Syncthing");
        let peer_binary = std::env::var("BOTSYNC_TEST_SYNCTHING_PEER").unwrap_or_else(|_| host_binary.clone());
        let relay = RelayThread::unlimited();
        let (host, joiner) = (scratch.join("host"), scratch.join("joiner"));
        let _guards = (RootGuard::new(&host), RootGuard::new(&joiner));

        let init = block_on(commands::init::run(&init_options(&host, &relay.url))).expect("init on the host's version");
        let joiner_arg = joiner.display().to_string();
        let started = Instant::now();
        let output = cli_command(None, &["--json", "--root", &joiner_arg, "join", &init.invite.code, "--network", "direct", "--relay", &relay.url])
            .env("BOTSYNC_SYNCTHING", &peer_binary)
            .output()
            .unwrap();
        let join = CliRun::from_output(output);
        let join_ms = started.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(join.status, 0, "join on the peer's version: {join:?}");
        wait_until(Duration::from_secs(30), "both see each other connected", || peer_connected(&host) && peer_connected(&joiner));

        let (host_version, joiner_version) = (status(&host).syncthing_version.unwrap(), status(&joiner).syncthing_version.unwrap());
        let version_of = |binary: &str| {
            let out = std::process::Command::new(binary).arg("--version").output().unwrap();
            botsync::engine::SyncthingVersion::parse_version_output(&String::from_utf8_lossy(&out.stdout)).unwrap()
        };
        for (reported, binary) in [(&host_version, &host_binary), (&joiner_version, &peer_binary)] {
            let expected = version_of(binary);
            assert!(reported.starts_with(&expected.to_string()), "{reported} runs, expected {expected} from {binary}");
        }

        let (a, b) = (host.join("shared"), joiner.join("shared"));
        // Apart in time: Syncthing waits 250 ms after each index it sends, so back-to-back files
        // would measure that pause, not a file's trip.
        let sample = |from: &Path, to: &Path, name: String| {
            std::thread::sleep(SPACING);
            arrival(from, to, &name)
        };
        let there: Vec<Duration> = (0..SAMPLES).map(|i| sample(&a, &b, format!("to-joiner-{i}.txt"))).collect();
        let back: Vec<Duration> = (0..SAMPLES).map(|i| sample(&b, &a, format!("to-host-{i}.txt"))).collect();
        let figures = format!(
            "versions host {host_version} <-> joiner {joiner_version}: join {join_ms:.0} ms, 1 KiB host->joiner median {:.1} ms, joiner->host median {:.1} ms ({SAMPLES} samples each)",
            median_ms(there),
            median_ms(back)
        );
        eprintln!("{figures}");
        // The isolated harness shows output only on failure; CI collects the figures here.
        if let Some(path) = std::env::var_os("BOTSYNC_TEST_FIGURES") {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
            writeln!(file, "{figures}").unwrap();
        }
        block_on(commands::stop::run(&root_options(&host))).unwrap();
        block_on(commands::stop::run(&root_options(&joiner))).unwrap();
    });
}
