//! The one integration-test binary: every area's tests are a module here, sharing one
//! `support` (network-namespace isolation, the real relay in-process, fake Syncthing and OpenClaw
//! endpoints, roots and the CLI as a child process), so the crate is linked once for all of them.
//!
//! Tests that start Syncthing run in their own network namespace through `support::isolated`,
//! which re-runs this binary with `--exact <module>::<test>`; `test_path!` names the calling test
//! that way. Module names keep the old file names: `cargo test --test it engine_` runs one area.

/// The harness's name of test `name` in the calling module (`engine_lifecycle::name`), which is
/// what `--exact` matches when a test re-runs itself in a namespace.
macro_rules! test_path {
    ($name:literal) => {
        $crate::support::test_path(module_path!(), $name)
    };
}

#[macro_use]
mod support;

mod agents_openclaw;
mod agents_receipts;
mod agents_versions;

mod contracts_invite_wait;
mod contracts_no_proxy;

mod engine_bad_input;
mod engine_conformance_live;
mod engine_download;
mod engine_lifecycle;
mod engine_newer_syncthing;
mod engine_peers;

mod notify_derive;
mod notify_e2e;
mod notify_openclaw;
mod notify_service;
mod notify_stream;
mod notify_wait;

mod pairing_attacks;
mod pairing_daemon_restart;
mod pairing_e2e;
mod pairing_exchange;
mod pairing_fuzz;
mod pairing_http;
mod pairing_join_large_folder;

mod relay_api;
mod relay_caps;
mod relay_hardening;
mod relay_load;
mod relay_redis;

mod reliability_bad_input;
mod reliability_crash;
mod reliability_partition;
mod reliability_races;
mod reliability_relay;
mod reliability_security;

mod trust_local_user;
mod trust_membership;

mod versions_pairing;

mod watcher_fs;
mod watcher_limit;
mod watcher_syncthing;

/// Not a test: the entry point `support::reliability::cli_command` runs, this binary re-run as
/// the `botsync` CLI (so a child can be killed or put in another namespace).
#[test]
#[ignore = "run by support::reliability::cli_command as a child process"]
fn cli_entry() {
    support::reliability::cli_entry();
}
