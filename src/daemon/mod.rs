//! The background process: pairing completion, notifications and fast scans.

pub mod scanner;
pub mod watcher;
