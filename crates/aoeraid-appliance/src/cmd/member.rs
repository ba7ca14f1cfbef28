//! `aoeraid fail|remove|add|re-add ARRAY MEMBER`.

use super::connect::ConnectArgs;
use crate::config::MemberAddr;
use crate::control::Request;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Array name from the config.
    pub array: String,
    /// Member address: eSHELF.SLOT or file:/path.
    pub member: MemberAddr,
    #[command(flatten)]
    pub conn: ConnectArgs,
}

/// `aoeraid add`: a member, and whether to write over what it carries.
#[derive(clap::Args, Debug)]
pub(crate) struct AddArgs {
    #[command(flatten)]
    pub member: Args,
    /// Write over a superblock of another array (or of this one's member) or a
    /// spare label the device carries; without it such a device is refused and
    /// left untouched.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Fail,
    Remove,
    Add { force: bool },
    ReAdd,
}

pub(crate) fn run(op: Op, args: &Args) -> anyhow::Result<ExitCode> {
    let (array, member) = (args.array.clone(), args.member.to_string());
    let req = match op {
        Op::Fail => Request::Fail { array, member },
        Op::Remove => Request::Remove { array, member },
        Op::Add { force } => Request::Add {
            array,
            member,
            force,
        },
        Op::ReAdd => Request::ReAdd { array, member },
    };
    args.conn.run_command(&req)
}
