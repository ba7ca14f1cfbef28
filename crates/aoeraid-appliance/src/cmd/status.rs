//! `aoeraid status [--json]`: arrays, members, progress, volumes, blades.

use super::connect::ConnectArgs;
use crate::control::{render, Request};
use anyhow::bail;
use std::io::IsTerminal;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub conn: ConnectArgs,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let resp = args.conn.call(&Request::Status)?;
    let Some(status) = resp.status else {
        bail!(
            "{}",
            resp.error.as_deref().unwrap_or("the daemon sent no status")
        );
    };
    if args.conn.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!(
            "{}",
            render::render(&status, std::io::stdout().is_terminal())
        );
    }
    Ok(ExitCode::SUCCESS)
}
