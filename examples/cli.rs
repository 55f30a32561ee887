//! The botsync command line as a native binary, without Node: `cargo run --features bench --example cli -- status`.
//! Times commands without the Node start-up in front of them.

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let argv: Vec<String> = std::env::args().collect();
    std::process::exit(botsync::cli::run(argv).await);
}
