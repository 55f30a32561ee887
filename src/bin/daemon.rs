//! `botsync-daemon --root=<root>`: the background process of one botsync root. Started by the
//! CLI, never by hand; see `botsync::daemon`.

use std::path::PathBuf;

use botsync::root::SyncRoot;

fn main() {
    let mut args = std::env::args().skip(1);
    let root = match (args.next(), args.next()) {
        (Some(arg), None) if arg.starts_with("--root=") => PathBuf::from(&arg["--root=".len()..]),
        _ => {
            eprintln!("usage: botsync-daemon --root=<root> (started by `botsync start`)");
            std::process::exit(2);
        }
    };
    let root = match SyncRoot::at(root) {
        Ok(root) => root,
        Err(e) => {
            eprintln!("botsync-daemon: {e}");
            std::process::exit(1);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let code = runtime.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        // Every handler is in place before `run` publishes our PID: SIGUSR1's default action
        // would end the process.
        let (mut term, mut int) = (signal(SignalKind::terminate()).expect("SIGTERM"), signal(SignalKind::interrupt()).expect("SIGINT"));
        let mut nudges = signal(SignalKind::user_defined1()).expect("SIGUSR1");
        let wake = std::sync::Arc::new(tokio::sync::Notify::new());
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
        match botsync::daemon::run(root, shutdown, wake).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("botsync-daemon: {e}");
                1
            }
        }
    });
    std::process::exit(code);
}
