//! The botsync command line as a native binary, without Node: `cargo run --example cli -- status`.
//! Used by bench/engine.sh to time commands without the Node startup.

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let argv: Vec<String> = std::env::args().collect();
    std::process::exit(botsync::cli::run(argv).await);
}
