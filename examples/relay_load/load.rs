//! A load generator for a running relay: many original-protocol pairings (create, then resolve)
//! with bounded concurrency and a time bound, checking that no code is lost or handed out twice.
//! `examples/relay_load/main.rs` drives it from its own process; the integration tests include
//! this file (`tests/it/relay_load.rs`) and run it small. It is not part of the addon or the daemon.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The relay's base URL, such as `http://127.0.0.1:8787`.
    pub url: String,
    pub pairings: usize,
    /// Pairings in flight at once.
    pub concurrency: usize,
    /// No new pairing starts after this long.
    pub time_limit: Duration,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            url: "http://127.0.0.1:8787".into(),
            pairings: 10_000,
            concurrency: 64,
            time_limit: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadReport {
    pub pairings_requested: usize,
    /// Pairings whose code resolved to exactly the device ID that created it.
    pub pairings_completed: usize,
    /// Codes handed out by `POST /pair` that did not resolve to their own record.
    pub lost: usize,
    /// Codes handed out more than once.
    pub duplicated: usize,
    /// Creations that failed outright (transport error or a non-201 answer).
    pub create_failures: usize,
    pub first_errors: Vec<String>,
    pub timed_out: bool,
    pub elapsed_ms: f64,
    pub pairings_per_second: f64,
    /// Latency of one whole pairing (create + resolve).
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl LoadReport {
    /// Every requested pairing completed, none lost, none duplicated.
    pub fn is_clean(&self) -> bool {
        self.pairings_completed == self.pairings_requested
            && self.lost == 0
            && self.duplicated == 0
            && self.create_failures == 0
            && !self.timed_out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// A Syncthing-shaped device ID (8 groups of 7, 63 characters) unique to pairing `index`, so a
/// resolved record proves which creation it came from.
fn synthetic_device_id(index: usize) -> String {
    let raw = format!("LOAD{index:0>52}");
    raw.as_bytes().chunks(7).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join("-")
}

#[derive(Default)]
struct WorkerTally {
    codes: Vec<String>,
    latencies: Vec<Duration>,
    completed: usize,
    lost: usize,
    create_failures: usize,
    errors: Vec<String>,
    timed_out: bool,
}

impl WorkerTally {
    fn note(&mut self, error: String) {
        if self.errors.len() < 5 {
            self.errors.push(error);
        }
    }
}

enum Outcome {
    Completed(String),
    Lost(String, String),
    CreateFailed(String),
}

async fn one_pairing(client: &reqwest::Client, url: &str, index: usize) -> Outcome {
    let device_id = synthetic_device_id(index);
    let created = client.post(format!("{url}/pair")).json(&json!({ "deviceId": device_id })).send().await;
    let code = match created {
        Ok(response) if response.status() == reqwest::StatusCode::CREATED => {
            match response.json::<Value>().await.ok().and_then(|v| v["code"].as_str().map(String::from)) {
                Some(code) => code,
                None => return Outcome::CreateFailed("POST /pair: 201 without a code".into()),
            }
        }
        Ok(response) => return Outcome::CreateFailed(format!("POST /pair: HTTP {}", response.status())),
        Err(error) => return Outcome::CreateFailed(format!("POST /pair: {error}")),
    };
    let resolved = client.get(format!("{url}/pair/{code}")).send().await;
    match resolved {
        Ok(response) if response.status() == reqwest::StatusCode::OK => match response.json::<Value>().await {
            Ok(body) if body["deviceId"] == device_id.as_str() => Outcome::Completed(code),
            Ok(body) => Outcome::Lost(code, format!("resolved to another record: {body}")),
            Err(error) => Outcome::Lost(code, format!("unreadable answer: {error}")),
        },
        Ok(response) => Outcome::Lost(code, format!("GET /pair/:code: HTTP {}", response.status())),
        Err(error) => Outcome::Lost(code, format!("GET /pair/:code: {error}")),
    }
}

pub async fn run(options: &LoadOptions) -> Result<LoadReport, LoadError> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(10))
        .build()?;
    let url: Arc<str> = options.url.trim_end_matches('/').into();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + options.time_limit;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..options.concurrency.max(1) {
        let (client, url, next, total) = (client.clone(), url.clone(), next.clone(), options.pairings);
        workers.spawn(async move {
            let mut tally = WorkerTally::default();
            loop {
                if Instant::now() >= deadline {
                    tally.timed_out = true;
                    break;
                }
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= total {
                    break;
                }
                let began = Instant::now();
                match one_pairing(&client, &url, index).await {
                    Outcome::Completed(code) => {
                        tally.latencies.push(began.elapsed());
                        tally.codes.push(code);
                        tally.completed += 1;
                    }
                    Outcome::Lost(code, why) => {
                        tally.codes.push(code);
                        tally.lost += 1;
                        tally.note(why);
                    }
                    Outcome::CreateFailed(why) => {
                        tally.create_failures += 1;
                        tally.note(why);
                    }
                }
            }
            tally
        });
    }
    let mut all = WorkerTally::default();
    while let Some(joined) = workers.join_next().await {
        let tally = joined.expect("load worker panicked");
        all.codes.extend(tally.codes);
        all.latencies.extend(tally.latencies);
        all.completed += tally.completed;
        all.lost += tally.lost;
        all.create_failures += tally.create_failures;
        all.timed_out |= tally.timed_out;
        for error in tally.errors {
            all.note(error);
        }
    }
    let elapsed = started.elapsed();
    let unique: HashSet<&String> = all.codes.iter().collect();
    all.latencies.sort();
    let percentile = |q: f64| -> f64 {
        if all.latencies.is_empty() {
            return 0.0;
        }
        let rank = ((all.latencies.len() as f64 * q) as usize).min(all.latencies.len() - 1);
        all.latencies[rank].as_secs_f64() * 1000.0
    };
    Ok(LoadReport {
        pairings_requested: options.pairings,
        pairings_completed: all.completed,
        lost: all.lost,
        duplicated: all.codes.len() - unique.len(),
        create_failures: all.create_failures,
        first_errors: all.errors,
        timed_out: all.timed_out,
        elapsed_ms: elapsed.as_secs_f64() * 1000.0,
        pairings_per_second: all.completed as f64 / elapsed.as_secs_f64().max(1e-9),
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
        max_ms: all.latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn synthetic_ids_look_like_syncthing_ids() {
        let id = super::synthetic_device_id(12345);
        assert_eq!(id.len(), 63);
        assert_eq!(id.split('-').count(), 8);
        assert_ne!(id, super::synthetic_device_id(12346));
    }
}
