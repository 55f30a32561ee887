//! Partition: two roots, each with all its processes inside its own network namespace, joined by
//! a veth pair on a private /30. Each round cuts the link, edits the same files on both sides,
//! heals the link and checks that every version written survives on both sides (as the file or
//! as a Syncthing conflict copy), by content hash.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::isolated;
use rand::{Rng, SeedableRng};
use crate::support::reliability::*;

const NS_A: &str = "botsync-a";
const NS_B: &str = "botsync-b";
const IP_A: &str = "10.213.7.1";
const IP_B: &str = "10.213.7.2";
const ROUNDS: usize = 20;
const FILES: usize = 6;

fn run(args: &[&str]) {
    let status = Command::new(args[0]).args(&args[1..]).status().expect("run ip");
    assert!(status.success(), "{args:?} failed");
}

/// Two namespaces and the link between them. They live in this test's private mount namespace
/// (a tmpfs on /run/netns), so they disappear with it, whatever happens.
fn create_namespaces() {
    std::fs::create_dir_all("/run/netns").unwrap();
    run(&["mount", "-t", "tmpfs", "tmpfs", "/run/netns"]);
    run(&["ip", "netns", "add", NS_A]);
    run(&["ip", "netns", "add", NS_B]);
    run(&["ip", "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b"]);
    run(&["ip", "link", "set", "veth-a", "netns", NS_A]);
    run(&["ip", "link", "set", "veth-b", "netns", NS_B]);
    for (ns, dev, ip) in [(NS_A, "veth-a", IP_A), (NS_B, "veth-b", IP_B)] {
        run(&["ip", "netns", "exec", ns, "ip", "addr", "add", &format!("{ip}/30"), "dev", dev]);
        run(&["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
        run(&["ip", "netns", "exec", ns, "ip", "link", "set", dev, "up"]);
    }
}

fn set_link(up: bool) {
    run(&["ip", "netns", "exec", NS_A, "ip", "link", "set", "veth-a", if up { "up" } else { "down" }]);
}

struct Round {
    edits_a: BTreeMap<String, String>,
    edits_b: BTreeMap<String, String>,
}

fn write_version(dir: &Path, name: &str, round: usize, side: &str, rng: &mut impl Rng) -> String {
    let mut content = format!("round {round} side {side} file {name}\n").into_bytes();
    let extra: usize = rng.random_range(16..2048);
    content.extend((0..extra).map(|_| rng.random::<u8>()));
    std::fs::write(dir.join(name), &content).unwrap();
    sha256_hex(&content)
}

/// What must hold once a round has converged: files edited on one side carry that edit, files
/// edited on both carry one edit with the other in a new conflict copy, everything else (older
/// conflict copies included) is untouched.
fn check_round(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>, round: &Round) -> Result<(), String> {
    let present: BTreeSet<&String> = after.values().collect();
    for (name, hash) in before {
        if !round.edits_a.contains_key(name) && !round.edits_b.contains_key(name) && after.get(name) != Some(hash) {
            return Err(format!("{name} changed or vanished though nobody edited it"));
        }
    }
    let names: BTreeSet<&String> = round.edits_a.keys().chain(round.edits_b.keys()).collect();
    for name in names {
        match (round.edits_a.get(name), round.edits_b.get(name)) {
            (Some(a), Some(b)) => {
                for version in [a, b] {
                    if !present.contains(version) {
                        return Err(format!("a version of {name} was lost"));
                    }
                }
                let current = after.get(name).ok_or(format!("{name} vanished"))?;
                if current != a && current != b {
                    return Err(format!("{name} holds neither edit"));
                }
                let stem = name.trim_end_matches(".txt");
                let conflict_copies = after.keys().filter(|n| n.starts_with(&format!("{stem}.sync-conflict-")) && !before.contains_key(*n));
                if conflict_copies.count() == 0 {
                    return Err(format!("no new conflict copy for {name}"));
                }
            }
            (Some(only), None) | (None, Some(only)) => {
                if after.get(name) != Some(only) {
                    return Err(format!("{name} does not carry its only edit"));
                }
            }
            (None, None) => unreachable!(),
        }
    }
    Ok(())
}

#[test]
fn partitioned_edits_conflict_and_lose_no_byte() {
    isolated(test_path!("partitioned_edits_conflict_and_lose_no_byte"), |scratch| {
        create_namespaces();
        let (a, b): (PathBuf, PathBuf) = (scratch.join("a"), scratch.join("b"));
        let _guards = (RootGuard::new(&a), RootGuard::new(&b));
        let (a_arg, b_arg) = (a.display().to_string(), b.display().to_string());

        // Pair with an offline code: no relay needed between the namespaces.
        let init = cli(Some(NS_A), &["--json", "--root", &a_arg, "init", "--network", "direct", "--offline"]);
        assert_eq!(init.status, 0, "{init:?}");
        let code = init.json["invite"]["code"].as_str().unwrap().to_string();
        let join = cli(Some(NS_B), &["--json", "--root", &b_arg, "join", &code, "--network", "direct", "--timeout", "60"]);
        assert_eq!(join.status, 0, "{join:?}");
        assert!(join.json["address"].as_str().unwrap().contains(IP_A), "B reached A over the veth: {join:?}");

        let (dir_a, dir_b) = (a.join("shared"), b.join("shared"));
        let seed: u64 = rand::rng().random();
        eprintln!("partition rounds with seed {seed}");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let names: Vec<String> = (0..FILES).map(|i| format!("file-{i}.txt")).collect();
        // Start from files both sides have.
        let mut seeded = Round { edits_a: BTreeMap::new(), edits_b: BTreeMap::new() };
        for name in &names {
            seeded.edits_a.insert(name.clone(), write_version(&dir_a, name, 0, "A", &mut rng));
        }
        wait_until(Duration::from_secs(30), "initial files on both sides", || {
            let (ta, tb) = (tree_hashes(&dir_a), tree_hashes(&dir_b));
            ta == tb && check_round(&BTreeMap::new(), &ta, &seeded).is_ok()
        });
        let mut tree = tree_hashes(&dir_a);

        let mut conflicts = 0;
        let mut round_times = Vec::new();
        for round in 1..=ROUNDS {
            let started = Instant::now();
            set_link(false);
            let mut edits = Round { edits_a: BTreeMap::new(), edits_b: BTreeMap::new() };
            for name in &names {
                // Each file: untouched, edited on one side, or on both (a conflict).
                match rng.random_range(0..4) {
                    0 => {}
                    1 => {
                        edits.edits_a.insert(name.clone(), write_version(&dir_a, name, round, "A", &mut rng));
                    }
                    2 => {
                        edits.edits_b.insert(name.clone(), write_version(&dir_b, name, round, "B", &mut rng));
                    }
                    _ => {
                        edits.edits_a.insert(name.clone(), write_version(&dir_a, name, round, "A", &mut rng));
                        edits.edits_b.insert(name.clone(), write_version(&dir_b, name, round, "B", &mut rng));
                        conflicts += 1;
                    }
                }
            }
            // Both sides scan their edits while apart.
            std::thread::sleep(Duration::from_millis(700));
            set_link(true);
            let mut last = String::new();
            let converged = wait_until_ok(Duration::from_secs(60), || {
                let (ta, tb) = (tree_hashes(&dir_a), tree_hashes(&dir_b));
                if ta != tb {
                    last = format!("sides differ: A {} files, B {} files", ta.len(), tb.len());
                    return None;
                }
                match check_round(&tree, &ta, &edits) {
                    Ok(()) => Some(ta),
                    Err(e) => {
                        last = e;
                        None
                    }
                }
            });
            let Some(after) = converged else {
                panic!("round {round} (seed {seed}) did not converge: {last}\nA: {:#?}\nB: {:#?}", tree_hashes(&dir_a), tree_hashes(&dir_b));
            };
            tree = after;
            round_times.push(started.elapsed());
        }
        let copies = tree.keys().filter(|n| n.contains(".sync-conflict-")).count();
        eprintln!("{ROUNDS} rounds, {conflicts} conflicting edits, {copies} conflict copies, round times {round_times:?}");
        assert!(conflicts == 0 || copies > 0);
        assert!(copies <= conflicts, "at most one conflict copy per conflicting edit ({copies} > {conflicts})");
    });
}

/// Polls `probe` every 100 ms until it yields a value or `limit` passes.
fn wait_until_ok<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let started = Instant::now();
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if started.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
