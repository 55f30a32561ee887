//! Processes: liveness, identity, signals and detached spawning, on every Unix botsync ships for.
//!
//! Process facts come from `sysinfo`, which reads `/proc` on Linux and `sysctl`/`libproc` on
//! macOS. A zombie counts as gone: `kill -0` stays true for an exited child until it is reaped,
//! and a zombie holds no lock and answers no API.

use std::fs;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System, UpdateKind};

const POLL: Duration = Duration::from_millis(20);

/// What identifies one of our processes: alive, started with `arg` among its arguments, and (if
/// given) running a program of that file name.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    pub arg: &'a str,
    pub program: Option<&'a str>,
}

impl<'a> Identity<'a> {
    pub fn by_arg(arg: &'a str) -> Identity<'a> {
        Identity { arg, program: None }
    }

    pub fn matches(&self, process: &ProcessInfo) -> bool {
        process.has_arg(self.arg) && self.program.map_or(true, |name| process.program_name() == Some(name))
    }
}

/// A live (not zombie) process as the OS describes it.
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    pub pid: u32,
    pub parent: Option<u32>,
    pub args: Vec<String>,
    environ: Vec<String>,
}

impl ProcessInfo {
    pub fn has_arg(&self, arg: &str) -> bool {
        self.args.iter().any(|a| a == arg)
    }

    /// The file name of argv[0].
    pub fn program_name(&self) -> Option<&str> {
        Path::new(self.args.first()?).file_name()?.to_str()
    }

    /// Whether `name` was set in the environment the process was started with.
    pub fn has_env(&self, name: &str) -> bool {
        self.environ.iter().any(|var| var.split_once('=').is_some_and(|(key, _)| key == name))
    }
}

fn refresh_kind() -> ProcessRefreshKind {
    ProcessRefreshKind::nothing().with_cmd(UpdateKind::Always).with_environ(UpdateKind::Always)
}

fn system(which: ProcessesToUpdate<'_>) -> System {
    // sysinfo keeps `stat` files open between refreshes by default; a long-lived daemon that asks
    // now and then has no use for that.
    static LIMIT: Once = Once::new();
    LIMIT.call_once(|| {
        sysinfo::set_open_files_limit(0);
    });
    let mut system = System::new();
    system.refresh_processes_specifics(which, true, refresh_kind());
    system
}

fn describe(process: &sysinfo::Process) -> Option<ProcessInfo> {
    // Threads are listed as tasks on Linux; they share their process's argv and are not processes.
    if process.thread_kind().is_some() || matches!(process.status(), ProcessStatus::Zombie | ProcessStatus::Dead) {
        return None;
    }
    let text = |items: &[std::ffi::OsString]| items.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    Some(ProcessInfo {
        pid: process.pid().as_u32(),
        parent: process.parent().map(|p| p.as_u32()),
        args: text(process.cmd()),
        environ: text(process.environ()),
    })
}

/// The process `pid`, if it exists and is not a zombie.
pub fn inspect(pid: u32) -> Option<ProcessInfo> {
    let pid = Pid::from_u32(pid);
    system(ProcessesToUpdate::Some(&[pid])).process(pid).and_then(describe)
}

/// Exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    inspect(pid).is_some()
}

/// Every live process `identity` matches, except this one.
pub fn find(identity: &Identity<'_>) -> Vec<ProcessInfo> {
    let me = std::process::id();
    let system = system(ProcessesToUpdate::All);
    let mut found: Vec<ProcessInfo> =
        system.processes().values().filter_map(describe).filter(|p| p.pid != me && identity.matches(p)).collect();
    found.sort_by_key(|p| p.pid);
    found
}

/// `pid` is alive and still the process `identity` describes (PIDs are reused).
pub fn is(pid: u32, identity: &Identity<'_>) -> bool {
    inspect(pid).is_some_and(|p| identity.matches(&p))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Terminate,
    Kill,
    /// SIGUSR1: "look now" for the daemon.
    Nudge,
}

impl Signal {
    fn number(self) -> libc::c_int {
        match self {
            Signal::Terminate => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
            Signal::Nudge => libc::SIGUSR1,
        }
    }
}

/// Sends `signal` to `pid` if it is still the process `identity` describes; whether it was sent.
pub fn signal(pid: u32, identity: &Identity<'_>, signal: Signal) -> bool {
    if !is(pid, identity) {
        return false;
    }
    // SAFETY: plain kill(2) on a PID just verified to be the live process we mean.
    unsafe { libc::kill(pid as libc::pid_t, signal.number()) == 0 }
}

/// Waits until none of `pids` is the process `identity` describes; false on timeout.
pub fn wait_gone(pids: &[u32], identity: &Identity<'_>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if still_ours(pids, identity).is_empty() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

fn still_ours(pids: &[u32], identity: &Identity<'_>) -> Vec<u32> {
    let wanted: Vec<Pid> = pids.iter().map(|&p| Pid::from_u32(p)).collect();
    let system = system(ProcessesToUpdate::Some(&wanted));
    pids.iter()
        .copied()
        .filter(|&pid| system.process(Pid::from_u32(pid)).and_then(describe).is_some_and(|p| identity.matches(&p)))
        .collect()
}

/// SIGTERM, `term_grace` to exit, then SIGKILL and `kill_grace`. Each PID is re-checked right
/// before every signal. On failure, the PIDs still alive.
pub fn terminate(pids: &[u32], identity: &Identity<'_>, term_grace: Duration, kill_grace: Duration) -> Result<(), Vec<u32>> {
    for &pid in pids {
        signal(pid, identity, Signal::Terminate);
    }
    if wait_gone(pids, identity, term_grace) {
        return Ok(());
    }
    for &pid in pids {
        signal(pid, identity, Signal::Kill);
    }
    if wait_gone(pids, identity, kill_grace) {
        return Ok(());
    }
    Err(still_ours(pids, identity))
}

#[derive(Debug)]
pub enum DetachedSpawnError {
    Log(io::Error),
    Spawn(io::Error),
}

/// Starts `command` in a new session with stdin from /dev/null and output appended to `log`
/// (never the caller's terminal: a daemon holding it would keep pipes open and die with the
/// terminal). Returns its PID.
pub fn spawn_detached(mut command: Command, log: &Path) -> Result<u32, DetachedSpawnError> {
    let open_log = || {
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new().create(true).append(true).mode(0o600).open(log)
    };
    let stdout = open_log().map_err(DetachedSpawnError::Log)?;
    let stderr = stdout.try_clone().map_err(DetachedSpawnError::Log)?;
    command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe; it detaches from the caller's terminal and process
        // group so Ctrl-C in the caller's shell never reaches the child.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = command.spawn().map_err(DetachedSpawnError::Spawn)?;
    let pid = child.id();
    // Reap the child when it exits, so a long-lived caller (Node, the daemon) never keeps a zombie.
    // A short-lived CLI simply exits and the child is re-parented.
    std::thread::Builder::new()
        .name("botsync-reaper".into())
        .spawn(move || {
            let _ = child.wait();
        })
        .map_err(DetachedSpawnError::Spawn)?;
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_this_process_and_its_parent() {
        let me = inspect(std::process::id()).expect("the test runner is alive");
        assert_eq!(me.parent, Some(std::os::unix::process::parent_id()));
        assert!(me.program_name().is_some_and(|name| !name.is_empty()));
        assert!(std::env::vars().next().map_or(true, |(key, _)| me.has_env(&key)), "environment readable");
    }

    #[test]
    fn a_reaped_child_is_gone_and_a_zombie_is_not_alive() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let marker = Identity::by_arg("30");
        assert!(is(pid, &marker) && !is(pid, &Identity::by_arg("31")));
        assert!(find(&Identity { arg: "30", program: Some("sleep") }).iter().any(|p| p.pid == pid), "found by argument and program");
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        // Not reaped yet: a zombie, which must not count as alive.
        assert!(wait_gone(&[pid], &marker, Duration::from_secs(5)), "a zombie counts as gone");
        child.wait().unwrap();
        assert!(!alive(pid));
    }

    #[test]
    fn terminate_escalates_to_kill_for_a_process_that_ignores_term() {
        let child = Command::new("sh").args(["-c", "trap '' TERM; while :; do sleep 0.05; done", "botsync-term-test"]).spawn().unwrap();
        let pid = child.id();
        let marker = Identity::by_arg("botsync-term-test");
        std::thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        assert_eq!(terminate(&[pid], &marker, Duration::from_millis(300), Duration::from_secs(5)), Ok(()));
        assert!(started.elapsed() >= Duration::from_millis(300), "TERM was ignored, KILL ended it");
        drop(child);
    }
}
