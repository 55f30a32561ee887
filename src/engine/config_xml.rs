//! Structured edits of Syncthing's config.xml, made once before its first start (afterwards every
//! change goes through REST). Syncthing writes the file itself (`generate`), so its schema version
//! always matches the binary; we only set the values botsync decides.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use xmltree::{Element, EmitterConfig, ParserConfig, XMLNode};

use super::profile::ProfileOptions;
use super::EngineError;
use crate::root::{SharedFolder, SyncRoot};

/// How often Syncthing redials a disconnected peer; its default (60 s) makes a peer that restarts
/// stay away for a minute.
pub const RECONNECTION_INTERVAL_S: u32 = 5;
/// Seconds Syncthing's own file watcher gathers changes before a scan: Syncthing's default. The
/// daemon's fast scans (`daemon::watcher`) deliver changes within milliseconds; Syncthing's
/// watcher is the safety net behind them. It cannot tell its own pulls from local writes, so
/// during an initial sync it rescans what it just wrote every `FS_WATCHER_DELAY_S`: at 1 s (the
/// fastest 1.19 takes) 10,000 files took 46.5 s to reach the joiner against 15.1 s at 10 s
/// (examples/folder_bench.rs, raw Syncthing 1.19.2, same machine).
pub const FS_WATCHER_DELAY_S: u32 = 10;

/// Everything botsync decides in config.xml.
#[derive(Debug, Clone)]
pub struct ConfigEdit<'a> {
    pub device_id: &'a str,
    pub device_name: &'a str,
    pub gui_port: u16,
    pub api_key: &'a str,
    pub profile: &'a ProfileOptions,
    pub root: &'a SyncRoot,
    /// `caseSensitiveFS` per folder ID, for the folders whose filesystem was probed
    /// (`case_sensitivity`); the others keep Syncthing's default.
    pub case_sensitive: &'a HashMap<&'static str, bool>,
}

pub struct ConfigXml {
    path: PathBuf,
    doc: Element,
}

impl ConfigXml {
    pub fn load(path: &Path) -> Result<ConfigXml, EngineError> {
        let bytes = std::fs::read(path).map_err(|e| EngineError::io(format!("reading {}", path.display()), e))?;
        let doc = Element::parse_with_config(bytes.as_slice(), ParserConfig::new().trim_whitespace(true))
            .map_err(|e| EngineError::ConfigXml { path: path.to_owned(), reason: e.to_string() })?;
        if doc.name != "configuration" {
            return Err(EngineError::ConfigXml { path: path.to_owned(), reason: format!("root element is <{}>", doc.name) });
        }
        Ok(ConfigXml { path: path.to_owned(), doc })
    }

    /// Writes the document back atomically, private (it holds the API key).
    pub fn save(&self) -> Result<(), EngineError> {
        let mut bytes = Vec::new();
        self.doc
            .write_with_config(&mut bytes, EmitterConfig::new().perform_indent(true).write_document_declaration(false))
            .map_err(|e| EngineError::ConfigXml { path: self.path.clone(), reason: e.to_string() })?;
        bytes.push(b'\n');
        crate::state_file::write_private(&self.path, &bytes)?;
        Ok(())
    }

    pub fn apply(&mut self, edit: &ConfigEdit<'_>) -> Result<(), EngineError> {
        self.set_gui(edit.gui_port, edit.api_key);
        self.set_own_device_name(edit.device_id, edit.device_name);
        self.set_options(edit.profile);
        self.set_folders(edit.device_id, edit.root, edit.case_sensitive)
    }

    fn set_gui(&mut self, port: u16, api_key: &str) {
        let gui = child_mut(&mut self.doc, "gui");
        gui.attributes.insert("enabled".into(), "true".into());
        gui.attributes.insert("tls".into(), "false".into());
        set_text(child_mut(gui, "address"), &format!("127.0.0.1:{port}"));
        set_text(child_mut(gui, "apikey"), api_key);
    }

    /// Whether Syncthing will ask for a login (a user and a password are both set).
    pub fn has_gui_login(&self) -> bool {
        let text = |name: &str| self.doc.get_child("gui").and_then(|g| g.get_child(name)).and_then(|e| e.get_text()).is_some_and(|t| !t.trim().is_empty());
        text("user") && text("password")
    }

    /// Sets the GUI/REST login (see `gui_login`); `bcrypt_hash` is what Syncthing compares against.
    pub fn set_gui_login(&mut self, user: &str, bcrypt_hash: &str) {
        let gui = child_mut(&mut self.doc, "gui");
        set_text(child_mut(gui, "user"), user);
        set_text(child_mut(gui, "password"), bcrypt_hash);
    }

    fn set_own_device_name(&mut self, device_id: &str, name: &str) {
        if let Some(device) = elements_mut(&mut self.doc, "device").find(|d| d.attributes.get("id").map(String::as_str) == Some(device_id)) {
            device.attributes.insert("name".into(), name.into());
        }
    }

    fn set_options(&mut self, profile: &ProfileOptions) {
        let options = child_mut(&mut self.doc, "options");
        options.children.retain(|n| !matches!(n, XMLNode::Element(e) if e.name == "listenAddress"));
        for (index, address) in profile.listen_addresses.iter().enumerate() {
            options.children.insert(index, XMLNode::Element(text_element("listenAddress", address)));
        }
        for (name, on) in profile.flags() {
            set_text(child_mut(options, name), bool_text(on));
        }
        // No usage or crash reports, no self-upgrade (botsync owns the binary), no browser, quick redials.
        let fixed = [
            ("urAccepted", "-1".to_string()),
            ("crashReportingEnabled", "false".into()),
            ("autoUpgradeIntervalH", "0".into()),
            ("startBrowser", "false".into()),
            ("reconnectionIntervalS", RECONNECTION_INTERVAL_S.to_string()),
        ];
        for (name, value) in fixed {
            set_text(child_mut(options, name), &value);
        }
    }

    /// Upserts the three botsync folders (from Syncthing's own folder defaults, so every field the
    /// binary expects is present) and drops a `default` folder if one was generated.
    fn set_folders(&mut self, device_id: &str, root: &SyncRoot, case_sensitive: &HashMap<&'static str, bool>) -> Result<(), EngineError> {
        let template = self
            .doc
            .get_child("defaults")
            .and_then(|d| d.get_child("folder"))
            .cloned()
            .unwrap_or_else(|| Element::new("folder"));
        self.doc.children.retain(|n| !matches!(n, XMLNode::Element(e) if e.name == "folder" && e.attributes.get("id").map(String::as_str) == Some("default")));
        for folder in SharedFolder::ALL {
            let existing = elements_mut(&mut self.doc, "folder").find(|f| f.attributes.get("id").map(String::as_str) == Some(folder.folder_id()));
            let element = match existing {
                Some(element) => element,
                None => {
                    let position = self
                        .doc
                        .children
                        .iter()
                        .position(|n| matches!(n, XMLNode::Element(e) if e.name == "device"))
                        .unwrap_or(self.doc.children.len());
                    self.doc.children.insert(position, XMLNode::Element(template.clone()));
                    self.doc.children[position].as_mut_element().expect("just inserted an element")
                }
            };
            let path = root.folder_dir(folder);
            let path = path.to_str().ok_or_else(|| EngineError::ConfigXml {
                path: self.path.clone(),
                reason: format!("folder path {} is not UTF-8", path.display()),
            })?;
            for (name, value) in [
                ("id", folder.folder_id()),
                ("label", folder.dir_name()),
                ("path", path),
                ("type", "sendreceive"),
                ("fsWatcherEnabled", "true"),
            ] {
                element.attributes.insert(name.into(), value.into());
            }
            element.attributes.insert("fsWatcherDelayS".into(), FS_WATCHER_DELAY_S.to_string());
            set_text(child_mut(element, "maxConflicts"), "-1");
            if let Some(sensitive) = case_sensitive.get(folder.folder_id()) {
                set_text(child_mut(element, "caseSensitiveFS"), bool_text(*sensitive));
            }
            if !elements_mut(element, "device").any(|d| d.attributes.get("id").map(String::as_str) == Some(device_id)) {
                let mut device = Element::new("device");
                device.attributes.insert("id".into(), device_id.into());
                device.attributes.insert("introducedBy".into(), String::new());
                element.children.push(XMLNode::Element(device));
            }
        }
        Ok(())
    }

    /// Devices other than ourselves, as (id, name, addresses): what `status` shows while stopped.
    pub fn peers(&self, own_id: &str) -> Vec<(String, String, Vec<String>)> {
        self.doc
            .children
            .iter()
            .filter_map(XMLNode::as_element)
            .filter(|e| e.name == "device")
            .filter_map(|d| {
                let id = d.attributes.get("id")?.clone();
                (id != own_id).then(|| {
                    let name = d.attributes.get("name").cloned().unwrap_or_default();
                    let addresses = d
                        .children
                        .iter()
                        .filter_map(XMLNode::as_element)
                        .filter(|a| a.name == "address")
                        .filter_map(|a| a.get_text().map(|t| t.into_owned()))
                        .collect();
                    (id, name, addresses)
                })
            })
            .collect()
    }

    pub fn gui_address(&self) -> Option<String> {
        Some(self.doc.get_child("gui")?.get_child("address")?.get_text()?.into_owned())
    }

    pub fn option(&self, name: &str) -> Vec<String> {
        self.doc
            .get_child("options")
            .map(|o| {
                o.children
                    .iter()
                    .filter_map(XMLNode::as_element)
                    .filter(|e| e.name == name)
                    .map(|e| e.get_text().map(|t| t.into_owned()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn folder_ids(&self) -> Vec<String> {
        self.doc
            .children
            .iter()
            .filter_map(XMLNode::as_element)
            .filter(|e| e.name == "folder")
            .filter_map(|e| e.attributes.get("id").cloned())
            .collect()
    }

    pub fn folder_attribute(&self, folder_id: &str, attribute: &str) -> Option<String> {
        self.doc
            .children
            .iter()
            .filter_map(XMLNode::as_element)
            .find(|e| e.name == "folder" && e.attributes.get("id").map(String::as_str) == Some(folder_id))?
            .attributes
            .get(attribute)
            .cloned()
    }

    pub fn folder_child_text(&self, folder_id: &str, child: &str) -> Option<String> {
        self.doc
            .children
            .iter()
            .filter_map(XMLNode::as_element)
            .find(|e| e.name == "folder" && e.attributes.get("id").map(String::as_str) == Some(folder_id))?
            .get_child(child)?
            .get_text()
            .map(|t| t.into_owned())
    }
}

fn bool_text(on: bool) -> &'static str {
    if on {
        "true"
    } else {
        "false"
    }
}

fn text_element(name: &str, text: &str) -> Element {
    let mut element = Element::new(name);
    element.children.push(XMLNode::Text(text.into()));
    element
}

fn set_text(element: &mut Element, text: &str) {
    element.children.retain(|n| matches!(n, XMLNode::Element(_)));
    if !text.is_empty() {
        element.children.push(XMLNode::Text(text.into()));
    }
}

/// The first child element `name`, created (appended) when missing.
fn child_mut<'e>(parent: &'e mut Element, name: &str) -> &'e mut Element {
    let index = match parent.children.iter().position(|n| matches!(n, XMLNode::Element(e) if e.name == name)) {
        Some(index) => index,
        None => {
            parent.children.push(XMLNode::Element(Element::new(name)));
            parent.children.len() - 1
        }
    };
    parent.children[index].as_mut_element().expect("position points at an element")
}

fn elements_mut<'e>(parent: &'e mut Element, name: &'e str) -> impl Iterator<Item = &'e mut Element> + 'e {
    parent.children.iter_mut().filter_map(XMLNode::as_mut_element).filter(move |e| e.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::profile::NetworkProfile;

    const GENERATED: &str = r#"<configuration version="36">
    <folder id="default" label="Default Folder" path="/x/Sync" type="sendreceive"><device id="SELF" introducedBy=""></device></folder>
    <device id="SELF" name="old" compression="metadata"><address>dynamic</address></device>
    <gui enabled="true" tls="false" debugging="false"><address>127.0.0.1:8384</address><apikey>generated</apikey></gui>
    <options><listenAddress>default</listenAddress><globalAnnounceEnabled>true</globalAnnounceEnabled>
      <relaysEnabled>true</relaysEnabled><natEnabled>true</natEnabled><urAccepted>0</urAccepted>
      <reconnectionIntervalS>60</reconnectionIntervalS><crashReportingEnabled>true</crashReportingEnabled></options>
    <defaults><folder id="" label="" path="~" fsWatcherEnabled="true" fsWatcherDelayS="10"><filesystemType>basic</filesystemType>
      <device id="SELF" introducedBy=""></device><maxConflicts>10</maxConflicts></folder></defaults>
</configuration>"#;

    #[test]
    fn applies_gui_profile_and_folders_and_survives_a_second_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.xml");
        std::fs::write(&path, GENERATED).unwrap();
        let root = SyncRoot::at(dir.path().join("root")).unwrap();
        let profile = NetworkProfile::Direct.options(23456);
        let case_sensitive = HashMap::from([("botsync-shared", true)]);
        let edit = ConfigEdit { device_id: "SELF", device_name: "host", gui_port: 24567, api_key: "k3y", profile: &profile, root: &root, case_sensitive: &case_sensitive };
        for _ in 0..2 {
            let mut xml = ConfigXml::load(&path).unwrap();
            xml.apply(&edit).unwrap();
            xml.save().unwrap();
        }
        let xml = ConfigXml::load(&path).unwrap();
        assert_eq!(xml.gui_address().as_deref(), Some("127.0.0.1:24567"));
        assert_eq!(xml.option("listenAddress"), vec!["tcp://0.0.0.0:23456"]);
        assert_eq!(xml.option("relaysEnabled"), vec!["false"]);
        assert_eq!(xml.option("globalAnnounceEnabled"), vec!["false"]);
        assert_eq!(xml.option("localAnnounceEnabled"), vec!["false"]);
        assert_eq!(xml.option("urAccepted"), vec!["-1"]);
        assert_eq!(xml.option("reconnectionIntervalS"), vec!["5"]);
        assert_eq!(xml.option("autoUpgradeIntervalH"), vec!["0"]);
        let ids = xml.folder_ids();
        assert_eq!(ids, vec!["botsync-shared", "botsync-deliverables", "botsync-inbox"], "default dropped, ours once each");
        assert_eq!(xml.folder_child_text("botsync-inbox", "maxConflicts").as_deref(), Some("-1"));
        assert_eq!(xml.folder_child_text("botsync-shared", "caseSensitiveFS").as_deref(), Some("true"), "probed: the checks off");
        assert_eq!(xml.folder_child_text("botsync-inbox", "caseSensitiveFS"), None, "not probed: left to Syncthing's default (the checks)");
        assert_eq!(xml.folder_attribute("botsync-shared", "path"), Some(root.path().join("shared").display().to_string()));
        assert_eq!(xml.folder_attribute("botsync-shared", "fsWatcherEnabled").as_deref(), Some("true"));
        // The safety net behind the daemon's fast scans, at Syncthing's default: a shorter delay
        // makes Syncthing rescan its own pulls over and over during an initial sync.
        assert_eq!(xml.folder_attribute("botsync-shared", "fsWatcherDelayS").as_deref(), Some("10"));
        assert!(xml.peers("SELF").is_empty());
        assert!(!xml.has_gui_login(), "Syncthing's generated config has no login");
        let mut xml = xml;
        xml.set_gui_login("botsync-user", "$2a$10$hash");
        xml.save().unwrap();
        let xml = ConfigXml::load(&path).unwrap();
        assert!(xml.has_gui_login());
        assert_eq!(xml.gui_address().as_deref(), Some("127.0.0.1:24567"), "the rest of <gui> is kept");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("name=\"host\""));
    }
}
