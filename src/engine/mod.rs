//! The Syncthing engine: obtaining the binary, configuring it, running it and talking to its REST API.
pub mod events;
