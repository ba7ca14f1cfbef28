//! `aoeraid status [--json] [--test]`: arrays, members, progress, volumes, blades.

use super::connect::ConnectArgs;
use crate::control::status::{ArrayState, Status};
use crate::control::{render, Request};
use anyhow::bail;
use raid_engine::ArrayState as Engine;
use std::io::IsTerminal;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    pub conn: ConnectArgs,
    /// Exit status tells the arrays' health, as `mdadm --detail --test` does: 0 every
    /// array clean, 1 one or more degraded (or rebuilding, resyncing, not assembled),
    /// 2 one or more failed, 4 the daemon could not be asked.
    #[arg(long)]
    pub test: bool,
}

/// What `--test` exits with, worst array first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Health {
    Clean = 0,
    Degraded = 1,
    Failed = 2,
}

/// mdadm's exit status when it cannot read the array at all.
const UNREACHABLE: u8 = 4;

pub(crate) fn health(status: &Status) -> Health {
    status
        .arrays
        .iter()
        .map(|a| match a.state {
            ArrayState::Assembled(Engine::Clean) => Health::Clean,
            ArrayState::Assembled(Engine::Failed) => Health::Failed,
            ArrayState::Assembled(Engine::Degraded | Engine::Rebuilding | Engine::Resyncing)
            | ArrayState::Inactive => Health::Degraded,
        })
        .max()
        .unwrap_or(Health::Clean)
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let status = match fetch(args) {
        Ok(s) => s,
        Err(e) if args.test => {
            eprintln!("aoeraid: {e:#}");
            return Ok(ExitCode::from(UNREACHABLE));
        }
        Err(e) => return Err(e),
    };
    if args.conn.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!(
            "{}",
            render::render(&status, std::io::stdout().is_terminal())
        );
    }
    Ok(if args.test {
        ExitCode::from(health(&status) as u8)
    } else {
        ExitCode::SUCCESS
    })
}

fn fetch(args: &Args) -> anyhow::Result<Status> {
    let resp = args.conn.call(&Request::Status)?;
    let Some(status) = resp.status else {
        bail!(
            "{}",
            resp.error.as_deref().unwrap_or("the daemon sent no status")
        );
    };
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::status::ArrayStatus;

    fn with(states: &[ArrayState]) -> Status {
        Status {
            arrays: states
                .iter()
                .enumerate()
                .map(|(i, s)| ArrayStatus {
                    name: format!("a{i}"),
                    state: *s,
                    ..serde_json::from_str(
                        r#"{"name":"x","level":"raid1","state":"clean","members_required":2,
                            "members":[],"rebuild":{"action":"idle","done_ratio":1.0,"done_bytes":0,"total_bytes":0}}"#,
                    )
                    .unwrap()
                })
                .collect(),
            ..Status::default()
        }
    }

    #[test]
    fn the_systemd_status_line_puts_trouble_first() {
        assert_eq!(with(&[]).summary(), "0 of 0 arrays clean; nothing exported");
        let mut s = with(&[
            ArrayState::Assembled(Engine::Clean),
            ArrayState::Assembled(Engine::Degraded),
            ArrayState::Assembled(Engine::Clean),
        ]);
        s.arrays[1].name = "data".into();
        assert_eq!(
            s.summary(),
            "data degraded; 2 of 3 arrays clean; nothing exported"
        );
        s.arrays[1].state = ArrayState::Assembled(Engine::Rebuilding);
        s.arrays[1].rebuild.action = crate::control::status::SyncAction::Rebuild;
        s.arrays[1].rebuild.done_ratio = 0.25;
        s.volumes = serde_json::from_str(
            r#"[{"name":"gfs","shelf":7,"slot":0,"sectors":8,"arrays":["data"],
                 "exported":true}]"#,
        )
        .unwrap();
        assert_eq!(
            s.summary(),
            "data rebuilding rebuild 25%; 2 of 3 arrays clean; exporting e7.0"
        );
        assert!(!s.summary().contains('\n'));
    }

    #[test]
    fn the_worst_array_decides_like_mdadm_detail_test() {
        assert_eq!(health(&with(&[])), Health::Clean);
        assert_eq!(
            health(&with(&[
                ArrayState::Assembled(Engine::Clean),
                ArrayState::Assembled(Engine::Clean)
            ])),
            Health::Clean
        );
        for d in [
            ArrayState::Assembled(Engine::Degraded),
            ArrayState::Assembled(Engine::Rebuilding),
            ArrayState::Assembled(Engine::Resyncing),
            ArrayState::Inactive,
        ] {
            assert_eq!(
                health(&with(&[ArrayState::Assembled(Engine::Clean), d])),
                Health::Degraded,
                "{d:?}"
            );
        }
        assert_eq!(
            health(&with(&[
                ArrayState::Assembled(Engine::Degraded),
                ArrayState::Assembled(Engine::Failed),
                ArrayState::Assembled(Engine::Clean)
            ])),
            Health::Failed
        );
        assert_eq!(Health::Failed as u8, 2);
        assert_eq!(Health::Degraded as u8, 1);
    }
}
