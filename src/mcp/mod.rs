//! `botsync mcp`: a Model Context Protocol server over stdio (the official `rmcp` SDK), so an
//! agent's MCP client can exchange files with the root's peers without a shell.
//!
//! It sits at the edge, beside `cli` and `node`: every tool is a thin, typed wrapper over a
//! command (`wait`, `versions`, `invite`, `status`) or over the root's folders, and every
//! failure is a tool error whose text is `{"error":{"code":"BOTSYNC_…","message":…}}`, the same
//! object `--json` prints. Bad arguments (wrong types, unknown fields) are JSON-RPC
//! invalid-params errors from the SDK; neither kind ever stops the server.
//!
//! Paths are relative to a folder and checked by `FolderPath` before anything touches the disk:
//! no `..`, no absolute paths, no symlink leading out, nothing in `.stversions/`, `.stfolder`,
//! `.stignore` or `.botsync/`. Content is capped (`MAX_INLINE_BYTES`, `MAX_COPY_BYTES`,
//! `MAX_READ_BYTES`).
//!
//! The folders are also resources (`botsync://folder/<name>`, a JSON listing); a client that
//! subscribes gets `notifications/resources/updated` when a file arrives or is delivered there.
//! `events` keeps a log of the root's events from the server's start, read by cursor.

mod events;
mod files;

use std::sync::Arc;
use std::time::Duration;

use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, Implementation, ListResourcesResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ServerCapabilities, ServerConfig, SubscribeRequestParams,
    UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_handler, tool_router, ErrorData, RoleServer, ServerHandler, ServiceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::commands::{self, RootOptions};
use crate::error::Error;
use crate::folder_path::FolderPath;
use crate::root::{SharedFolder, SyncRoot};

pub use files::{MAX_COPY_BYTES, MAX_INLINE_BYTES, MAX_READ_BYTES};

/// Serves MCP on this process's stdin/stdout until the client closes stdin.
pub async fn serve_stdio(options: &RootOptions) -> Result<(), Error> {
    let root = options.locate()?;
    let server = BotsyncMcp::new(root);
    let running = server.serve(rmcp::transport::stdio()).await.map_err(|e| Error::Internal(format!("MCP handshake failed: {e}")))?;
    running.waiting().await.map_err(|e| Error::Internal(format!("MCP server stopped: {e}")))?;
    Ok(())
}

/// A tool's failure, shown to the caller as `{"error":{"code","message"}}`.
pub struct ToolFailure(pub Error);

impl<E: Into<Error>> From<E> for ToolFailure {
    fn from(error: E) -> Self {
        ToolFailure(error.into())
    }
}

impl IntoCallToolResult for ToolFailure {
    fn into_call_tool_result(self) -> Result<CallToolResponse, ErrorData> {
        let text = crate::cli::error_json(&self.0).to_string();
        Ok(CallToolResult::error(vec![ContentBlock::text(text)]).into())
    }
}

/// A folder any tool may read.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Folder {
    Shared,
    Deliverables,
    Inbox,
}

impl From<Folder> for SharedFolder {
    fn from(folder: Folder) -> Self {
        match folder {
            Folder::Shared => SharedFolder::Shared,
            Folder::Deliverables => SharedFolder::Deliverables,
            Folder::Inbox => SharedFolder::Inbox,
        }
    }
}

/// A folder an agent writes to: `inbox/` is where humans drop files for agents.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WritableFolder {
    Shared,
    Deliverables,
}

impl From<WritableFolder> for SharedFolder {
    fn from(folder: WritableFolder) -> Self {
        match folder {
            WritableFolder::Shared => SharedFolder::Shared,
            WritableFolder::Deliverables => SharedFolder::Deliverables,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoInput {}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusOutput {
    pub root: String,
    /// Whether the root's Syncthing answers.
    pub running: bool,
    pub device_id: Option<String>,
    pub peers: Vec<PeerOutput>,
    pub folders: Vec<FolderOutput>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeerOutput {
    pub name: String,
    pub device_id: String,
    pub connected: bool,
    pub last_seen: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FolderOutput {
    /// `shared`, `deliverables` or `inbox`.
    pub name: String,
    pub path: String,
    /// `idle`, `syncing`, `scanning`, … (`unknown` while stopped).
    pub state: String,
    /// Percent of the folder this machine has.
    pub completion: f64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaitInput {
    pub folder: Folder,
    /// The file (or directory), relative to the folder.
    pub path: String,
    /// Peers to wait for, by name or device ID; default every peer the folder is shared with.
    pub peers: Option<Vec<String>>,
    /// Give up after this many milliseconds (default 60000, at most 600000).
    pub timeout_ms: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryOutput {
    /// `folder/relative`.
    pub path: String,
    /// The peers that hold the current version, as `name (SHORTID)`.
    pub peers: Vec<String>,
    /// Syncthing's version vector of that version.
    pub version: String,
    pub deleted: bool,
    pub waited_ms: u64,
}

impl From<commands::watch::SyncReport> for DeliveryOutput {
    fn from(report: commands::watch::SyncReport) -> Self {
        DeliveryOutput {
            path: report.path.unwrap_or_default(),
            peers: report.peers,
            version: report.version.unwrap_or_default(),
            deleted: report.deleted.unwrap_or(false),
            waited_ms: report.waited_ms.0,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathInput {
    pub folder: Folder,
    /// The file, relative to the folder.
    pub path: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreInput {
    pub folder: Folder,
    /// The file, relative to the folder.
    pub path: String,
    /// The newest version kept at or before this time (RFC 3339); default the newest.
    pub at: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionsOutput {
    pub path: String,
    /// Newest first.
    pub versions: Vec<VersionOutput>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionOutput {
    /// When it was replaced or deleted (RFC 3339); pass as `at` to restore it.
    pub version_time: String,
    pub mod_time: String,
    pub size: i64,
}

impl From<commands::versions::KeptVersion> for VersionOutput {
    fn from(v: commands::versions::KeptVersion) -> Self {
        VersionOutput { version_time: v.version_time, mod_time: v.mod_time, size: v.size }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreOutput {
    pub path: String,
    pub restored: VersionOutput,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InviteInput {
    /// An offline code (no relay involved) instead of a relay code.
    pub offline: Option<bool>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteOutput {
    /// Give this to the other machine: `botsync join <code>` (or `BOTSYNC_CODE=<code> botsync join -`).
    pub code: String,
    pub kind: String,
    pub expires_at: String,
    pub join_command: String,
}

#[derive(Clone)]
pub struct BotsyncMcp {
    root: SyncRoot,
    log: Arc<events::EventLog>,
}

impl BotsyncMcp {
    pub fn new(root: SyncRoot) -> Self {
        let log = events::EventLog::start(root.clone());
        BotsyncMcp { root, log }
    }

    fn root_options(&self) -> RootOptions {
        RootOptions { root: Some(self.root.path().display().to_string()) }
    }

    fn checked(&self, folder: SharedFolder, path: &str) -> Result<FolderPath, ToolFailure> {
        let target = FolderPath::in_folder(folder, path)?;
        target.check_no_escape(&self.root)?;
        Ok(target)
    }
}

#[tool_router]
impl BotsyncMcp {
    #[tool(description = "The root, whether its engine runs, its peers (connected or not) and its three folders.")]
    async fn status(&self, Parameters(_): Parameters<NoInput>) -> Result<Json<StatusOutput>, ToolFailure> {
        let report = commands::status::run(&self.root_options()).await?;
        Ok(Json(StatusOutput {
            root: report.root,
            running: report.running,
            device_id: report.device_id,
            peers: report
                .peers
                .into_iter()
                .map(|p| PeerOutput { name: p.name, device_id: p.device_id, connected: p.connected, last_seen: p.last_seen })
                .collect(),
            folders: report
                .folders
                .into_iter()
                .map(|f| FolderOutput {
                    name: SharedFolder::from_folder_id(&f.id).map_or(f.id.clone(), |s| s.dir_name().to_string()),
                    path: f.path,
                    state: f.state,
                    completion: f.completion,
                })
                .collect(),
        }))
    }

    #[tool(description = "Write a file into deliverables/ or shared/ (from `text`, `base64`, or a local file `copyFrom`), atomically. With `wait`, returns only once every peer holds it (a delivery receipt).")]
    async fn send(&self, Parameters(input): Parameters<files::SendInput>) -> Result<Json<files::SendOutput>, ToolFailure> {
        let target = self.checked(input.folder.into(), &input.path)?;
        let mut output = files::send(&self.root, &target, &input).await?;
        if input.wait.unwrap_or(false) {
            let limit = timeout(input.timeout_ms);
            let report = commands::wait::wait_for_file(&self.root, &target, input.peers.as_deref().unwrap_or_default(), limit).await?;
            output.delivered = Some(DeliveryOutput::from(report));
        }
        Ok(Json(output))
    }

    #[tool(description = "A folder's files (or one subdirectory's) with size, modification time and which machine last changed each.")]
    async fn list(&self, Parameters(input): Parameters<files::ListInput>) -> Result<Json<files::ListOutput>, ToolFailure> {
        let target = self.checked(input.folder.into(), input.path.as_deref().unwrap_or(""))?;
        Ok(Json(files::list(&self.root, &target, input.limit).await?))
    }

    #[tool(description = "Read a file as text (UTF-8) or base64, at most maxBytes (default 256 KiB, cap 1 MiB) from `offset`; `nextOffset` continues.")]
    async fn read(&self, Parameters(input): Parameters<files::ReadInput>) -> Result<Json<files::ReadOutput>, ToolFailure> {
        let target = self.checked(input.folder.into(), &input.path)?;
        Ok(Json(files::read(&self.root, &target, &input)?))
    }

    #[tool(description = "Wait until every peer (or the named ones) holds the current version of a file: a delivery receipt from Syncthing's per-file availability. Resolves at once if they already do; BOTSYNC_TIMEOUT names who lacks it.")]
    async fn wait_for_delivery(&self, Parameters(input): Parameters<WaitInput>) -> Result<Json<DeliveryOutput>, ToolFailure> {
        let target = self.checked(input.folder.into(), &input.path)?;
        let report = commands::wait::wait_for_file(&self.root, &target, input.peers.as_deref().unwrap_or_default(), timeout(input.timeout_ms)).await?;
        Ok(Json(DeliveryOutput::from(report)))
    }

    #[tool(description = "The root's events since `cursor` (files arriving, deliveries, connections, conflicts), oldest first; pass the returned cursor next time. `waitMs` holds the call open until something happens.")]
    async fn events(&self, Parameters(input): Parameters<events::EventsInput>) -> Result<Json<events::EventsOutput>, ToolFailure> {
        Ok(Json(self.log.read(&input).await?))
    }

    #[tool(description = "A new one-time pairing code for another machine.")]
    async fn invite(&self, Parameters(input): Parameters<InviteInput>) -> Result<Json<InviteOutput>, ToolFailure> {
        let options = commands::invite::InviteOptions { root: self.root_options().root, offline: input.offline, ..Default::default() };
        let report = commands::invite::run(&options).await?;
        Ok(Json(InviteOutput { code: report.code, kind: report.kind, expires_at: report.expires_at, join_command: report.join_command }))
    }

    #[tool(description = "The earlier versions kept of a file that a peer overwrote or deleted, newest first.")]
    async fn versions(&self, Parameters(input): Parameters<PathInput>) -> Result<Json<VersionsOutput>, ToolFailure> {
        let target = self.checked(input.folder.into(), &input.path)?;
        let options = commands::versions::VersionsOptions { root: self.root_options().root, path: target.display() };
        let report = commands::versions::list(&options).await?;
        Ok(Json(VersionsOutput { path: report.path, versions: report.versions.into_iter().map(VersionOutput::from).collect() }))
    }

    #[tool(description = "Bring back an earlier version of a file (the newest, or the newest at or before `at`); it syncs to the peers as a new version.")]
    async fn restore(&self, Parameters(input): Parameters<RestoreInput>) -> Result<Json<RestoreOutput>, ToolFailure> {
        let target = self.checked(input.folder.into(), &input.path)?;
        let options = commands::versions::RestoreOptions { root: self.root_options().root, path: target.display(), at: input.at };
        let report = commands::versions::restore(&options).await?;
        Ok(Json(RestoreOutput { path: report.path, restored: report.restored.into() }))
    }
}

fn timeout(timeout_ms: Option<u32>) -> Duration {
    commands::watch::wait_limit(timeout_ms).min(Duration::from_secs(600))
}

fn folder_uri(folder: SharedFolder) -> String {
    format!("botsync://folder/{}", folder.dir_name())
}

fn folder_of_uri(uri: &str) -> Option<SharedFolder> {
    let name = uri.strip_prefix("botsync://folder/")?;
    SharedFolder::ALL.into_iter().find(|f| f.dir_name() == name)
}

#[tool_handler]
impl ServerHandler for BotsyncMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_resources().enable_resources_subscribe().build())
            .with_server_info(Implementation::new("botsync", crate::VERSION))
            .with_instructions(
                "botsync syncs three folders with the user's other machines, peer to peer. Write outputs for the human into \
                 deliverables/ (tool `send`, with `wait: true` for a delivery receipt), read what the human drops into inbox/ \
                 (`list`, `read`), poll `events` with the cursor it returns. Paths are relative to a folder.",
            )
    }

    async fn list_resources(&self, _request: Option<PaginatedRequestParams>, _context: RequestContext<RoleServer>) -> Result<ListResourcesResult, ErrorData> {
        let resources = SharedFolder::ALL
            .into_iter()
            .map(|folder| {
                let mut resource = Resource::new(folder_uri(folder), folder.dir_name())
                    .with_description(format!("The files in {}/ (JSON: path, size, modified, last changed by)", folder.dir_name()));
                resource.mime_type = Some("application/json".into());
                resource
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(&self, request: ReadResourceRequestParams, _context: RequestContext<RoleServer>) -> Result<ReadResourceResponse, ErrorData> {
        let folder = folder_of_uri(&request.uri).ok_or_else(|| ErrorData::resource_not_found(format!("no resource {}", request.uri), None))?;
        let target = FolderPath::in_folder(folder, "").map_err(|e| ErrorData::invalid_params(e.0, None))?;
        let listing = files::list(&self.root, &target, None).await.map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let text = serde_json::to_string(&listing).map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let contents = ResourceContents::TextResourceContents { uri: request.uri, mime_type: Some("application/json".into()), text, meta: None };
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    #[allow(deprecated)]
    async fn subscribe(&self, request: SubscribeRequestParams, context: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        let folder = folder_of_uri(&request.uri).ok_or_else(|| ErrorData::resource_not_found(format!("no resource {}", request.uri), None))?;
        self.log.subscribe(folder, context.peer.clone()).await;
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(&self, request: UnsubscribeRequestParams, _context: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        if let Some(folder) = folder_of_uri(&request.uri) {
            self.log.unsubscribe(folder).await;
        }
        Ok(())
    }
}
