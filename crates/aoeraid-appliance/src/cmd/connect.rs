//! What every daemon-facing command shares: finding the control socket
//! (`--socket`, or the one `--config` names, or the defaults), sending one
//! request, and printing the outcome (`--json` for scripts).

use crate::config::{self, DEFAULT_CONTROL_SOCKET};
use crate::control::{Client, Request, Response};
use anyhow::bail;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where `aoeraid run` reads its config when started by the shipped unit.
pub(crate) const DEFAULT_CONFIG: &str = "/etc/aoeraid/appliance.yaml";

#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct ConnectArgs {
    /// Talk to the daemon this config file describes (its control_socket).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Talk to the daemon on this control socket.
    #[arg(long, value_name = "PATH", conflicts_with = "config")]
    pub socket: Option<PathBuf>,
    /// Print the daemon's response as JSON.
    #[arg(long)]
    pub json: bool,
}

impl ConnectArgs {
    pub(crate) fn socket_path(&self) -> anyhow::Result<PathBuf> {
        if let Some(s) = &self.socket {
            return Ok(s.clone());
        }
        let file = match &self.config {
            Some(f) => f.clone(),
            None if Path::new(DEFAULT_CONFIG).exists() => PathBuf::from(DEFAULT_CONFIG),
            None => return Ok(PathBuf::from(DEFAULT_CONTROL_SOCKET)),
        };
        match config::load(&file, true) {
            Ok(c) => Ok(c.config.appliance.control_socket),
            // A config being edited may be invalid while the daemon runs
            // on the old one; its socket path is all we need.
            Err(errors) => match socket_from_text(&file) {
                Some(p) => Ok(p),
                None => bail!("{errors}"),
            },
        }
    }

    pub(crate) fn call(&self, req: &Request) -> anyhow::Result<Response> {
        Client::connect(&self.socket_path()?)?.call(req)
    }

    /// Sends a command and reports its outcome; refused commands exit 1.
    pub(crate) fn run_command(&self, req: &Request) -> anyhow::Result<ExitCode> {
        let resp = self.call(req)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&resp)?);
        } else if resp.ok {
            if let Some(m) = &resp.message {
                println!("{m}");
            }
        } else {
            eprintln!("aoeraid: {}", resp.error.as_deref().unwrap_or("refused"));
        }
        Ok(if resp.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }
}

fn socket_from_text(file: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(file).ok()?;
    let v: serde_norway::Value = serde_norway::from_str(&text).ok()?;
    match v.get("appliance")?.get("control_socket") {
        Some(serde_norway::Value::String(s)) => Some(PathBuf::from(s)),
        None => Some(PathBuf::from(DEFAULT_CONTROL_SOCKET)),
        Some(_) => None,
    }
}
