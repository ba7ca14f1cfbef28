//! The control plane's local interfaces: a Unix socket speaking
//! newline-delimited JSON (server for the daemon, client for the CLI), the
//! status snapshot schema, its human rendering, and systemd notification.

pub mod client;
pub mod engine;
pub mod protocol;
pub mod render;
pub mod sdnotify;
pub mod server;
pub mod status;

pub use client::Client;
pub use protocol::{Request, Response};
pub use server::{ControlHandler, ControlServer, MemberCommand};
pub use status::Status;
