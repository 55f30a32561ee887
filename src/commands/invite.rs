//! `botsync invite` (and the pairing half of `init`): registers a one-time code and hands its
//! completion to the background process, so the command can return at once or wait.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Report, RootOptions};
use crate::clock;
use crate::daemon::invites::{self, InviteKind, InviteRecord, InviteStatus};
use crate::engine::{BinaryLocator, Engine, NetworkProfile};
use crate::error::{Error, ErrorCode, Result};
use crate::pairing::original::{self, OriginalPayload};
use crate::pairing::{host, OfflineCode, PairingError, RelayClient};
use crate::root::SyncRoot;

pub const RELAY_ENV: &str = "BOTSYNC_RELAY";
pub const DEFAULT_RELAY: &str = "https://relay.botsync.io";
/// Offline and original-protocol codes have no relay-side expiry; botsync gives them the same
/// ten minutes as relay codes.
const LOCAL_CODE_LIFETIME: Duration = Duration::from_secs(600);
const WAIT_POLL: Duration = Duration::from_millis(100);

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteOptions {
    /// The sync root. Defaults to `$BOTSYNC_ROOT`, then `~/sync`.
    pub root: Option<String>,
    /// Pairing relay URL. Defaults to `$BOTSYNC_RELAY`, then the public botsync relay.
    pub relay: Option<String>,
    /// Make an offline code (device ID, addresses and a secret) instead of using a relay.
    pub offline: Option<bool>,
    /// Make an original-protocol code, for a relay that speaks only that protocol (its relay sees
    /// the whole code). Refused when the relay speaks v2.
    pub original: Option<bool>,
    /// Resolve only once the other machine has paired (or the code expired). The background
    /// process completes the pairing either way.
    pub wait: Option<bool>,
}

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteReport {
    /// Names this invite's record in `<root>/.botsync/invites/`.
    pub id: String,
    /// What the other machine passes to `botsync join`.
    pub code: String,
    /// When the code stops working (RFC 3339, UTC).
    pub expires_at: String,
    /// This machine's Syncthing device ID.
    pub device_id: String,
    /// `relay` (authenticated exchange), `original` (the original protocol, asked for with
    /// `original`: the relay sees the whole code) or `offline` (no relay).
    pub kind: String,
    pub relay: Option<String>,
    /// The exact command to run on the other machine.
    pub join_command: String,
    /// Why the code is not the usual kind, when it is not.
    pub note: Option<String>,
    /// The machine that paired, when the call waited for it.
    pub paired: Option<PairedPeer>,
}

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairedPeer {
    pub device_id: String,
    pub name: String,
}

pub fn relay_url(explicit: Option<&str>) -> String {
    explicit
        .map(str::to_string)
        .or_else(|| std::env::var(RELAY_ENV).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| DEFAULT_RELAY.to_string())
}

pub async fn run(options: &InviteOptions) -> Result<InviteReport> {
    let root = RootOptions { root: options.root.clone() }.locate()?;
    let mut engine = Engine::load(&root)?;
    crate::daemon::notify::NotifySettings::check_env(&root)?;
    crate::daemon::process::binary()?;
    check_route(options.relay.as_deref(), options.offline, options.original, Some(engine.network())).await?;
    engine.start(&BinaryLocator::from_env()).await?;
    super::start::start_daemon(&root).await?;
    issue(&engine, options).await
}

/// Refuses, before anything is set up or started, a route that cannot be taken: `offline` with
/// `original`, a malformed relay URL, `original` with the `direct` profile (`network`, when known),
/// or `original` with a relay that speaks v2 (the v2 exchange keeps the code from the relay; the
/// original protocol would hand it over for nothing).
pub async fn check_route(
    relay: Option<&str>,
    offline: Option<bool>,
    original: Option<bool>,
    network: Option<NetworkProfile>,
) -> Result<()> {
    let (offline, original) = (offline.unwrap_or(false), original.unwrap_or(false));
    if offline && original {
        return Err(Error::Usage("--offline and --original are two different kinds of code: pick one".into()));
    }
    if original && network == Some(NetworkProfile::Direct) {
        return Err(original_needs_discovery());
    }
    if offline {
        return Ok(());
    }
    let url = relay_url(relay);
    let client = RelayClient::new(&url)?;
    if original {
        refuse_original_on_v2(&client).await?;
    }
    Ok(())
}

/// `--original` only makes sense where v2 is missing.
pub async fn refuse_original_on_v2(relay: &RelayClient) -> Result<()> {
    if relay.info().await?.is_some() {
        return Err(Error::Usage(format!(
            "--original: the relay at {} speaks v2 pairing, which keeps the code's secret words from the relay; the original protocol would hand it the whole code: drop --original",
            relay.url()
        )));
    }
    Ok(())
}

/// Registers a code for this (running) engine and records it for the background process.
pub async fn issue(engine: &Engine, options: &InviteOptions) -> Result<InviteReport> {
    let root = engine.root();
    let relay = relay_url(options.relay.as_deref());
    let (record, note) = if options.offline.unwrap_or(false) {
        (offline_record(engine), None)
    } else if options.original.unwrap_or(false) {
        (original_record(engine, &relay).await?, Some(ORIGINAL_NOTE.to_string()))
    } else {
        match relay_record(&relay).await {
            Ok(record) => (record, None),
            Err(PairingError::RelayUnreachable { reason, .. }) => {
                let note = format!("the relay at {relay} is unreachable ({reason}), so this is an offline code");
                (offline_record(engine), Some(note))
            }
            // Never the original protocol unasked: its relay would see the whole code.
            Err(PairingError::OriginalOnlyRelay { .. }) => {
                let note = format!(
                    "the relay at {relay} has no v2 pairing API, so this is an offline code (an original-protocol code would show the relay the whole code; ask for one with --original if you trust this relay)"
                );
                (offline_record(engine), Some(note))
            }
            Err(e) => return Err(e.into()),
        }
    };
    invites::save(root, &record)?;
    crate::daemon::process::nudge(root);
    let mut report = InviteReport {
        id: record.id.clone(),
        code: record.code().to_string(),
        expires_at: clock::rfc3339(record.expires_at_ms),
        device_id: engine.device_id().to_string(),
        kind: match record.kind {
            InviteKind::Relay { .. } => "relay",
            InviteKind::Original { .. } => "original",
            InviteKind::Offline { .. } => "offline",
        }
        .into(),
        relay: match &record.kind {
            InviteKind::Relay { relay, .. } | InviteKind::Original { relay, .. } => Some(relay.clone()),
            InviteKind::Offline { .. } => None,
        },
        join_command: join_command(record.code(), &record.kind),
        note,
        paired: None,
    };
    if options.wait.unwrap_or(false) {
        report.paired = Some(wait_for_pairing(root, &record.id, |_| {}).await?);
    }
    Ok(report)
}

/// What every original-protocol code is labelled with, wherever it is shown.
pub const ORIGINAL_NOTE: &str =
    "original-protocol code: the relay sees this whole code and could pair itself in its place; use it only with a relay you trust";

async fn relay_record(relay_url: &str) -> Result<InviteRecord, PairingError> {
    let relay = RelayClient::new(relay_url)?;
    let invite = host::open_invite(&relay).await?;
    Ok(InviteRecord {
        id: invite.code.mailbox().to_string(),
        kind: InviteKind::Relay {
            relay: relay_url.to_string(),
            code: invite.code.to_string(),
            host_token: Some(invite.host_token),
            progress: Box::default(),
        },
        expires_at_ms: invite.expires_at,
        status: InviteStatus::Pending,
    })
}

/// An original code hands the joiner our device ID and nothing else: without discovery it could
/// never find us.
fn original_needs_discovery() -> Error {
    Error::Usage(
        "--original: the original protocol tells the other machine only this device's ID, and the `direct` network profile turns off the discovery it would need to find it: use a v2 relay or an offline code".into(),
    )
}

/// An original-protocol code, asked for with `--original` (and `check_route` passed).
async fn original_record(engine: &Engine, relay_url: &str) -> Result<InviteRecord> {
    if engine.network() == NetworkProfile::Direct {
        return Err(original_needs_discovery());
    }
    let relay = RelayClient::new(relay_url)?;
    refuse_original_on_v2(&relay).await?;
    let payload = OriginalPayload { device_id: engine.device_id(), network_id: None, network_secret: None };
    let code = original::create(&relay, &payload).await?;
    Ok(InviteRecord {
        id: format!("original-{}", code.as_str().split('-').take(2).collect::<Vec<_>>().join("-")),
        kind: InviteKind::Original { relay: relay_url.to_string(), code: code.to_string() },
        expires_at_ms: clock::now_ms() + LOCAL_CODE_LIFETIME.as_millis() as u64,
        status: InviteStatus::Pending,
    })
}

fn offline_record(engine: &Engine) -> InviteRecord {
    let addresses: Vec<SocketAddr> =
        engine.direct_addresses().iter().filter_map(|a| a.strip_prefix("tcp://")?.parse().ok()).collect();
    let code = OfflineCode::new(engine.device_id(), addresses).to_string();
    InviteRecord {
        id: format!("offline-{}", &code[code.len() - 10..]),
        kind: InviteKind::Offline { code },
        expires_at_ms: clock::now_ms() + LOCAL_CODE_LIFETIME.as_millis() as u64,
        status: InviteStatus::Pending,
    }
}

fn join_command(code: &str, kind: &InviteKind) -> String {
    let flag = if matches!(kind, InviteKind::Original { .. }) { "--original " } else { "" };
    match kind {
        InviteKind::Relay { relay, .. } | InviteKind::Original { relay, .. } if relay != DEFAULT_RELAY => {
            format!("npx botsync join {flag}{code} --relay {relay}")
        }
        _ => format!("npx botsync join {flag}{code}"),
    }
}

/// Waits until the background process records the outcome of invite `id`; `tick` is called on
/// every poll (the CLI draws its spinner there).
pub async fn wait_for_pairing(root: &SyncRoot, id: &str, mut tick: impl FnMut(u64)) -> Result<PairedPeer> {
    loop {
        let record = invites::load(root, id)?.ok_or_else(|| Error::Internal(format!("invite {id} disappeared")))?;
        match record.status {
            InviteStatus::Paired { device_id, name, .. } => return Ok(PairedPeer { device_id, name }),
            // The daemon recorded the stable code with the message: agents match on it.
            InviteStatus::Failed { code, error } => {
                return Err(Error::Recorded { code: ErrorCode::parse(&code).unwrap_or(ErrorCode::Internal), message: error })
            }
            InviteStatus::Pending if clock::now_ms() > record.expires_at_ms + 5_000 => {
                return Err(PairingError::Timeout("a machine to join before the code expired").into());
            }
            InviteStatus::Pending => {}
        }
        tick(record.expires_at_ms.saturating_sub(clock::now_ms()));
        tokio::time::sleep(WAIT_POLL).await;
    }
}

impl Report for PairedPeer {
    fn human(&self) -> String {
        format!("Paired with {} ({}). Files in shared/, deliverables/ and inbox/ now sync.", self.name, &self.device_id[..7.min(self.device_id.len())])
    }
}

impl Report for InviteReport {
    fn human(&self) -> String {
        let mut lines = Vec::new();
        if self.kind == "original" {
            lines.push("ORIGINAL-PROTOCOL CODE (the relay sees all of it)".to_string());
        }
        lines.extend([
            "On the other machine, run:".to_string(),
            String::new(),
            format!("  {}", self.join_command),
            String::new(),
            format!("One use, valid until {}.", self.expires_at),
        ]);
        if let Some(note) = &self.note {
            lines.push(format!("Note: {note}"));
        }
        let mut out = boxed(&lines);
        if let Some(peer) = &self.paired {
            out.push_str(&format!("\nPaired with {} ({}).", peer.name, &peer.device_id[..7.min(peer.device_id.len())]));
        }
        out
    }
}

/// Draws `lines` in a box, so the code stands out in a busy terminal.
pub fn boxed(lines: &[String]) -> String {
    let width = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let mut out = format!("┌{}┐\n", "─".repeat(width + 2));
    for line in lines {
        out.push_str(&format!("│ {line}{} │\n", " ".repeat(width - line.chars().count())));
    }
    out.push_str(&format!("└{}┘", "─".repeat(width + 2)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_fits_the_longest_line() {
        let text = boxed(&["ab".into(), "abcd".into()]);
        let widths: Vec<usize> = text.lines().map(|l| l.chars().count()).collect();
        assert!(widths.iter().all(|w| *w == widths[0]), "{text}");
    }

    #[test]
    fn a_recorded_failure_keeps_its_code() {
        let dir = tempfile::tempdir().unwrap();
        let root = SyncRoot::at(dir.path().to_owned()).unwrap();
        let failed = |code: &str| InviteRecord {
            id: "abandon-ability".into(),
            kind: InviteKind::Offline { code: "c".into() },
            expires_at_ms: clock::now_ms() + 60_000,
            status: InviteStatus::Failed { code: code.into(), error: "the other machine typed a different code".into() },
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        invites::save(&root, &failed("BOTSYNC_CODE_MISMATCH")).unwrap();
        let error = runtime.block_on(wait_for_pairing(&root, "abandon-ability", |_| {})).unwrap_err();
        assert_eq!(error.code(), ErrorCode::CodeMismatch);
        assert_eq!(error.to_string(), "the other machine typed a different code");
        // A code this version does not know (a newer daemon) is still an error, never a success.
        invites::save(&root, &failed("BOTSYNC_FROM_THE_FUTURE")).unwrap();
        let error = runtime.block_on(wait_for_pairing(&root, "abandon-ability", |_| {})).unwrap_err();
        assert_eq!(error.code(), ErrorCode::Internal);
    }

    #[test]
    fn join_command_names_a_non_default_relay() {
        let relay = |relay: &str| InviteKind::Relay {
            relay: relay.into(),
            code: "c".into(),
            host_token: None,
            progress: Box::default(),
        };
        assert_eq!(join_command("c", &relay("http://127.0.0.1:8787")), "npx botsync join c --relay http://127.0.0.1:8787");
        assert_eq!(join_command("c", &relay(DEFAULT_RELAY)), "npx botsync join c");
        let original = InviteKind::Original { relay: DEFAULT_RELAY.into(), code: "c".into() };
        assert_eq!(join_command("c", &original), "npx botsync join --original c");
    }
}
