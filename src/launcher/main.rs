//! `botsync-daemon` as the npm package ships it (installed under that name by
//! `scripts/build-daemon.sh --launcher`). The daemon's code is already in the addon
//! (`botsync.<platform>.node`, a shared library), so instead of a second, separately linked copy
//! of the whole crate (which doubled the release build: two fat-LTO links of the same code, one
//! after the other), this program `dlopen`s the addon that sits next to it and calls its
//! `botsync_daemon_main` export. The process keeps this executable's name, which is how the CLI
//! recognizes its daemon. The addon makes no N-API call on that path, so no Node runtime is
//! needed.

use std::ffi::{CStr, CString};
use std::os::raw::c_int;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const ENTRY: &CStr = c"botsync_daemon_main";

fn main() {
    match launch() {
        Ok(code) => std::process::exit(code),
        Err(message) => {
            eprintln!("botsync-daemon: {message}");
            std::process::exit(1);
        }
    }
}

fn launch() -> Result<c_int, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find its own executable: {e}"))?;
    let dir = exe.parent().ok_or_else(|| format!("{} has no parent directory", exe.display()))?;
    let addon = addon_in(dir)?;
    let path = CString::new(addon.as_os_str().as_bytes()).map_err(|_| format!("{} contains a NUL byte", addon.display()))?;
    // SAFETY: dlopen/dlsym/dlerror are called with NUL-terminated strings that outlive the calls;
    // the symbol is the addon's `extern "C" fn() -> c_int` (src/node.rs), called once, and the
    // library is never unloaded.
    unsafe {
        let handle = libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        if handle.is_null() {
            return Err(format!("cannot load {}: {}; reinstall botsync", addon.display(), last_dl_error()));
        }
        let symbol = libc::dlsym(handle, ENTRY.as_ptr());
        if symbol.is_null() {
            return Err(format!(
                "{} has no daemon entry ({}): the addon and this launcher come from different builds; reinstall botsync",
                addon.display(),
                last_dl_error()
            ));
        }
        let entry: extern "C" fn() -> c_int = std::mem::transmute(symbol);
        Ok(entry())
    }
}

/// The one `botsync.*.node` in `dir` (the platform package, or the package root after a build).
fn addon_in(dir: &Path) -> Result<PathBuf, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("botsync.") && n.ends_with(".node")))
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(format!("the addon (botsync.<platform>.node) is missing next to it in {}; reinstall botsync", dir.display())),
        _ => Err(format!(
            "more than one addon next to it in {} ({}); keep the one for this platform",
            dir.display(),
            found.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect::<Vec<_>>().join(", ")
        )),
    }
}

fn last_dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string valid until the next dl* call.
    let message = unsafe { libc::dlerror() };
    if message.is_null() {
        "unknown error".into()
    } else {
        unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned()
    }
}
