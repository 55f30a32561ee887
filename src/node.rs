//! The Node binding: thin `#[napi]` wrappers over `cli` and `commands`. Errors become JS `Error`s
//! whose `code` is the stable `BOTSYNC_*` identifier. Compiled only with the `node` feature (the
//! addon); the JS-facing types elsewhere carry `#[cfg_attr(feature = "node", napi(object))]`, and
//! what JS cannot hold as-is (`u64` milliseconds) is converted here.

use std::future::Future;
use std::sync::Arc;

use napi::bindgen_prelude::{AsyncGenerator, FromNapiValue, ToNapiValue, TypeName, Unknown, ValidateNapiValue};
use napi::{sys, JsError, ValueType};
use napi_derive::napi;

use crate::clock::Millis;

use crate::commands::watch::{SyncReport, WaitForSyncOptions};
use crate::commands::doctor::DoctorReport;
use crate::commands::init::{InitOptions, InitReport};
use crate::commands::invite::{InviteOptions, InviteReport};
use crate::commands::join::{JoinOptions, JoinReport};
use crate::commands::start::StartReport;
use crate::commands::stop::StopReport;
use crate::commands::{self, status::StatusReport, RootOptions};
use crate::daemon::notify::EventFeed;
use crate::error::Error;

/// A command's outcome on its way to JS: resolves with the report, or rejects with an `Error`
/// whose `code` is ours. (napi's own async error path only knows its fixed `Status` codes, so
/// the rejection is built here, where the JS environment is at hand.)
pub struct Answer<T>(Result<T, Error>);

impl<T> From<Result<T, Error>> for Answer<T> {
    fn from(result: Result<T, Error>) -> Self {
        Answer(result)
    }
}

impl<T: ToNapiValue> ToNapiValue for Answer<T> {
    unsafe fn to_napi_value(env: sys::napi_env, answer: Self) -> napi::Result<sys::napi_value> {
        match answer.0 {
            Ok(value) => T::to_napi_value(env, value),
            Err(error) => {
                let js_error = JsError::from(napi::Error::new(error.code(), error.to_string())).into_value(env);
                Err(napi::Error::from(Unknown::from_raw_unchecked(env, js_error)))
            }
        }
    }
}

/// Milliseconds reach JS as a plain number (exact up to 2^53 ms, some 285 000 years), never a BigInt.
impl TypeName for Millis {
    fn type_name() -> &'static str {
        "number"
    }

    fn value_type() -> ValueType {
        ValueType::Number
    }
}

impl ToNapiValue for Millis {
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
        f64::to_napi_value(env, value.0 as f64)
    }
}

impl FromNapiValue for Millis {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        let ms = f64::from_napi_value(env, value)?;
        Ok(Millis(if ms.is_finite() && ms > 0.0 { ms as u64 } else { 0 }))
    }
}

impl ValidateNapiValue for Millis {}

/// Runs the botsync command line with `argv` (`process.argv.slice(1)`) and resolves with the
/// exit status.
#[napi]
pub async fn run_cli(argv: Vec<String>) -> i32 {
    crate::cli::run(argv).await
}

/// The root's state, folders, peers and notification queue. Resolves with
/// `initialized: false` on a root that was never set up.
#[napi(ts_return_type = "Promise<StatusReport>")]
pub async fn status(options: Option<RootOptions>) -> Answer<StatusReport> {
    commands::status::run(&options.unwrap_or_default()).await.into()
}

/// The root's events as they happen: files arriving from peers (`file`), `deviceConnected`,
/// `deviceDisconnected`, `conflict` and `paired`. Use with `for await`; `break` stops it.
/// Connects on the first `next()`, which rejects with `BOTSYNC_ENGINE_UNREACHABLE` when the
/// root's Syncthing is not running.
#[napi(async_iterator)]
pub struct BotsyncEvents {
    options: RootOptions,
    feed: Arc<tokio::sync::Mutex<Option<EventFeed>>>,
}

/// The iterator's items. The alias carries the name of the TS type the values have (napi's
/// typegen names the yield type after its last path segment); at runtime an `Answer`, so a
/// failure rejects with our `code`.
mod yielded {
    pub type BotsyncEvent = super::Answer<crate::daemon::notify::BotsyncEvent>;
}

#[napi]
impl AsyncGenerator for BotsyncEvents {
    type Yield = yielded::BotsyncEvent;
    type Next = ();
    type Return = ();

    fn next(&mut self, _value: Option<Self::Next>) -> impl Future<Output = napi::Result<Option<Self::Yield>>> + Send + 'static {
        let feed = Arc::clone(&self.feed);
        let options = self.options.clone();
        async move {
            let mut slot = feed.lock().await;
            if slot.is_none() {
                match commands::watch::open_feed(&options).await {
                    Ok(opened) => *slot = Some(opened),
                    Err(error) => return Ok(Some(Answer::from(Err(error)))),
                }
            }
            let event = slot.as_mut().expect("opened above").next().await;
            Ok(Some(Answer::from(Ok(event))))
        }
    }

    fn complete(&mut self, _value: Option<Self::Return>) -> impl Future<Output = napi::Result<Option<Self::Yield>>> + Send + 'static {
        let feed = Arc::clone(&self.feed);
        async move {
            feed.lock().await.take();
            Ok(None)
        }
    }
}

/// An async iterator over the root's events (see `BotsyncEvents`).
#[napi]
pub fn events(options: Option<RootOptions>) -> BotsyncEvents {
    BotsyncEvents { options: options.unwrap_or_default(), feed: Arc::new(tokio::sync::Mutex::new(None)) }
}

/// Resolves when this machine and every connected peer have everything in the shared folders
/// (files written before the call included); with `path`, when every peer (or those in `peers`)
/// holds that path's current version, at once if they already do. Rejects with
/// `BOTSYNC_TIMEOUT`, naming what is missing, after `timeoutMs` (default 60000), and with
/// `BOTSYNC_NOT_FOUND` for a path that does not exist.
#[napi(ts_return_type = "Promise<SyncReport>")]
pub async fn wait_for_sync(options: Option<WaitForSyncOptions>) -> Answer<SyncReport> {
    commands::wait::run(&options.unwrap_or_default()).await.into()
}

/// A relay started by `relay()`: its base URL, `close()` to stop it, and `closed()` to wait
/// for that. The relay does not keep Node's event loop alive on its own: a process that should
/// just serve awaits `closed()` (pending, it holds the loop open; Node's default SIGINT/SIGTERM
/// handling still ends the process).
#[napi]
pub struct RelayHandle {
    url: String,
    running: tokio::sync::Mutex<Option<crate::relay::RunningRelay>>,
    closed: tokio::sync::watch::Sender<bool>,
}

#[napi]
impl RelayHandle {
    /// Base URL, such as `http://127.0.0.1:8787` (the real port when port 0 was asked for).
    #[napi(getter)]
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Stops accepting, lets in-flight requests finish, and resolves when the relay is down.
    /// Closing twice is harmless.
    #[napi]
    pub async fn close(&self) {
        if let Some(running) = self.running.lock().await.take() {
            running.shutdown().await;
        }
        self.closed.send_replace(true);
    }

    /// Resolves once the relay has been closed.
    #[napi]
    pub async fn closed(&self) {
        let mut closed = self.closed.subscribe();
        // The guard `wait_for` returns is not Send; it must not outlive this statement.
        let _ = closed.wait_for(|closed| *closed).await.map(|_| ());
    }
}

/// Starts a pairing relay in this process (the same server as `botsync relay`) and resolves
/// with a handle once it listens.
#[napi(ts_return_type = "Promise<RelayHandle>")]
pub async fn relay(options: Option<commands::relay::RelayOptions>) -> Answer<RelayHandle> {
    let options = options.unwrap_or_default();
    commands::relay::start(&options)
        .await
        .map(|(running, started)| RelayHandle {
            url: started.url,
            running: tokio::sync::Mutex::new(Some(running)),
            closed: tokio::sync::watch::channel(false).0,
        })
        .into()
}

/// Creates the root and starts Syncthing; on an initialized root keeps identity and pairings and
/// makes sure Syncthing runs.
#[napi(ts_return_type = "Promise<InitReport>")]
pub async fn init(options: Option<InitOptions>) -> Answer<InitReport> {
    commands::init::run(&options.unwrap_or_default()).await.into()
}

/// Registers a new one-time pairing code for another machine (`init` makes the first). The
/// background process completes the pairing while the code is valid; with `wait: true` this
/// resolves only once the other machine has paired.
#[napi(ts_return_type = "Promise<InviteReport>")]
pub async fn invite(options: Option<InviteOptions>) -> Answer<InviteReport> {
    commands::invite::run(&options.unwrap_or_default()).await.into()
}

/// Pairs with the machine that printed `code`; resolves once Syncthing reports it connected.
#[napi(ts_return_type = "Promise<JoinReport>")]
pub async fn join(options: JoinOptions) -> Answer<JoinReport> {
    commands::join::run(&options).await.into()
}

/// Pairs two throwaway roots on this machine through an in-process relay, syncs a file each
/// way, cleans up, and resolves with the timings. No traffic leaves the machine.
#[napi(ts_return_type = "Promise<DemoReport>")]
pub async fn demo(options: Option<commands::demo::DemoOptions>) -> Answer<commands::demo::DemoReport> {
    commands::demo::run(&options.unwrap_or_default()).await.into()
}

/// Starts the root's Syncthing unless it runs already.
#[napi(ts_return_type = "Promise<StartReport>")]
pub async fn start(options: Option<RootOptions>) -> Answer<StartReport> {
    commands::start::run(&options.unwrap_or_default()).await.into()
}

/// Stops the root's Syncthing processes; resolves once they are gone.
#[napi(ts_return_type = "Promise<StopReport>")]
pub async fn stop(options: Option<RootOptions>) -> Answer<StopReport> {
    commands::stop::run(&options.unwrap_or_default()).await.into()
}

/// Runs the installation checks; resolves with `ok: false` (not a rejection) when a check fails.
#[napi(ts_return_type = "Promise<DoctorReport>")]
pub async fn doctor(options: Option<RootOptions>) -> Answer<DoctorReport> {
    commands::doctor::run(&options.unwrap_or_default()).await.into()
}

/// The members of this mesh (name, device ID, connection, last seen, who added it) and the
/// machines removed from it.
#[napi(ts_return_type = "Promise<PeersReport>")]
pub async fn peers(options: Option<RootOptions>) -> Answer<commands::peers::PeersReport> {
    commands::peers::run(&options.unwrap_or_default()).await.into()
}

/// Removes a machine (by name or device ID) from the mesh on every member, for good: it is
/// dropped and refused until `allow`. Rejects with `BOTSYNC_PEER_UNKNOWN` for a machine that is
/// not a member and `BOTSYNC_USAGE` for this machine itself, changing nothing.
#[napi(ts_return_type = "Promise<MembershipChange>")]
pub async fn remove(options: commands::remove::PeerOptions) -> Answer<commands::remove::MembershipChange> {
    commands::remove::remove(&options).await.into()
}

/// Lets a removed machine pair again (it still needs a fresh code).
#[napi(ts_return_type = "Promise<MembershipChange>")]
pub async fn allow(options: commands::remove::PeerOptions) -> Answer<commands::remove::MembershipChange> {
    commands::remove::allow(&options).await.into()
}

// ---- Agents: versions and restore (issue 12) ------------------------------------------------

/// The earlier versions kept of a file that a peer overwrote or deleted, newest first.
#[napi(ts_return_type = "Promise<VersionsReport>")]
pub async fn versions(options: commands::versions::VersionsOptions) -> Answer<commands::versions::VersionsReport> {
    commands::versions::list(&options).await.into()
}

/// Brings back the newest kept version of a file (or the newest at or before `at`); it syncs to
/// the peers as a new version. Rejects with `BOTSYNC_NOT_FOUND` when no such version is kept.
#[napi(ts_return_type = "Promise<RestoreReport>")]
pub async fn restore(options: commands::versions::RestoreOptions) -> Answer<commands::versions::RestoreReport> {
    commands::versions::restore(&options).await.into()
}

/// Sets how many days every folder keeps replaced and deleted files (0: for ever; default 30).
#[napi(ts_return_type = "Promise<KeepReport>")]
pub async fn keep_versions(options: commands::versions::KeepOptions) -> Answer<commands::versions::KeepReport> {
    commands::versions::keep(&options).await.into()
}

// ---- Agents: the MCP server (issue 12) ------------------------------------------------------

/// Serves the root to an MCP client over this process's stdin/stdout (the same server as
/// `botsync mcp`); resolves when the client closes stdin. Nothing else may write to stdout
/// meanwhile.
#[napi(ts_return_type = "Promise<void>")]
pub async fn mcp(options: Option<RootOptions>) -> Answer<()> {
    crate::mcp::serve_stdio(&options.unwrap_or_default()).await.into()
}

/// The daemon's entry for the launcher shipped in the npm package (`src/launcher`), which
/// `dlopen`s this addon outside Node: the process arguments come from the OS as for any program.
/// No N-API call is made on this path. Exported unmangled, for `dlsym`.
#[no_mangle]
pub extern "C" fn botsync_daemon_main() -> std::os::raw::c_int {
    match std::panic::catch_unwind(|| crate::daemon::entry::main(std::env::args().skip(1))) {
        Ok(code) => code,
        Err(_) => 101,
    }
}
