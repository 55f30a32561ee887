//! `botsync doctor`: checks the installation and the root, each with a fix hint. Talks to nothing
//! but the root's own Syncthing on loopback.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::Serialize;

use super::{Report, RootOptions};
use crate::engine::config_xml::ConfigXml;
use crate::engine::{self, ports, BinaryLocator, Engine, RunState};
use crate::error::{exit, Result};
use crate::root::{SharedFolder, SyncRoot};

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    /// True when every check passed.
    pub ok: bool,
    pub root: String,
    pub checks: Vec<DoctorCheck>,
}

#[cfg_attr(feature = "node", napi_derive::napi(object))]
#[derive(Debug, Clone, Serialize)]
pub struct DoctorCheck {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    /// How to fix it, when the check failed.
    pub hint: Option<String>,
}

fn pass(name: &str, detail: impl Into<String>) -> DoctorCheck {
    DoctorCheck { name: name.into(), ok: true, detail: detail.into(), hint: None }
}

fn fail(name: &str, detail: impl Into<String>, hint: impl Into<String>) -> DoctorCheck {
    DoctorCheck { name: name.into(), ok: false, detail: detail.into(), hint: Some(hint.into()) }
}

pub async fn run(options: &RootOptions) -> Result<DoctorReport> {
    let root = options.locate()?;
    let mut checks = vec![check_root(&root)];
    let engine = match Engine::open(&root) {
        Ok(Some(engine)) => {
            checks.push(pass("initialized", format!("{} is a botsync root", root.display())));
            Some(engine)
        }
        Ok(None) => {
            checks.push(fail("initialized", format!("{} is not a botsync root yet", root.display()), "run `botsync init` (or `botsync join <code>`)"));
            None
        }
        Err(e) => {
            checks.push(fail("initialized", e.to_string(), "restore .botsync/config.json from a backup, or move .botsync away and run `botsync init` (a new identity)"));
            None
        }
    };
    checks.push(check_binary(engine.as_ref()).await);
    if let Some(engine) = &engine {
        checks.extend(check_engine(engine).await);
    }
    let ok = checks.iter().all(|c| c.ok);
    Ok(DoctorReport { ok, root: root.path().display().to_string(), checks })
}

fn check_root(root: &SyncRoot) -> DoctorCheck {
    let path = root.path();
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_dir() => fail("root", format!("{} is not a directory", path.display()), "choose another --root"),
        Ok(_) => match engine::probe_writable(path) {
            Ok(()) => pass("root", format!("{} is a writable directory", path.display())),
            Err(e) => fail("root", e.to_string(), "fix its permissions or choose another --root"),
        },
        Err(_) => pass("root", format!("{} does not exist yet; `botsync init` creates it", path.display())),
    }
}

async fn check_binary(engine: Option<&Engine>) -> DoctorCheck {
    let locator = BinaryLocator { allow_download: false, ..BinaryLocator::from_env() };
    let found = match engine {
        Some(engine) => locator.resolve(Some(&engine.state().syncthing)).await.map(Some),
        None => locator.find_installed().map(|(found, _)| found),
    };
    match found {
        Ok(Some(binary)) => pass("syncthing", format!("Syncthing {} at {}", binary.version, binary.path.display())),
        Ok(None) => fail(
            "syncthing",
            "no Syncthing installed",
            "`botsync init` downloads one; or install it with your package manager, or set BOTSYNC_SYNCTHING",
        ),
        Err(e) => fail("syncthing", e.to_string(), "install Syncthing 1.19 or newer with your package manager, or set BOTSYNC_SYNCTHING to one"),
    }
}

async fn check_engine(engine: &Engine) -> Vec<DoctorCheck> {
    let state = engine.state();
    let home = engine.home();
    let mut checks = Vec::new();

    checks.push(match engine::device_id_from_cert(&home.join("cert.pem")) {
        Ok(id) if id == state.device_id && home.join("key.pem").is_file() => pass("identity", format!("device {id}")),
        Ok(id) => fail("identity", format!("certificate is device {id}, config.json records {}", state.device_id), "restore .botsync from a backup"),
        Err(e) => fail("identity", e.to_string(), "restore .botsync/syncthing from a backup, or move .botsync away and run `botsync init` (a new identity)"),
    });

    checks.push(match ConfigXml::load(&home.join("config.xml")) {
        Ok(xml) => check_config(&xml, engine),
        Err(e) => fail("configuration", e.to_string(), "restore .botsync/syncthing/config.xml from a backup"),
    });

    let missing: Vec<String> = SharedFolder::ALL
        .into_iter()
        .filter(|f| !engine.root().folder_dir(*f).join(".stfolder").is_dir())
        .map(|f| f.dir_name().to_string())
        .collect();
    checks.push(if missing.is_empty() {
        pass("folders", "shared/, deliverables/ and inbox/ exist with their Syncthing markers")
    } else {
        fail("folders", format!("missing or without .stfolder marker: {}", missing.join(", ")), "run `botsync init` again to recreate them (identity is kept)")
    });

    checks.push(check_private_files(engine));

    let run_state = engine.probe().await;
    checks.push(match run_state {
        RunState::Running => pass("engine", "Syncthing is running and answers its API"),
        RunState::Restarting => fail("engine", "Syncthing's monitor runs but the API does not answer yet", "wait a few seconds; if it persists, see .botsync/syncthing.log and run `botsync stop` then `botsync start`"),
        RunState::Stopped => fail("engine", "Syncthing is not running", "run `botsync start`"),
    });

    if run_state == RunState::Running {
        checks.push(pass("api port", format!("127.0.0.1:{} answers with this root's key", state.gui_port)));
        checks.extend(check_live(engine).await);
    } else {
        checks.push(if ports::loopback_tcp_free(state.gui_port) {
            pass("api port", format!("127.0.0.1:{} is free for Syncthing", state.gui_port))
        } else {
            fail("api port", format!("another program listens on 127.0.0.1:{}", state.gui_port), "stop that program, then `botsync start`")
        });
        checks.push(if ports::sync_port_free(state.listen_port, state.network.uses_udp()) {
            pass("sync port", format!("port {} is free for Syncthing", state.listen_port))
        } else {
            fail("sync port", format!("another program uses port {}", state.listen_port), "stop that program, then `botsync start`")
        });
    }
    checks
}

fn check_config(xml: &ConfigXml, engine: &Engine) -> DoctorCheck {
    let state = engine.state();
    let mut problems = Vec::new();
    if xml.gui_address().as_deref() != Some(format!("127.0.0.1:{}", state.gui_port).as_str()) {
        problems.push(format!("GUI address is {:?}", xml.gui_address()));
    }
    let ids = xml.folder_ids();
    for folder in SharedFolder::ALL {
        if !ids.iter().any(|id| id == folder.folder_id()) {
            problems.push(format!("folder {} missing", folder.folder_id()));
        }
    }
    let expected = state.network.options(state.listen_port);
    for (name, on) in expected.flags() {
        if xml.option(name).first().map(String::as_str) != Some(if on { "true" } else { "false" }) {
            problems.push(format!("{name} does not match the {} profile", state.network));
        }
    }
    if problems.is_empty() {
        DoctorCheck {
            name: "configuration".into(),
            ok: true,
            detail: format!("network {}, API on 127.0.0.1:{}, sync port {}", state.network, state.gui_port, state.listen_port),
            hint: None,
        }
    } else {
        fail("configuration", problems.join("; "), format!("run `botsync init --network {}` to re-apply the profile", state.network))
    }
}

fn check_private_files(engine: &Engine) -> DoctorCheck {
    let root = engine.root();
    let home = engine.home();
    let files = [root.config_file(), home.join("config.xml"), home.join("key.pem")];
    let mut loose = Vec::new();
    for file in &files {
        if mode(file).is_some_and(|m| m & 0o077 != 0) {
            loose.push(file.display().to_string());
        }
    }
    if mode(&root.state_dir()).is_some_and(|m| m & 0o077 != 0) {
        loose.push(root.state_dir().display().to_string());
    }
    if loose.is_empty() {
        pass("private state", "keys and configuration are readable by you only")
    } else {
        fail("private state", format!("readable by others: {}", loose.join(", ")), "chmod 600 those files (700 for .botsync)")
    }
}

fn mode(path: &Path) -> Option<u32> {
    std::fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o777)
}

async fn check_live(engine: &Engine) -> Vec<DoctorCheck> {
    let rest = engine.rest();
    let mut checks = Vec::new();
    match rest.system_status().await {
        Ok(status) => {
            let errors: Vec<String> = status
                .connection_service_status
                .iter()
                .filter(|(address, listener)| address.contains(&format!(":{}", engine.listen_port())) && listener.error.is_some())
                .map(|(address, listener)| format!("{address}: {}", listener.error.clone().unwrap_or_default()))
                .collect();
            checks.push(if errors.is_empty() {
                pass("sync port", format!("Syncthing listens on port {}", engine.listen_port()))
            } else {
                fail("sync port", errors.join("; "), "another program holds the port: stop it, then `botsync stop` and `botsync start`")
            });
        }
        Err(e) => checks.push(fail("sync port", e.to_string(), "see .botsync/syncthing.log")),
    }
    let mut broken = Vec::new();
    for folder in SharedFolder::ALL {
        match rest.db_status(folder.folder_id()).await {
            Ok(db) if db.state == "error" => broken.push(format!("{}: {}", folder.dir_name(), db.error.unwrap_or_default())),
            Ok(_) => {}
            Err(e) => broken.push(format!("{}: {e}", folder.dir_name())),
        }
    }
    checks.push(if broken.is_empty() {
        pass("folder health", "no folder reports an error")
    } else {
        fail("folder health", broken.join("; "), "see .botsync/syncthing.log; a missing folder is recreated by `botsync init`")
    });
    checks
}

impl Report for DoctorReport {
    fn human(&self) -> String {
        let mut out = String::new();
        for check in &self.checks {
            let mark = if check.ok { "ok  " } else { "FAIL" };
            out.push_str(&format!("{mark} {:<14} {}\n", check.name, check.detail));
            if let Some(hint) = &check.hint {
                out.push_str(&format!("     {:<14} fix: {hint}\n", ""));
            }
        }
        let failed = self.checks.iter().filter(|c| !c.ok).count();
        if failed == 0 {
            out.push_str("All checks passed.");
        } else {
            out.push_str(&format!("{failed} check(s) failed."));
        }
        out
    }

    fn exit_status(&self) -> i32 {
        if self.ok {
            exit::OK
        } else {
            exit::FAILURE
        }
    }
}
