//! Lock files: an exclusive `flock(2)` held for as long as the `LockFile` lives, released by the
//! OS however the holder ends (crash, SIGKILL). `flock` locks belong to the open file, not the
//! process, so other code opening and closing the same path (to read the holder) never drops the
//! lock, unlike `fcntl` record locks.
//!
//! A holder that others need to find (`try_acquire_as_holder`) writes its PID into the file once
//! it holds the lock; the other constructors write nothing (a lock taken changes no mtime). Only holders write, so a PID
//! read from the file is the last holder: if that process is still alive and still the process
//! the caller expects (see `process::Identity`), it still holds the lock. That answers "who holds
//! it?" on every Unix without `/proc/locks`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(10);

/// An exclusive lock on a file, held until dropped.
#[derive(Debug)]
pub struct LockFile {
    _file: File,
    path: PathBuf,
}

impl LockFile {
    /// Takes the lock if nobody holds it; `Ok(None)` if someone does. Writes nothing.
    pub fn try_acquire(path: &Path) -> io::Result<Option<LockFile>> {
        let file = open(path)?;
        Ok(try_flock(&file)?.then(|| LockFile { _file: file, path: path.to_owned() }))
    }

    /// `try_acquire`, then records our PID in the file for `recorded_holder`.
    pub fn try_acquire_as_holder(path: &Path) -> io::Result<Option<LockFile>> {
        let Some(mut lock) = LockFile::try_acquire(path)? else {
            return Ok(None);
        };
        lock._file.set_len(0)?;
        lock._file.write_all(std::process::id().to_string().as_bytes())?;
        Ok(Some(lock))
    }

    /// Takes the lock, blocking until the holder lets go: for short critical sections (a file
    /// read and write) in synchronous code. Writes nothing.
    pub fn acquire_blocking(path: &Path) -> io::Result<LockFile> {
        let file = open(path)?;
        loop {
            // SAFETY: flock on a descriptor we own; the lock lives as long as the open file.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(LockFile { _file: file, path: path.to_owned() });
            }
            let error = io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::EINTR) {
                return Err(error);
            }
        }
    }

    /// Takes the lock, waiting up to `timeout` for the holder to let go; `Ok(None)` on timeout.
    /// Polls rather than blocking in `flock`, so an async caller is never parked in a syscall.
    /// Writes nothing.
    pub async fn acquire(path: &Path, timeout: Duration) -> io::Result<Option<LockFile>> {
        let file = open(path)?;
        Ok(wait_for_flock(&file, timeout).await?.then(|| LockFile { _file: file, path: path.to_owned() }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

}

/// An exclusive lock on a directory itself (`flock` on its descriptor, Linux and macOS alike):
/// for serializing work inside a directory without leaving a lock file in it.
#[derive(Debug)]
pub struct DirLock {
    _dir: File,
}

impl DirLock {
    /// Waits up to `timeout` for the lock; `Ok(None)` on timeout.
    pub async fn acquire(dir: &Path, timeout: Duration) -> io::Result<Option<DirLock>> {
        let handle = File::open(dir)?;
        Ok(wait_for_flock(&handle, timeout).await?.then_some(DirLock { _dir: handle }))
    }
}

fn open(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().create(true).truncate(false).read(true).write(true).mode(0o600).open(path)
}

/// Polls `try_flock` until it succeeds (true) or `timeout` passes (false).
async fn wait_for_flock(file: &File, timeout: Duration) -> io::Result<bool> {
    let started = Instant::now();
    while !try_flock(file)? {
        if started.elapsed() > timeout {
            return Ok(false);
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(true)
}

fn try_flock(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor we own; the lock lives as long as the open file.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        Some(code) if code == libc::EWOULDBLOCK || code == libc::EINTR => Ok(false),
        _ => Err(error),
    }
}

/// The PID the last holder of the lock at `path` recorded, if any. The caller confirms it is
/// still the process it expects before trusting it (see the module docs).
pub fn recorded_holder(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok().filter(|&pid| pid != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_the_holder_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = LockFile::try_acquire_as_holder(&path).unwrap().expect("free");
        assert!(LockFile::try_acquire(&path).unwrap().is_none(), "a second open file cannot take it");
        assert_eq!(recorded_holder(&path), Some(std::process::id()));
        // Reading the holder (open + close of the same path) does not release it.
        assert!(LockFile::try_acquire(&path).unwrap().is_none());
        drop(held);
        assert!(LockFile::try_acquire(&path).unwrap().is_some(), "released on drop");
    }

    #[test]
    fn a_directory_lock_excludes_a_second_holder_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let held = runtime.block_on(DirLock::acquire(dir.path(), Duration::from_secs(1))).unwrap().expect("free");
        assert!(runtime.block_on(DirLock::acquire(dir.path(), Duration::from_millis(50))).unwrap().is_none(), "held");
        drop(held);
        assert!(runtime.block_on(DirLock::acquire(dir.path(), Duration::from_millis(50))).unwrap().is_some(), "released");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written into the directory");
    }

    #[test]
    fn a_killed_holder_releases_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        // The shell locks fd 9 (through flock(1)) and becomes `sleep`, which keeps it; SIGKILL
        // then ends the holder without any cleanup of its own.
        let script = format!("exec 9>>'{}' && flock -x 9 && exec sleep 30", path.display());
        let mut child = std::process::Command::new("sh").args(["-c", &script]).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while LockFile::try_acquire(&path).unwrap().is_some() {
            assert!(Instant::now() < deadline, "flock(1) never took the lock");
            std::thread::sleep(POLL);
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if LockFile::try_acquire(&path).unwrap().is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "the OS released the dead holder's lock");
            std::thread::sleep(POLL);
        }
    }
}
