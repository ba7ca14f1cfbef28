//! `aoeraid spare add|remove GROUP MEMBER`.

use super::connect::ConnectArgs;
use crate::config::MemberAddr;
use crate::control::Request;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum Action {
    /// Put a device into a spare group.
    Add(SpareAdd),
    /// Take an unused spare out of a spare group.
    Remove(GroupMember),
}

#[derive(clap::Args, Debug)]
pub(crate) struct GroupMember {
    /// Spare group name from the config.
    pub group: String,
    /// Device address: eSHELF.SLOT or file:/path.
    pub member: MemberAddr,
    #[command(flatten)]
    pub conn: ConnectArgs,
}

/// `aoeraid spare add`: a device, and whether to write over what it carries.
#[derive(clap::Args, Debug)]
pub(crate) struct SpareAdd {
    #[command(flatten)]
    pub gm: GroupMember,
    /// Write over an array's superblock or another group's spare label the
    /// device carries; without it such a device is refused and left untouched.
    #[arg(long)]
    pub force: bool,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let (req, gm) = match &args.action {
        Action::Add(a) => (
            Request::SpareAdd {
                group: a.gm.group.clone(),
                member: a.gm.member.to_string(),
                force: a.force,
            },
            &a.gm,
        ),
        Action::Remove(gm) => (
            Request::SpareRemove {
                group: gm.group.clone(),
                member: gm.member.to_string(),
            },
            gm,
        ),
    };
    gm.conn.run_command(&req)
}
