//! The command line, parsed in Rust. `run` takes the whole argv and returns the exit status; the
//! JS bin shim only forwards `process.argv` and exits with what comes back.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::commands::{self, Report, RootOptions};
use crate::error::{exit, Error};

#[derive(Debug, Parser)]
#[command(
    name = "botsync",
    bin_name = "botsync",
    version = crate::VERSION,
    about = "Peer-to-peer folder sync for AI agents. Two commands, no server, no account.",
    after_help = "Exit status: 0 ok, 1 failure, 2 usage error. With --json every command prints exactly one JSON object on stdout (`watch` prints one per event), errors included."
)]
pub struct Cli {
    /// Print JSON on stdout for agents: one object per command (one per event for `watch`), errors included
    #[arg(long, global = true)]
    pub json: bool,
    /// The sync root [default: $BOTSYNC_ROOT, then ~/sync]
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the sync root, start Syncthing and print a pairing code
    Init(InitArgs),
    /// Pair with another machine using its 5-word code
    Join(JoinArgs),
    /// Print a new pairing code to add another machine
    Invite(InviteArgs),
    /// Start Syncthing and the background process (after a reboot or `stop`)
    Start(StartArgs),
    /// Stop Syncthing and the background process
    Stop,
    /// Show engine state, folders and peers
    Status,
    /// Check the installation and explain how to fix what fails
    Doctor,
    /// Run a pairing relay (self-hosted)
    Relay(RelayArgs),
    /// Pair two throwaway roots on this machine and sync a file each way
    Demo(DemoArgs),
    /// Print files arriving from peers, connections and conflicts as they happen (one line each; JSON lines with --json)
    Watch,
    /// Wait until PATH (or, without it, everything) has reached the peers
    Wait(WaitArgs),
    /// List the earlier versions kept of a file that a peer overwrote or deleted
    Versions(PathArgs),
    /// Bring back an earlier version of a file (it syncs to the peers as a new version)
    Restore(RestoreArgs),
    /// Serve the root to an MCP client over stdin/stdout (`{"command":"npx","args":["botsync","mcp"]}`)
    Mcp,
    /// List the members of this mesh: name, device ID, connection, last seen, who added it; and removed machines
    Peers,
    /// Remove a machine from the mesh on every member, for good (it keeps the files it has)
    Remove(PeerArgs),
    /// Let a removed machine pair again (it needs a fresh code)
    Allow(PeerArgs),
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Keep files that peers replace or delete for this many days (0: for ever) [default: 30, or what was set before]
    #[arg(long, value_name = "DAYS")]
    pub keep_days: Option<u32>,
}

#[derive(Debug, Args)]
pub struct PathArgs {
    /// A file in the root (`shared/notes.md`, absolute, or relative to the current directory inside the root)
    #[arg(value_name = "PATH")]
    pub path: String,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A file in the root (`shared/notes.md`, absolute, or relative to the current directory inside the root)
    #[arg(value_name = "PATH")]
    pub path: String,
    /// Restore the newest version kept at or before this time (RFC 3339, e.g. 2026-12-01T07:50:00Z) [default: the newest]
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// A file or directory in the root (`deliverables/report.md`, absolute, or relative to the current directory inside the root)
    #[arg(value_name = "PATH")]
    pub path: Option<String>,
    /// Wait for this peer only (name or device ID); repeat for several [default: every peer]
    #[arg(long = "peer", value_name = "NAME")]
    pub peers: Vec<String>,
    /// Give up after this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct PeerArgs {
    /// The machine's name as `botsync peers` shows it, or its device ID (7 characters or more)
    #[arg(value_name = "NAME|DEVICE-ID")]
    pub peer: String,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Network profile: internet (discovery, relays, NAT), lan (local discovery) or direct (pairing addresses only)
    #[arg(long, value_name = "PROFILE")]
    pub network: Option<String>,
    /// Pairing relay URL [env: BOTSYNC_RELAY]
    #[arg(long, value_name = "URL")]
    pub relay: Option<String>,
    /// Return at once; the background process completes the pairing while the code is valid
    #[arg(long)]
    pub no_wait: bool,
    /// Print an offline code (device ID, addresses, secret) instead of using a relay
    #[arg(long)]
    pub offline: bool,
    /// Use the original botsync protocol, for a relay that speaks only that (its relay sees the whole code; refused with a v2 relay)
    #[arg(long, conflicts_with = "offline")]
    pub original: bool,
    /// Keep files that peers replace or delete for this many days (0: for ever) [default: 30]
    #[arg(long, value_name = "DAYS")]
    pub keep_days: Option<u32>,
}

#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The pairing code (5 words) or an offline code; `-` reads it from stdin, none reads $BOTSYNC_CODE (argv is visible to every local user)
    #[arg(value_name = "CODE", num_args = 0..)]
    pub code: Vec<String>,
    /// Network profile for this machine, as for `init`
    #[arg(long, value_name = "PROFILE")]
    pub network: Option<String>,
    /// Pairing relay URL [env: BOTSYNC_RELAY]
    #[arg(long, value_name = "URL")]
    pub relay: Option<String>,
    /// Give up after this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,
    /// The code is an original-protocol code (made with --original; its relay sees the whole code; refused with a v2 relay)
    #[arg(long)]
    pub original: bool,
}

#[derive(Debug, Args)]
pub struct InviteArgs {
    /// Pairing relay URL [env: BOTSYNC_RELAY]
    #[arg(long, value_name = "URL")]
    pub relay: Option<String>,
    /// Return at once; the background process completes the pairing while the code is valid
    #[arg(long)]
    pub no_wait: bool,
    /// Print an offline code (device ID, addresses, secret) instead of using a relay
    #[arg(long)]
    pub offline: bool,
    /// Use the original botsync protocol, for a relay that speaks only that (its relay sees the whole code; refused with a v2 relay)
    #[arg(long, conflicts_with = "offline")]
    pub original: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the two roots (stopped) instead of deleting them
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8787")]
    pub listen: String,
    /// Keep pairing state in Redis so several relay instances share it (prefer the env var: argv is visible to every local user)
    #[arg(long, value_name = "URL", env = "BOTSYNC_RELAY_REDIS", hide_env_values = true)]
    pub redis: Option<String>,
    /// Key prefix in Redis [default: botsync:relay:]
    #[arg(long, value_name = "PREFIX", requires = "redis")]
    pub redis_prefix: Option<String>,
    /// How long codes and mailboxes stay valid, in seconds [default: 600]
    #[arg(long, value_name = "SECONDS")]
    pub ttl: Option<u32>,
    /// Turn off per-client rate limits (load tests, or behind a proxy that limits)
    #[arg(long)]
    pub no_rate_limits: bool,
    /// POST /pair per client per minute [default: 10]
    #[arg(long, value_name = "N")]
    pub pair_create_limit: Option<u32>,
    /// GET /pair/CODE per client per minute [default: 20]
    #[arg(long, value_name = "N")]
    pub pair_lookup_limit: Option<u32>,
    /// POST /v2/mailboxes per client per minute [default: 10]
    #[arg(long, value_name = "N")]
    pub mailbox_create_limit: Option<u32>,
    /// Mailbox slot reads and writes per client per minute [default: 600]
    #[arg(long, value_name = "N")]
    pub slot_limit: Option<u32>,
    /// Count clients by X-Forwarded-For (only behind a reverse proxy you run)
    #[arg(long)]
    pub trust_proxy: bool,
}

impl RelayArgs {
    pub fn options(&self) -> commands::relay::RelayOptions {
        commands::relay::RelayOptions {
            listen: Some(self.listen.clone()),
            redis: self.redis.clone(),
            redis_prefix: self.redis_prefix.clone(),
            ttl_seconds: self.ttl,
            no_rate_limits: Some(self.no_rate_limits),
            pair_create_per_minute: self.pair_create_limit,
            pair_lookup_per_minute: self.pair_lookup_limit,
            mailbox_create_per_minute: self.mailbox_create_limit,
            slot_access_per_minute: self.slot_limit,
            trust_proxy: Some(self.trust_proxy),
        }
    }
}

/// Parses `argv` (with the program name first) and runs the command; returns the exit status.
pub async fn run(argv: Vec<String>) -> i32 {
    let wants_json = argv.iter().skip(1).any(|a| a == "--json");
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => return print_parse_outcome(e, wants_json),
    };
    let json = cli.json;
    // Progress and warnings while obtaining Syncthing: JSON lines on stderr for agents.
    crate::engine::binary::set_json_lines(json);
    if matches!(cli.command, Command::Mcp) {
        // stdout belongs to the protocol: nothing else may be printed there, errors included.
        let root = RootOptions { root: cli.root.map(|p| p.display().to_string()) };
        return match crate::mcp::serve_stdio(&root).await {
            Ok(()) => exit::OK,
            Err(error) => {
                let _ = writeln!(std::io::stderr(), "botsync: {error}");
                error.exit_code()
            }
        };
    }
    match dispatch(cli).await {
        Ok(report) => {
            print_stdout(if json { &report.json } else { &report.human });
            report.exit_status
        }
        Err(error) => {
            print_error(&error, json);
            error.exit_code()
        }
    }
}

/// A report rendered both ways, and the exit status it asks for.
struct Rendered {
    json: String,
    human: String,
    exit_status: i32,
}

fn render<R: Report>(report: R) -> Rendered {
    Rendered {
        json: serde_json::to_string(&report).expect("reports always serialize"),
        human: report.human(),
        exit_status: report.exit_status(),
    }
}

async fn dispatch(cli: Cli) -> Result<Rendered, Error> {
    let json = cli.json;
    let root = RootOptions { root: cli.root.map(|p| p.display().to_string()) };
    match cli.command {
        Command::Status => Ok(render(commands::status::run(&root).await?)),
        Command::Init(args) => {
            let options = commands::init::InitOptions {
                root: root.root.clone(),
                network: args.network,
                relay: args.relay,
                offline: Some(args.offline),
                original: Some(args.original),
                wait: None,
            };
            let report = commands::init::run(&options).await?;
            set_keep_days(&root, args.keep_days).await?;
            let invite_id = report.invite.id.clone();
            finish_invite(report, &root, &invite_id, waits_for_peer(json, args.no_wait)).await
        }
        Command::Join(args) => {
            let options = commands::join::JoinOptions {
                code: commands::secret_input::join_code(&args.code)?,
                root: root.root.clone(),
                network: args.network,
                relay: args.relay,
                timeout_seconds: Some(args.timeout.try_into().unwrap_or(u32::MAX)),
                original: Some(args.original),
            };
            Ok(render(commands::join::run(&options).await?))
        }
        Command::Invite(args) => {
            let options = commands::invite::InviteOptions {
                root: root.root.clone(),
                relay: args.relay,
                offline: Some(args.offline),
                original: Some(args.original),
                wait: None,
            };
            let report = commands::invite::run(&options).await?;
            let invite_id = report.id.clone();
            finish_invite(report, &root, &invite_id, waits_for_peer(json, args.no_wait)).await
        }
        Command::Start(args) => {
            let report = commands::start::run(&root).await?;
            set_keep_days(&root, args.keep_days).await?;
            Ok(render(report))
        }
        Command::Versions(args) => {
            Ok(render(commands::versions::list(&commands::versions::VersionsOptions { root: root.root.clone(), path: args.path }).await?))
        }
        Command::Restore(args) => Ok(render(
            commands::versions::restore(&commands::versions::RestoreOptions { root: root.root.clone(), path: args.path, at: args.at }).await?,
        )),
        Command::Stop => Ok(render(commands::stop::run(&root).await?)),
        Command::Doctor => Ok(render(commands::doctor::run(&root).await?)),
        Command::Relay(args) => match commands::relay::serve(&args.options(), |started| announce(started, json)).await? {},
        Command::Demo(args) => Ok(render(commands::demo::run(&commands::demo::DemoOptions { keep: Some(args.keep) }).await?)),
        Command::Watch => match commands::watch::run(&root, json, print_stdout).await? {},
        Command::Mcp => unreachable!("served before dispatch"),
        Command::Wait(args) => {
            let options = commands::watch::WaitForSyncOptions {
                root: root.root.clone(),
                timeout_ms: Some(u32::try_from(args.timeout.saturating_mul(1000)).unwrap_or(u32::MAX)),
                path: args.path,
                peers: Some(args.peers),
            };
            Ok(render(commands::wait::run(&options).await?))
        }
        Command::Peers => Ok(render(commands::peers::run(&root).await?)),
        Command::Remove(args) => {
            Ok(render(commands::remove::remove(&commands::remove::PeerOptions { peer: args.peer, root: root.root.clone() }).await?))
        }
        Command::Allow(args) => {
            Ok(render(commands::remove::allow(&commands::remove::PeerOptions { peer: args.peer, root: root.root.clone() }).await?))
        }
    }
}

/// `--keep-days` on `init` and `start`.
async fn set_keep_days(root: &RootOptions, days: Option<u32>) -> Result<(), Error> {
    if let Some(days) = days {
        commands::versions::keep(&commands::versions::KeepOptions { root: root.root.clone(), days }).await?;
    }
    Ok(())
}

/// People at a terminal watch the pairing finish; agents (no TTY, `--json`, `--no-wait`) get the
/// code at once while the background process completes the pairing.
fn waits_for_peer(json: bool, no_wait: bool) -> bool {
    use std::io::IsTerminal;
    !json && !no_wait && std::io::stdout().is_terminal()
}

/// Shows the code, then (when waiting) a spinner until the other machine has paired. Ctrl-C
/// ends only the waiting: the background process still completes the pairing.
async fn finish_invite<R: Report + Clone>(report: R, root: &RootOptions, invite_id: &str, wait: bool) -> Result<Rendered, Error> {
    if !wait {
        return Ok(render(report));
    }
    announce(&report, false);
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.enable_steady_tick(std::time::Duration::from_millis(100));
    let root = root.locate()?;
    let peer = commands::invite::wait_for_pairing(&root, invite_id, |left_ms| {
        let left = left_ms / 1000;
        spinner.set_message(format!(
            "waiting for the other machine ({}:{:02} left; Ctrl-C leaves it to the background)",
            left / 60,
            left % 60
        ));
    })
    .await;
    spinner.finish_and_clear();
    Ok(render(peer?))
}

/// Prints a report right away, for commands that keep running after they have something to say.
fn announce<R: Report + Clone>(report: &R, json: bool) {
    let rendered = render(report.clone());
    print_stdout(if json { &rendered.json } else { &rendered.human });
}

fn print_parse_outcome(e: clap::Error, json: bool) -> i32 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            if json && e.kind() == ErrorKind::DisplayVersion {
                print_stdout(&json!({ "version": crate::VERSION }).to_string());
            } else {
                print_stdout(e.render().to_string().trim_end());
            }
            exit::OK
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let error = Error::Usage("a command is required; run `botsync --help` for the list".into());
            print_error(&error, json);
            if !json {
                eprintln!("{}", e.render().to_string().trim_end());
            }
            exit::USAGE
        }
        _ => {
            let error = Error::Usage(usage_message(&e.render().to_string()));
            print_error(&error, json);
            if !json {
                eprintln!("Run `botsync --help` for the commands.");
            }
            exit::USAGE
        }
    }
}

fn usage_message(text: &str) -> String {
    let message: Vec<&str> = text
        .lines()
        .take_while(|line| !line.starts_with("Usage:"))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    message.join(" ").trim_start_matches("error: ").to_string()
}

pub fn error_json(error: &Error) -> serde_json::Value {
    json!({ "error": { "code": error.code().as_str(), "message": error.to_string() } })
}

fn print_error(error: &Error, json: bool) {
    if json {
        print_stdout(&error_json(error).to_string());
    } else {
        let _ = writeln!(std::io::stderr(), "botsync: {error}");
    }
}

fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}
