//! botsync's background process (one per root). Filled in by the daemon layer.
fn main() {
    eprintln!("botsync-daemon: not available in this build yet");
    std::process::exit(1);
}
