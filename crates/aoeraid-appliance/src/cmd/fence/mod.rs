//! `aoeraid fence` (installed as `fence_aoeraid`): a fence agent for AoE targets, by the
//! AoE Reserve/Release command, following the fence-agents API (`FenceAgentAPI.md`).
//!
//! Options arrive as `key=value` lines on stdin when the command line names no action
//! (that is how `dlm_controld`, `fenced` and Pacemaker call agents), or as long options
//! (`options.rs`). `off` sets the target's reserve list to the list without the node's
//! MACs (from an empty list: every host's MACs but the node's), `on` puts them back (an
//! empty list stays empty: every node may already write), `status` reads the list (the
//! node is on when the list is empty or holds one of its MACs). Exit 0 on success, 1 on
//! any failure; `status` exits 0 for on, 2 for off, 1 when it cannot tell.
//!
//! # How races are settled
//!
//! AoE has no compare-and-swap, but Set Reserve List (RCmd 1) is refused to a sender
//! that is not on a non-empty list, and the agent never uses Force Set. Each action reads
//! the list, decides (`plan.rs`), sets it, and reads it back: `off` succeeds only if the
//! node's MACs are gone **and** the sender's own MAC is still there.
//!
//! - Two survivors fencing the same node converge: both compute the list without it
//!   (from the same hosts map when it was empty); the later Set writes what the earlier
//!   one did, or, if the earlier already removed the node, the later reads it gone.
//! - Two nodes fencing each other (a split): the first Set to reach the target wins. It
//!   leaves the loser's MACs out, so the loser's Set is refused (error 6), and its read
//!   back shows it excluded: it exits 1 and can change nothing from then on, not even
//!   unfence itself. A node on the list must run `on` for it.
//! - A node never fences itself (its interface MAC among the victim's), and `off` from a
//!   MAC the hosts map does not name is refused, since from an empty list it would set a
//!   list that shuts the sender out.

mod hosts;
mod link;
mod metadata;
mod options;
mod plan;

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use self::link::AoeLink;
use self::options::{Action, OptionError, Options, Settings};
use self::plan::{Outcome, Power, Refusal, Scene, Want};

const ABOUT: &str = "\
Fence agent for AoE targets by Reserve/Release, installed as fence_aoeraid for Pacemaker \
and dlm_controld. off sets the target's reserve list without the node's MACs, on puts them \
back, status reads it. Options are key=value lines on stdin when no -o/--action is given (# lines are comments, \
unknown keys are ignored with a note): action, target, interface, plug (or port, nodename, \
node), hosts, power_timeout, retry_on, verbose. Exit status: 0 success, 1 failure; status: \
0 on, 2 off, 1 unknown. See docs/fencing.md.";

#[derive(clap::Args, Debug)]
#[command(long_about = ABOUT)]
pub(crate) struct Args {
    /// off, on, status, monitor, list, metadata or validate-all.
    #[arg(short = 'o', long)]
    pub action: Option<String>,
    /// The export, eSHELF.SLOT (e.g. e1.0).
    #[arg(long)]
    pub target: Option<String>,
    /// Local interface on the target's segment.
    #[arg(long)]
    pub interface: Option<String>,
    /// Node to act on, as named in --hosts.
    #[arg(short = 'n', long, visible_alias = "port")]
    pub plug: Option<String>,
    /// Nodes and their MACs: node1=MAC[,MAC];node2=MAC.
    #[arg(long)]
    pub hosts: Option<String>,
    /// Read-check-set rounds when the list changes under the agent (default 3).
    #[arg(long)]
    pub retry_on: Option<String>,
    /// Time limit of the whole action, in seconds (default 20).
    #[arg(long)]
    pub power_timeout: Option<String>,
    /// Print each step on stderr.
    #[arg(short, long)]
    pub verbose: bool,
    /// Print the version and exit.
    #[arg(short = 'V', long = "version")]
    pub show_version: bool,
}

impl Args {
    /// The command line's options, over what stdin said.
    fn settings(&self, stdin: Option<&str>) -> (Settings, Vec<String>) {
        let mut s = Settings::default();
        let notes = stdin.map(|t| s.read_lines(t)).unwrap_or_default();
        for (key, value) in [
            ("action", &self.action),
            ("target", &self.target),
            ("interface", &self.interface),
            ("plug", &self.plug),
            ("hosts", &self.hosts),
            ("retry_on", &self.retry_on),
            ("power_timeout", &self.power_timeout),
        ] {
            if let Some(v) = value {
                s.set(key, v.as_str());
            }
        }
        if self.verbose {
            s.set("verbose", "1");
        }
        (s, notes)
    }
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if args.show_version {
        println!("fence_aoeraid {}", env!("CARGO_PKG_VERSION"));
        return Ok(ExitCode::SUCCESS);
    }
    let stdin = if args.action.is_none() && !std::io::stdin().is_terminal() {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| anyhow::anyhow!("reading options from stdin: {e}"))?;
        Some(text)
    } else {
        None
    };
    let (settings, notes) = args.settings(stdin.as_deref());
    for n in &notes {
        eprintln!("fence_aoeraid: note: {n}");
    }
    Ok(match agent(&settings) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("fence_aoeraid: {msg}");
            ExitCode::from(1)
        }
    })
}

/// One run; `Err` is the one line printed before exiting 1.
fn agent(settings: &Settings) -> Result<ExitCode, String> {
    let o = Options::parse(settings).map_err(|e| e.0)?;
    if o.action == Action::Metadata {
        print!("{}", metadata::xml());
        return Ok(ExitCode::SUCCESS);
    }
    let setup = o.setup().map_err(|e| e.0)?;
    let needs_node = matches!(o.action, Action::Off | Action::On | Action::Status);
    let victim = if needs_node {
        let name = o.victim().map_err(|e: OptionError| e.0)?;
        setup.hosts.get(name)
    } else {
        None
    };
    if o.action == Action::ValidateAll {
        return Ok(ExitCode::SUCCESS);
    }
    let log = |line: String| {
        if o.verbose {
            eprintln!("fence_aoeraid: {line}");
        }
    };
    let mut link = AoeLink::open(&setup.interface, setup.target, o.power_timeout)
        .map_err(|e| e.to_string())?;
    let me = link.me();
    let scene = victim.map(|victim| Scene {
        hosts: &setup.hosts,
        victim,
        me,
    });
    // Refuse to fence oneself before anything goes on the wire.
    if let (Action::Off, Some(s)) = (o.action, &scene) {
        plan::precheck(Want::Off, s).map_err(|e| e.to_string())?;
    }
    let mac = link.find_target().map_err(|e| e.to_string())?;
    log(format!(
        "{} answers from {mac} on {}",
        setup.target, setup.interface
    ));
    let mut log = log;
    let fail = |r: Refusal| r.to_string();
    match (o.action, scene) {
        (Action::Off | Action::On, Some(s)) => {
            let want = if o.action == Action::Off {
                Want::Off
            } else {
                Want::On
            };
            let outcome = plan::act(&mut link, want, &s, o.retry_on, &mut log).map_err(fail)?;
            let word = if want == Want::Off { "OFF" } else { "ON" };
            match outcome {
                Outcome::Already => println!("Success: Already {word}"),
                Outcome::Changed => println!("Success: Powered {word}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        (Action::Status, Some(s)) => {
            let list = plan::Reservations::read(&mut link).map_err(|e| e.to_string())?;
            log(format!("reserve list: {}", plan::show(&list)));
            Ok(match plan::power(&list, s.victim) {
                Power::On => {
                    println!("Status: ON");
                    ExitCode::SUCCESS
                }
                Power::Off => {
                    println!("Status: OFF");
                    ExitCode::from(2)
                }
            })
        }
        (Action::Monitor | Action::List, _) => {
            let list = plan::Reservations::read(&mut link).map_err(|e| e.to_string())?;
            log(format!("reserve list: {}", plan::show(&list)));
            if o.action == Action::List {
                for h in setup.hosts.iter() {
                    println!("{}", h.name);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        (action, _) => Err(format!("action {action:?} without a node")),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn args(line: &[&str]) -> Args {
        let argv = ["aoeraid", "fence"].iter().chain(line).copied();
        match Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())
            .unwrap()
            .command
        {
            Command::Fence(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn long_and_short_options_as_fence_agents_spell_them() {
        let a = args(&[
            "-o",
            "off",
            "--target",
            "e1.0",
            "--interface=eth1",
            "--port",
            "n2",
            "--hosts",
            "n1=02:00:00:00:00:01;n2=02:00:00:00:00:02",
            "--power-timeout",
            "2",
            "--retry-on=5",
            "-v",
        ]);
        let (s, notes) = a.settings(None);
        assert!(notes.is_empty());
        let o = Options::parse(&s).unwrap();
        assert_eq!(o.action, Action::Off);
        assert_eq!(o.interface.as_deref(), Some("eth1"));
        assert_eq!(o.victim().unwrap(), "n2");
        assert_eq!(o.power_timeout.as_secs(), 2);
        assert_eq!(o.retry_on, 5);
        assert!(o.verbose);
        assert_eq!(o.setup().unwrap().target.to_string(), "e1.0");
        let a = args(&["--action=status", "-n", "n1"]);
        assert_eq!(a.plug.as_deref(), Some("n1"));
        assert!(args(&["-V"]).show_version);
    }

    #[test]
    fn the_command_line_overrides_stdin_and_stdin_fills_the_rest() {
        let a = args(&["--plug", "n1", "--interface", "eth9"]);
        let stdin = "action=off\ntarget=e1.0\ninterface=eth0\nplug=n2\n\
                     hosts=n1=02:00:00:00:00:01;n2=02:00:00:00:00:02\nnode=7\n";
        let (s, notes) = a.settings(Some(stdin));
        assert!(notes.is_empty(), "{notes:?}");
        let o = Options::parse(&s).unwrap();
        assert_eq!(o.action, Action::Off);
        assert_eq!(o.interface.as_deref(), Some("eth9"));
        assert_eq!(o.victim().unwrap(), "n1");
    }

    #[test]
    fn unknown_command_line_options_are_refused() {
        let argv = ["aoeraid", "fence", "-o", "off", "--ipaddr", "x"];
        assert!(Cli::try_parse_from(argv).is_err());
    }

    #[test]
    fn metadata_and_validate_all_need_no_network() {
        let (s, _) = args(&["-o", "metadata"]).settings(None);
        assert_eq!(agent(&s).unwrap(), ExitCode::SUCCESS);
        let validate = |interface: &str, node: &str| {
            let hosts = "n1=02:00:00:00:00:01";
            let line = [
                "-o",
                "validate-all",
                "--target",
                "e1.0",
                "--interface",
                interface,
                "--hosts",
                hosts,
                "-n",
                node,
            ];
            agent(&args(&line).settings(None).0)
        };
        assert_eq!(validate("nonexistent0", "n1").unwrap(), ExitCode::SUCCESS);
        assert_eq!(
            validate("eth0", "n9").unwrap_err(),
            "unknown node `n9`: hosts names n1"
        );
        let (s, _) = args(&["-o", "off", "--target", "e1.0", "--interface", "eth0"]).settings(None);
        assert_eq!(agent(&s).unwrap_err(), "missing required option hosts");
    }
}
