//! Load tool for the pairing relay.
//!
//!   relay_load run --url http://127.0.0.1:8787 [-n 10000] [-c 64] [--time-limit 120]
//!       N original-protocol pairings (POST /pair + GET /pair/:code) against a running relay;
//!       the relay must allow it (`botsync relay --no-rate-limits`, or `relay_load serve`).
//!   relay_load serve [--listen 127.0.0.1:0] [--redis URL] [--keep-rate-limits]
//!       A relay in this process, rate limits off unless asked; prints its URL.
//!   relay_load bench [--redis URL] [-n 10000] [-c 64]
//!       Starts `relay_load serve` as a second process, runs the load against it, stops it.
//!
//! Build it once in release to measure:
//!   cargo build --release --target x86_64-unknown-linux-gnu --features bench --example relay_load

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

mod load;

use load::{LoadOptions, LoadReport};
use botsync::relay::{self, Backend, RateLimits, RelayConfig};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "relay_load", about = "Load tool for the botsync pairing relay")]
struct Cli {
    #[command(subcommand)]
    command: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Run pairings against a relay that is already running
    Run {
        #[arg(long)]
        url: String,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Serve a relay in this process (rate limits off unless --keep-rate-limits)
    Serve(ServeArgs),
    /// Serve a relay in a child process and run the load against it
    Bench {
        #[arg(long)]
        redis: Option<String>,
        #[command(flatten)]
        load: LoadArgs,
    },
}

#[derive(Args)]
struct LoadArgs {
    /// Pairings to run
    #[arg(short = 'n', long, default_value_t = 10_000)]
    pairings: usize,
    /// Pairings in flight at once
    #[arg(short = 'c', long, default_value_t = 64)]
    concurrency: usize,
    /// Start no pairing after this many seconds
    #[arg(long, default_value_t = 120)]
    time_limit: u64,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    #[arg(long)]
    redis: Option<String>,
    #[arg(long)]
    keep_rate_limits: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match cli.command {
        Mode::Serve(args) => runtime.block_on(serve(args)),
        Mode::Run { url, load } => runtime.block_on(run(url, load)),
        Mode::Bench { redis, load } => {
            let relay = match ChildRelay::spawn(redis.as_deref()) {
                Ok(relay) => relay,
                Err(error) => {
                    eprintln!("relay_load: cannot start the relay process: {error}");
                    return ExitCode::FAILURE;
                }
            };
            eprintln!("relay_load: relay process {} at {}", relay.child.id(), relay.url);
            let url = relay.url.clone();
            let outcome = runtime.block_on(run(url, load));
            drop(relay);
            outcome
        }
    }
}

async fn serve(args: ServeArgs) -> ExitCode {
    let backend = match args.redis {
        Some(url) => Backend::Redis { url, key_prefix: relay::redis::DEFAULT_KEY_PREFIX.into() },
        None => Backend::Memory,
    };
    let limits = if args.keep_rate_limits { RateLimits::default() } else { RateLimits::unlimited() };
    let config = RelayConfig { limits, ..RelayConfig::default() };
    match relay::start(&args.listen, &backend, config).await {
        Ok(running) => {
            println!("listening {} ({})", running.url(), backend.describe());
            running.wait().await;
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("relay_load: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(url: String, args: LoadArgs) -> ExitCode {
    let options = LoadOptions {
        url,
        pairings: args.pairings,
        concurrency: args.concurrency,
        time_limit: Duration::from_secs(args.time_limit),
    };
    let report = match load::run(&options).await {
        Ok(report) => report,
        Err(error) => {
            eprintln!("relay_load: {error}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        println!("{}", serde_json::to_string(&report).unwrap());
    } else {
        print_report(&options, &report);
    }
    if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_report(options: &LoadOptions, report: &LoadReport) {
    println!(
        "{} of {} pairings in {:.0} ms ({} concurrent): {:.0} pairings/s",
        report.pairings_completed, report.pairings_requested, report.elapsed_ms, options.concurrency, report.pairings_per_second
    );
    println!("latency per pairing: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms", report.p50_ms, report.p99_ms, report.max_ms);
    println!(
        "lost codes {}, duplicated codes {}, failed creations {}{}",
        report.lost,
        report.duplicated,
        report.create_failures,
        if report.timed_out { ", stopped by the time limit" } else { "" }
    );
    for error in &report.first_errors {
        println!("  error: {error}");
    }
    println!("{}", if report.is_clean() { "OK" } else { "FAILED" });
}

/// `relay_load serve` in a child process, killed by PID when dropped.
struct ChildRelay {
    child: Child,
    url: String,
}

impl ChildRelay {
    fn spawn(redis: Option<&str>) -> std::io::Result<Self> {
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["serve", "--listen", "127.0.0.1:0"]);
        if let Some(url) = redis {
            command.args(["--redis", url]);
        }
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut first_line = String::new();
        BufReader::new(stdout).read_line(&mut first_line)?;
        let url = first_line.split_whitespace().nth(1).map(str::to_string);
        let relay = ChildRelay { child, url: url.clone().unwrap_or_default() };
        match url {
            Some(_) => Ok(relay),
            None => Err(std::io::Error::other(format!("unexpected first line {first_line:?}"))),
        }
    }
}

impl Drop for ChildRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
