//! Another local user against a running pair: a user created for the test (`useradd`, then
//! `setpriv` to drop to it) tries Syncthing's GUI/REST with and without the CSRF cookie, watches
//! every process's command line while machines join with an offline code (on stdin and in
//! `BOTSYNC_CODE`), reads the processes' environments and the state files. It gets nothing.
//! Each refusal is checked against a control that shows the same request works for botsync
//! itself, so a test of the wrong port or path cannot pass.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use botsync::engine::config_xml::ConfigXml;
use botsync::engine::Engine;
use crate::support::{block_on, isolated, root_at};
use crate::support::reliability::*;
use serde_json::{json, Value};

const INTRUDER_ENV: &str = "BOTSYNC_TEST_INTRUDER";

/// What the intruder does, run as the other user by `as_intruder`; it prints one `INTRUDER {json}` line.
#[test]
#[ignore = "entry point for the other local user's child process, not a test"]
fn intruder_entry() {
    let Some(task) = std::env::var_os(INTRUDER_ENV) else { return };
    let task: Value = serde_json::from_str(task.to_str().unwrap()).unwrap();
    let report = match task["mode"].as_str().unwrap() {
        "http" => intrude_http(task["port"].as_u64().unwrap() as u16),
        "files" => intrude_files(&task),
        "watch" => watch_command_lines(Path::new(task["stop"].as_str().unwrap())),
        other => panic!("unknown mode {other}"),
    };
    println!("INTRUDER {report}");
    std::process::exit(0);
}

/// One HTTP/1.1 request on a fresh connection: (status, Set-Cookie values); status 0 when
/// nothing answered.
fn http(port: u16, method: &str, path: &str, headers: &[(String, String)], body: &str) -> (u16, Vec<String>) {
    use std::io::Read;
    // 0: nobody answered (the GUI restarts its listener after a change of its own settings).
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return (0, Vec::new()) };
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let cookies = text
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.strip_prefix("Set-Cookie: ").or_else(|| l.strip_prefix("set-cookie: ")))
        .map(|c| c.split(';').next().unwrap_or("").to_string())
        .collect();
    (status, cookies)
}

/// Whether the CSRF-cookie route reaches `/rest/*`: `GET /`, then a REST call carrying the cookie
/// and its header, as Syncthing's own GUI does. True on a GUI without a login.
fn csrf_route_works(port: u16) -> bool {
    let (_, cookies) = http(port, "GET", "/", &[], "");
    let Some((name, value)) = cookies.iter().find(|c| c.starts_with("CSRF-Token-")).and_then(|c| c.split_once('=')) else { return false };
    let headers = vec![(format!("X-{name}"), value.to_string()), ("Cookie".to_string(), format!("{name}={value}"))];
    http(port, "GET", "/rest/system/ping", &headers, "").0 == 200
}

/// The requests a local attacker would make: read the config, add a device, browse and read a
/// folder, each without credentials, with the CSRF cookie `GET /` hands out, and with a guessed login.
fn attack_requests() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        ("GET", "/rest/system/config", ""),
        ("GET", "/rest/config/devices", ""),
        ("POST", "/rest/config/devices", r#"{"deviceID":"MFZWI3D-BONSGYC-YLTMRWG-C43ENR5-QXGZDMM-FZWI3DP-BONSGYY-LTMRWAD","name":"intruder"}"#),
        ("GET", "/rest/db/browse?folder=botsync-shared", ""),
        ("GET", "/rest/db/file?folder=botsync-shared&file=secret.txt", ""),
        ("POST", "/rest/system/shutdown", ""),
    ]
}

fn intrude_http(port: u16) -> Value {
    let (root_status, cookies) = http(port, "GET", "/", &[], "");
    let csrf: Vec<(String, String)> = cookies
        .iter()
        .filter(|c| c.starts_with("CSRF-Token-"))
        .filter_map(|c| {
            let (name, value) = c.split_once('=')?;
            Some((format!("X-{name}"), value.to_string()))
        })
        .collect();
    let mut with_cookie = csrf.clone();
    with_cookie.extend(cookies.iter().map(|c| ("Cookie".to_string(), c.clone())));
    let basic = vec![("Authorization".to_string(), format!("Basic {}", data_encoding::BASE64.encode(b"admin:admin")))];
    let mut results = Vec::new();
    for (method, path, body) in attack_requests() {
        for (how, headers) in [("no credentials", &vec![]), ("CSRF cookie", &with_cookie), ("guessed login", &basic)] {
            let (status, _) = http(port, method, path, headers, body);
            results.push(json!({ "request": format!("{method} {path}"), "how": how, "status": status }));
        }
    }
    json!({ "root_status": root_status, "csrf_cookies": csrf.len(), "results": results })
}

/// Tries every path given (and, for directories, everything it can list under them).
fn intrude_files(task: &Value) -> Value {
    let mut opened = Vec::new();
    let mut refused = 0;
    let mut queue: Vec<PathBuf> = task["paths"].as_array().unwrap().iter().map(|p| PathBuf::from(p.as_str().unwrap())).collect();
    while let Some(path) = queue.pop() {
        match std::fs::read_dir(&path) {
            Ok(entries) => {
                opened.push(format!("listed {}", path.display()));
                queue.extend(entries.flatten().map(|e| e.path()));
                continue;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {}
            Err(_) => {}
        }
        match std::fs::read(&path) {
            Ok(_) => opened.push(format!("read {}", path.display())),
            Err(_) => refused += 1,
        }
    }
    json!({ "opened": opened, "refused": refused })
}

/// Reads every process's command line every few milliseconds until `stop` exists; prints each
/// distinct one.
fn watch_command_lines(stop: &Path) -> Value {
    let mut seen = BTreeSet::new();
    let mut rounds = 0u64;
    while !stop.exists() {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            if entry.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())) {
                if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
                    seen.insert(String::from_utf8_lossy(&raw).replace('\0', " "));
                }
            }
        }
        rounds += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    json!({ "rounds": rounds, "command_lines": seen.into_iter().collect::<Vec<_>>() })
}

/// A throwaway user for the test, removed when dropped.
struct OtherUser {
    name: String,
    uid: u32,
    gid: u32,
    /// Its copy of this test binary, removed with the user.
    exe: PathBuf,
}

impl OtherUser {
    fn create() -> OtherUser {
        let name = format!("bsintr{}", std::process::id() % 1_000_000);
        let status = Command::new("useradd").args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", &name]).status().unwrap();
        assert!(status.success(), "useradd {name}");
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        assert_ne!(uid, 0);
        OtherUser { name, uid, gid, exe: intruder_exe() }
    }

    /// This test binary run as the other user (no supplementary groups, no capabilities).
    fn command(&self, task: &Value) -> Command {
        let mut command = Command::new("setpriv");
        command
            .args([format!("--reuid={}", self.uid), format!("--regid={}", self.gid), "--clear-groups".into(), "--".into()])
            .arg(&self.exe)
            .args(["--include-ignored", "--exact", &test_path!("intruder_entry"), "--nocapture", "--test-threads=1"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env(INTRUDER_ENV, task.to_string())
            .stdin(Stdio::null());
        command
    }

    fn run(&self, task: Value) -> Value {
        let output = self.command(&task).output().unwrap();
        intruder_report(&output.stdout, &output.stderr)
    }
}

impl Drop for OtherUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
        let _ = std::fs::remove_file(&self.exe);
    }
}

fn intruder_report(stdout: &[u8], stderr: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text.lines().find_map(|l| l.find("INTRUDER ").map(|at| &l[at + 9..]));
    serde_json::from_str(line.unwrap_or_else(|| panic!("the intruder reported nothing:\n{text}\n{}", String::from_utf8_lossy(stderr)))).unwrap()
}

/// A copy of this test binary the other user can run (the build tree may not be open to it).
fn intruder_exe() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let copy = std::env::temp_dir().join(format!("botsync-intruder-{}", std::process::id()));
    if !copy.exists() {
        std::fs::copy(std::env::current_exe().unwrap(), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    copy
}

fn open_to_everyone(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn engine(root: &Path) -> Engine {
    Engine::load(&root_at(root.to_owned())).unwrap()
}

/// Syncthing and daemon PIDs of a root.
fn pids_of(root: &Path) -> Vec<u32> {
    processes_of(root)
}

#[test]
fn another_local_user_gets_nothing_from_the_gui_the_state_files_or_argv() {
    isolated(test_path!("another_local_user_gets_nothing_from_the_gui_the_state_files_or_argv"), |scratch| {
        use_daemon_bin();
        let intruder = OtherUser::create();
        // Only botsync's own modes stand between the intruder and the state: the scratch
        // directory and the roots are open to everyone, as a home directory often is.
        open_to_everyone(scratch);
        let (a, b, c) = (scratch.join("a"), scratch.join("b"), scratch.join("c"));
        let _guards = (RootGuard::new(&a), RootGuard::new(&b), RootGuard::new(&c));
        let a_arg = a.display().to_string();

        let init = cli(None, &["--json", "--root", &a_arg, "init", "--network", "direct", "--offline"]);
        assert_eq!(init.status, 0, "{init:?}");
        open_to_everyone(&a);
        let first_code = init.json["invite"]["code"].as_str().unwrap().to_string();
        let invite = cli(None, &["--json", "--root", &a_arg, "invite", "--offline"]);
        assert_eq!(invite.status, 0, "{invite:?}");
        let second_code = invite.json["code"].as_str().unwrap().to_string();

        // The intruder watches every command line while B joins with the code on stdin and C
        // with it in BOTSYNC_CODE.
        let stop = scratch.join("stop-watching");
        let watcher = intruder.command(&json!({ "mode": "watch", "stop": stop })).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let b_arg = b.display().to_string();
        let mut join_b = cli_command(None, &["--json", "--root", &b_arg, "join", "-", "--network", "direct"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        join_b.stdin.take().unwrap().write_all(format!("{first_code}\n").as_bytes()).unwrap();
        let join_b = CliRun::from_output(join_b.wait_with_output().unwrap());
        assert_eq!(join_b.status, 0, "join - : {join_b:?}");
        let c_arg = c.display().to_string();
        let join_c = CliRun::from_output(
            cli_command(None, &["--json", "--root", &c_arg, "join", "--network", "direct"]).env("BOTSYNC_CODE", &second_code).output().unwrap(),
        );
        assert_eq!(join_c.status, 0, "BOTSYNC_CODE join: {join_c:?}");
        std::fs::write(&stop, b"").unwrap();
        let watched = watcher.wait_with_output().unwrap();
        let watched = intruder_report(&watched.stdout, &watched.stderr);
        let lines: Vec<&str> = watched["command_lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
        assert!(lines.iter().any(|l| l.contains("cli_entry")), "the intruder saw the join processes start: {lines:#?}");
        assert!(lines.iter().any(|l| l.contains("serve") && l.contains(&b_arg)), "and B's Syncthing: {lines:#?}");

        let mut secrets = vec![("first code", first_code.clone()), ("second code", second_code.clone())];
        for code in [&first_code, &second_code] {
            // Any 16 characters of the code's secret part would be a leak too.
            secrets.push(("part of a code", code[code.len() - 16..].to_string()));
        }
        for root in [&a, &b, &c] {
            secrets.push(("an API key", engine(root).state().api_key.expose().to_string()));
        }
        for line in &lines {
            for (what, secret) in &secrets {
                assert!(!line.contains(secret.as_str()), "{what} in a command line the other user read: {line}");
            }
        }

        // The GUI/REST: a login is set, and neither the CSRF route nor a guess gets through.
        let xml = ConfigXml::load(&a.join(".botsync/syncthing/config.xml")).unwrap();
        assert!(xml.has_gui_login(), "config.xml has a GUI user and password");
        let text = std::fs::read_to_string(a.join(".botsync/syncthing/config.xml")).unwrap();
        assert!(text.contains("<password>$2a$"), "the password is a bcrypt hash");
        std::fs::write(a.join("shared/secret.txt"), b"for members only").unwrap();
        let port = engine(&a).gui_port();
        let attempts = intruder.run(json!({ "mode": "http", "port": port }));
        let results = attempts["results"].as_array().unwrap();
        assert_eq!(results.len(), attack_requests().len() * 3);
        for result in results {
            let status = result["status"].as_u64().unwrap();
            assert!(status == 401 || status == 403, "the other user got {status} for {result}");
        }
        // Syncthing 1.19 answers `GET /` with 401 and no cookie; newer ones serve their login page
        // (and a CSRF cookie) there. Either way the cookie opened nothing above.
        assert!(matches!(attempts["root_status"].as_u64(), Some(200 | 401 | 403)), "{attempts}");
        // Control: botsync's own key reaches the same endpoints.
        let key = vec![("X-API-Key".to_string(), engine(&a).state().api_key.expose().to_string())];
        for (method, path, _) in attack_requests().into_iter().filter(|(m, _, _)| *m == "GET") {
            wait_until(Duration::from_secs(20), &format!("botsync's key works for {method} {path}"), || http(port, method, path, &key, "").0 == 200);
        }
        assert!(engine(&a).configured_peers().unwrap().iter().all(|(_, name, _)| name != "intruder"), "no device was added");

        // Files: the state directory, every file botsync and Syncthing keep in it, and the
        // processes' environments (where Syncthing's API key travels).
        let mut paths: Vec<PathBuf> = Vec::new();
        for root in [&a, &b] {
            let state = root.join(".botsync");
            paths.push(state.clone());
            for file in ["config.json", "notifications.json", "daemon.pid", "syncthing.pid", "daemon.log", "syncthing.log", "syncthing/config.xml", "syncthing/key.pem", "syncthing/https-key.pem"] {
                paths.push(state.join(file));
            }
            for entry in std::fs::read_dir(state.join("invites")).into_iter().flatten().flatten() {
                paths.push(entry.path());
            }
        }
        let mut pids = pids_of(&a);
        pids.extend(pids_of(&b));
        assert!(pids.len() >= 4, "Syncthing, its monitor and the daemon of each root: {pids:?}");
        paths.extend(pids.iter().map(|pid| PathBuf::from(format!("/proc/{pid}/environ"))));
        let read = intruder.run(json!({ "mode": "files", "paths": paths }));
        assert_eq!(read["opened"], json!([]), "the other user opened: {read}");
        assert!(read["refused"].as_u64().unwrap() >= paths.len() as u64, "{read}");
        // Control: the same paths exist (root reads them).
        for pid in &pids {
            assert!(std::fs::read(format!("/proc/{pid}/environ")).is_ok());
        }
        assert!(a.join(".botsync/config.json").is_file());
    });
}

#[test]
fn a_root_from_before_the_login_gets_one_at_its_next_start() {
    isolated(test_path!("a_root_from_before_the_login_gets_one_at_its_next_start"), |scratch| {
        use_daemon_bin();
        let a = scratch.join("a");
        let _guard = RootGuard::new(&a);
        let a_arg = a.display().to_string();
        let init = cli(None, &["--json", "--root", &a_arg, "init", "--network", "direct", "--offline"]);
        assert_eq!(init.status, 0, "{init:?}");
        let config = a.join(".botsync/syncthing/config.xml");
        let port = engine(&a).gui_port();

        // Stopped, with the login taken out (as a root made by an older botsync): `start` puts
        // one in before Syncthing serves.
        assert_eq!(cli(None, &["--json", "--root", &a_arg, "stop"]).status, 0);
        let without_login = std::fs::read_to_string(&config)
            .unwrap()
            .lines()
            .filter(|l| !l.contains("<user>") && !l.contains("<password>"))
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&config, without_login).unwrap();
        assert!(!ConfigXml::load(&config).unwrap().has_gui_login());
        assert_eq!(cli(None, &["--json", "--root", &a_arg, "start"]).status, 0);
        assert!(ConfigXml::load(&config).unwrap().has_gui_login());
        assert!(!csrf_route_works(port), "the CSRF route is closed");

        // Running without one (cleared through REST, as an older botsync left it): `start` sets it live.
        block_on(async {
            let rest = engine(&a).rest();
            // An empty user turns the login off (Syncthing keeps a password it is sent empty).
            rest.set_gui_login("", "").await.unwrap();
        });
        // The control: without a login, the CSRF route does reach the REST API.
        wait_until(Duration::from_secs(10), "the GUI is open again", || {
            !ConfigXml::load(&config).unwrap().has_gui_login() && csrf_route_works(port)
        });
        let start = cli(None, &["--json", "--root", &a_arg, "start"]);
        assert_eq!(start.status, 0, "{start:?}");
        assert_eq!(start.json["started"], false, "Syncthing kept running");
        wait_until(Duration::from_secs(10), "the login is live", || {
            ConfigXml::load(&config).unwrap().has_gui_login() && !csrf_route_works(port)
        });
        let key = vec![("X-API-Key".to_string(), engine(&a).state().api_key.expose().to_string())];
        wait_until(Duration::from_secs(10), "the API key keeps working", || http(port, "GET", "/rest/system/ping", &key, "").0 == 200);
        assert!(!csrf_route_works(port), "and the CSRF route stays closed once the GUI is back");
    });
}
