//! `botsync demo`: the whole product on one machine, with no traffic leaving it. An in-process
//! relay and two throwaway roots (direct profile, loopback only) pair with a code, sync a file
//! each way, and are torn down again; the report gives the timings.

use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::init::InitOptions;
use super::join::JoinOptions;
use super::{Report, RootOptions};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::relay::{Backend, RelayConfig};

const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(30);
const ARRIVAL_POLL: Duration = Duration::from_millis(2);

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoOptions {
    /// Keep the two roots (stopped) instead of deleting them, to look around afterwards.
    pub keep: Option<bool>,
}

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoReport {
    /// The two roots ("machine A" and "machine B"); deleted afterwards unless `keep`.
    pub root_a: String,
    pub root_b: String,
    pub kept: bool,
    /// The code A printed and B typed.
    pub code: String,
    /// `init` on A: root, Syncthing, background process, code.
    #[cfg_attr(feature = "node", napi(ts_type = "number"))]
    pub init_ms: Millis,
    /// `join` on B, from its start until Syncthing reported A connected.
    #[cfg_attr(feature = "node", napi(ts_type = "number"))]
    pub join_ms: Millis,
    /// A file written in A's shared/ until it was complete in B's shared/.
    pub a_to_b_ms: f64,
    /// A file written in B's inbox/ until it was complete in A's inbox/.
    pub b_to_a_ms: f64,
    #[cfg_attr(feature = "node", napi(ts_type = "number"))]
    pub total_ms: Millis,
}

pub async fn run(options: &DemoOptions) -> Result<DemoReport> {
    let started = Instant::now();
    let scratch = Scratch::create()?;
    let (root_a, root_b) = (scratch.0.join("machine-a"), scratch.0.join("machine-b"));
    let relay = crate::relay::start("127.0.0.1:0", &Backend::Memory, RelayConfig::default()).await?;
    let outcome = pair_and_sync(&relay.url(), &root_a, &root_b, started).await;
    // Both at once: a Syncthing that stops while its peer keeps redialing it takes seconds longer.
    let stop = |root: &Path| {
        let options = RootOptions { root: Some(root.display().to_string()) };
        let initialized = root.join(".botsync").exists();
        async move {
            if initialized {
                let _ = super::stop::run(&options).await;
            }
        }
    };
    tokio::join!(stop(&root_a), stop(&root_b));
    relay.shutdown().await;
    let mut report = outcome?;
    report.kept = options.keep.unwrap_or(false);
    if report.kept {
        std::mem::forget(scratch);
    }
    report.total_ms = Millis::since(started);
    Ok(report)
}

async fn pair_and_sync(relay: &str, root_a: &Path, root_b: &Path, started: Instant) -> Result<DemoReport> {
    progress(&format!("relay listening at {relay} (in this process)"));
    let init_started = Instant::now();
    let init = super::init::run(&InitOptions {
        root: Some(root_a.display().to_string()),
        network: Some("direct".into()),
        relay: Some(relay.into()),
        ..Default::default()
    })
    .await?;
    let init_ms = Millis::since(init_started);
    progress(&format!("machine A: init done in {init_ms} ms, code {}", init.invite.code));

    let joined = super::join::run(&JoinOptions {
        code: init.invite.code.clone(),
        root: Some(root_b.display().to_string()),
        network: Some("direct".into()),
        relay: Some(relay.into()),
        timeout_seconds: Some(60),
        ..Default::default()
    })
    .await?;
    progress(&format!("machine B: joined, connected to A after {} ms", joined.connected_ms));

    let a_to_b_ms = send_file(&root_a.join("shared"), &root_b.join("shared"), "hello-from-a.txt").await?;
    progress(&format!("A -> B: shared/hello-from-a.txt arrived in {a_to_b_ms:.1} ms"));
    let b_to_a_ms = send_file(&root_b.join("inbox"), &root_a.join("inbox"), "hello-from-b.txt").await?;
    progress(&format!("B -> A: inbox/hello-from-b.txt arrived in {b_to_a_ms:.1} ms"));
    Ok(DemoReport {
        root_a: root_a.display().to_string(),
        root_b: root_b.display().to_string(),
        kept: false,
        code: init.invite.code,
        init_ms,
        join_ms: joined.connected_ms,
        a_to_b_ms,
        b_to_a_ms,
        total_ms: Millis::since(started),
    })
}

/// Writes a file into `from` and returns the milliseconds until the same content is in `to`.
async fn send_file(from: &Path, to: &Path, name: &str) -> Result<f64> {
    let content = format!("written by botsync demo at {}\n", crate::clock::rfc3339(crate::clock::now_ms()));
    let written = Instant::now();
    fs::write(from.join(name), &content).map_err(|e| Error::Internal(format!("writing {}: {e}", from.join(name).display())))?;
    while written.elapsed() < ARRIVAL_TIMEOUT {
        if fs::read_to_string(to.join(name)).is_ok_and(|c| c == content) {
            return Ok(written.elapsed().as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(ARRIVAL_POLL).await;
    }
    Err(Error::Internal(format!("{name} did not arrive in {} within {} s", to.display(), ARRIVAL_TIMEOUT.as_secs())))
}

fn progress(line: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("· {line}");
    }
}

/// A private temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn create() -> Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("botsync-demo-{}-{:08x}", std::process::id(), rand::random::<u32>()));
        crate::state_file::create_private_dir(&dir).map_err(|e| Error::Internal(format!("creating {}: {e}", dir.display())))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

impl Report for DemoReport {
    fn human(&self) -> String {
        let mut out = format!(
            "botsync demo: two machines on this computer, paired with the code `{}`\n\
             init on A        {:>8} ms  (root, Syncthing, background process, code)\n\
             join on B        {:>8} ms  (code exchange until Syncthing reported A connected)\n\
             file A -> B      {:>8.1} ms  (shared/hello-from-a.txt)\n\
             file B -> A      {:>8.1} ms  (inbox/hello-from-b.txt)\n\
             total            {:>8} ms",
            self.code, self.init_ms, self.join_ms, self.a_to_b_ms, self.b_to_a_ms, self.total_ms
        );
        if self.kept {
            out.push_str(&format!("\nThe roots are kept (stopped): {} and {}", self.root_a, self.root_b));
        } else {
            out.push_str("\nEverything it started is stopped and its files are removed.");
        }
        out
    }
}
