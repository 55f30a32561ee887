//! The process entry of `botsync-daemon --root=<root>`: argument parsing, the runtime and the
//! signal handlers around [`super::run`]. It lives in the library, not in `src/bin/daemon.rs`,
//! because two executables start it: the plain Rust binary (`cargo build`, the Rust tests) and
//! the launcher shipped in the npm package (`src/launcher`), which loads the addon and calls
//! it through `botsync_daemon_main` (src/node.rs), so that `npm run build` compiles and links
//! the crate once instead of twice.

use std::path::PathBuf;
use std::sync::Arc;

use crate::root::SyncRoot;

/// Runs the daemon for the `--root=` in `args` (the process arguments after the program name)
/// and returns the process exit code: 0 after a clean stop, 1 on failure, 2 on bad usage.
pub fn main(args: impl IntoIterator<Item = String>) -> i32 {
    let mut args = args.into_iter();
    let root = match (args.next(), args.next()) {
        (Some(arg), None) if arg.starts_with("--root=") => PathBuf::from(&arg["--root=".len()..]),
        _ => {
            eprintln!("usage: botsync-daemon --root=<root> (started by `botsync start`)");
            return 2;
        }
    };
    let root = match SyncRoot::at(root) {
        Ok(root) => root,
        Err(e) => {
            eprintln!("botsync-daemon: {e}");
            return 1;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("botsync-daemon: cannot start its runtime: {e}");
            return 1;
        }
    };
    runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        // Every handler is in place before `run` publishes our PID: SIGUSR1's default action
        // would end the process.
        let (mut term, mut int) = (signal(SignalKind::terminate()).expect("SIGTERM"), signal(SignalKind::interrupt()).expect("SIGINT"));
        let mut nudges = signal(SignalKind::user_defined1()).expect("SIGUSR1");
        let wake = Arc::new(tokio::sync::Notify::new());
        let woken = wake.clone();
        tokio::spawn(async move {
            while nudges.recv().await.is_some() {
                woken.notify_one();
            }
        });
        tokio::spawn(async move {
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            let _ = stop.send(true);
        });
        match super::run(root, shutdown, wake).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("botsync-daemon: {e}");
                1
            }
        }
    })
}
