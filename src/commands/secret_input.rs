//! Secrets that must not travel in argv: any local user can read a process's arguments (`ps`),
//! so a pairing code given as `botsync join <code>` can be read by anyone on the machine while the
//! join runs. Agents (and careful people) pass it on stdin (`botsync join -`) or in
//! `BOTSYNC_CODE`, and the relay's Redis URL (which carries its password) in
//! `BOTSYNC_RELAY_REDIS`. The environment of a process is readable only by its own user.

use std::io::Read;

use crate::error::{Error, Result};

/// The pairing code, when `join` is given none on the command line.
pub const CODE_ENV: &str = "BOTSYNC_CODE";
/// The Redis URL of `botsync relay`, when `--redis` is not given.
pub const RELAY_REDIS_ENV: &str = "BOTSYNC_RELAY_REDIS";
/// Variables holding secrets botsync read: never handed on to the processes it starts.
pub const SECRET_ENV_VARS: [&str; 2] = [CODE_ENV, RELAY_REDIS_ENV];
/// A code is five words or an offline code of ~100 characters; anything longer is not one.
const MAX_CODE_BYTES: usize = 4096;

/// The code `join` was given: its words on the command line, `-` for one line on stdin, or
/// nothing for `$BOTSYNC_CODE`. Refuses, before anything else happens, when there is none.
pub fn join_code(args: &[String]) -> Result<String> {
    match args {
        [dash] if dash == "-" => {
            let line = read_first_line(std::io::stdin().lock())
                .map_err(|e| Error::Usage(format!("cannot read the code from stdin: {e}")))?;
            let code = line.trim();
            if code.is_empty() {
                return Err(Error::Usage("`botsync join -` read no code on stdin: pipe it in, e.g. `printf '%s\\n' \"$CODE\" | botsync join -`".into()));
            }
            Ok(code.to_string())
        }
        [] => match std::env::var(CODE_ENV) {
            Ok(code) if !code.trim().is_empty() => Ok(code.trim().to_string()),
            _ => Err(Error::Usage(format!(
                "no code: run `botsync join <code>`, pipe it into `botsync join -`, or set {CODE_ENV}"
            ))),
        },
        words => Ok(words.join(" ")),
    }
}

/// The first line of `input` (up to a newline or the end), so a person can type the code at a
/// terminal and press Enter, and a pipe works as well.
fn read_first_line(mut input: impl Read) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while bytes.len() <= MAX_CODE_BYTES {
        match input.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => bytes.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // Node may leave fd 0 non-blocking; wait for input rather than fail.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(e) => return Err(e),
        }
    }
    if bytes.len() > MAX_CODE_BYTES {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "the first line is far longer than any code"));
    }
    String::from_utf8(bytes).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "the code is not UTF-8"))
}

/// `--redis`, else `$BOTSYNC_RELAY_REDIS`.
pub fn relay_redis_url(explicit: Option<&str>) -> Option<String> {
    explicit.map(str::to_string).or_else(|| std::env::var(RELAY_REDIS_ENV).ok().filter(|v| !v.trim().is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_is_the_code() {
        assert_eq!(read_first_line(&b"alpha-beta\nrest"[..]).unwrap(), "alpha-beta");
        assert_eq!(read_first_line(&b"no newline"[..]).unwrap(), "no newline");
        assert_eq!(read_first_line(&b""[..]).unwrap(), "");
        assert!(read_first_line(&vec![b'a'; MAX_CODE_BYTES + 10][..]).is_err());
    }

    #[test]
    fn no_process_botsync_starts_inherits_these_secrets() {
        let mut ours = SECRET_ENV_VARS.to_vec();
        let mut removed = crate::engine::process::NEVER_INHERITED.to_vec();
        ours.sort();
        removed.sort();
        assert_eq!(ours, removed);
    }

    #[test]
    fn words_on_the_command_line_are_used_as_given() {
        assert_eq!(join_code(&["a-b".into(), "c".into()]).unwrap(), "a-b c");
    }
}
