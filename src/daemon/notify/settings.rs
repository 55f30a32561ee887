//! OpenClaw settings: the hooks URL and bearer token. Taken from the environment the first time
//! botsync runs with them and persisted in `<root>/.botsync/notifications.json` (0600), so that
//! the background process, started later without that environment, still knows them. The token
//! never reaches argv or a log line: `HooksToken` does not print itself.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::root::SyncRoot;
use crate::state_file::{self, StateFileError};

use super::NotifyError;

pub const TOKEN_ENV: &str = "OPENCLAW_HOOKS_TOKEN";
pub const URL_ENV: &str = "OPENCLAW_HOOKS_URL";
pub const DEFAULT_HOOKS_URL: &str = "http://127.0.0.1:18789/hooks/agent";

/// The OpenClaw bearer token. Debug shows nothing of it and there is no Display.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HooksToken(String);

impl HooksToken {
    pub fn new(token: impl Into<String>) -> Self {
        HooksToken(token.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for HooksToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HooksToken(<hidden>)")
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifySettings {
    pub url: String,
    pub token: HooksToken,
}

impl std::fmt::Debug for NotifySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifySettings").field("url", &self.redacted_url()).field("token", &self.token).finish()
    }
}

pub fn settings_file(root: &SyncRoot) -> PathBuf {
    root.state_dir().join("notifications.json")
}

impl NotifySettings {
    pub fn new(url: impl Into<String>, token: HooksToken) -> Result<Self, NotifyError> {
        let url = url.into();
        match reqwest::Url::parse(&url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(NotifySettings { url, token }),
            _ => Err(NotifyError::BadHooksUrl(url)),
        }
    }

    /// The URL for messages: the token blanked, should someone have put it in the URL too.
    pub fn redacted_url(&self) -> String {
        if self.token.0.is_empty() {
            self.url.clone()
        } else {
            self.url.replace(&self.token.0, "<token>")
        }
    }

    /// The persisted settings, if notifications were ever enabled for this root.
    pub fn load(root: &SyncRoot) -> Result<Option<Self>, StateFileError> {
        state_file::read_json(&settings_file(root))
    }

    /// Settings from `lookup` (the environment) when it has a token: persisted if they differ
    /// from the file. A token set to the empty string turns notifications off and forgets them.
    /// Without a token in the environment, whatever the file says.
    pub fn resolve(root: &SyncRoot, lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, NotifyError> {
        let path = settings_file(root);
        match lookup(TOKEN_ENV) {
            Some(token) if token.trim().is_empty() => {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(StateFileError::Write { path, source }.into()),
                }
                Ok(None)
            }
            Some(token) => {
                let url = lookup(URL_ENV).filter(|u| !u.trim().is_empty()).unwrap_or_else(|| DEFAULT_HOOKS_URL.to_string());
                let settings = NotifySettings::new(url.trim(), HooksToken::new(token.trim()))?;
                if Self::load(root).ok().flatten().as_ref() != Some(&settings) {
                    state_file::write_json(&path, &settings)?;
                }
                Ok(Some(settings))
            }
            None => Ok(Self::load(root)?),
        }
    }

    /// What `resolve` would refuse, found without writing anything: a hooks URL that is not
    /// http(s) next to a token, or a damaged settings file. Commands call this before they
    /// start anything, so a bad setting changes nothing.
    pub fn check(root: &SyncRoot, lookup: impl Fn(&str) -> Option<String>) -> Result<(), NotifyError> {
        match lookup(TOKEN_ENV) {
            Some(token) if token.trim().is_empty() => Ok(()),
            Some(token) => {
                let url = lookup(URL_ENV).filter(|u| !u.trim().is_empty()).unwrap_or_else(|| DEFAULT_HOOKS_URL.to_string());
                NotifySettings::new(url.trim(), HooksToken::new(token.trim())).map(drop)
            }
            None => Self::load(root).map(drop).map_err(Into::into),
        }
    }

    /// `check` with the process environment.
    pub fn check_env(root: &SyncRoot) -> Result<(), NotifyError> {
        Self::check(root, |name| std::env::var(name).ok())
    }

    /// `resolve` with the process environment.
    pub fn from_env(root: &SyncRoot) -> Result<Option<Self>, NotifyError> {
        Self::resolve(root, |name| std::env::var(name).ok())
    }
}
