//! What botsync needs from the operating system about processes and locks, in one place, so the
//! code that runs in the Linux tests is the code that runs on macOS.
//!
//! - `process`: liveness ("exists and is not a zombie"), identity (a process's arguments, parent
//!   and environment, read through the cross-platform `sysinfo` crate rather than `/proc`),
//!   signals, the TERM-then-KILL sequence, and spawning detached from the caller's terminal.
//! - `lock`: `flock(2)` lock files that the OS releases however the holder dies, which also
//!   record the holder's PID so that "who holds it?" has an answer without `/proc/locks`.
//!
//! Identity is always "alive *and* started with this marker argument" (`--home=<dir>`,
//! `--root=<dir>`), never a process name: PIDs are reused, and other users and other roots run
//! Syncthing too. Nothing outside this module reads `/proc` or calls `kill(2)`/`flock(2)`.

pub mod lock;
pub mod process;
