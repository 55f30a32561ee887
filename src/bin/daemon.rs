//! `botsync-daemon --root=<root>`: the background process of one botsync root. Started by the
//! CLI, never by hand; see `botsync::daemon`. (The npm package ships `src/launcher` under this
//! name instead, which runs the same entry from the addon.)

fn main() {
    std::process::exit(botsync::daemon::entry::main(std::env::args().skip(1)));
}
