//! `aoeraid manpage` and `aoeraid completions`: the manual and the shell completions,
//! generated from the same clap definition that parses the command line, so that
//! neither can drift from what the binary accepts. The packaging script installs
//! their output (`scripts/package.sh`).

use clap::{Arg, ArgAction, Command, CommandFactory, ValueEnum};
use std::fmt::Write as _;
use std::process::ExitCode;

/// The page of `appliance.yaml(5)`: written by hand, since it documents a file
/// format and its semantics rather than a command line.
const APPLIANCE_YAML_5: &str = include_str!("../../../../docs/appliance.yaml.5");

#[derive(clap::Args, Debug)]
pub(crate) struct ManArgs {
    /// Which page: 8 is aoeraid(8), the commands; 5 is appliance.yaml(5), the configuration.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(5..=8))]
    section: u8,
}

#[derive(clap::Args, Debug)]
pub(crate) struct CompletionArgs {
    /// The shell to write a completion script for.
    shell: Shell,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

pub(crate) fn man(args: &ManArgs) -> anyhow::Result<ExitCode> {
    match args.section {
        8 => write_stdout(render_page(&crate::cli::Cli::command()).as_bytes()),
        5 => write_stdout(APPLIANCE_YAML_5.as_bytes()),
        n => anyhow::bail!("no page in section {n}: aoeraid(8) and appliance.yaml(5) exist"),
    }
}

pub(crate) fn completions(args: &CompletionArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = crate::cli::Cli::command();
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    // Rendered whole first: clap_complete panics on a failed write, and a reader
    // that closes the pipe early (`| head`) is no error.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "aoeraid", &mut script);
    write_stdout(&script)
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// aoeraid(8): NAME, SYNOPSIS, DESCRIPTION, then one section per subcommand with its
/// synopsis, description and options, then the files and exit status an operator
/// looks for.
fn render_page(cmd: &Command) -> String {
    let mut out = String::new();
    let version = cmd.get_version().unwrap_or("");
    let _ = writeln!(
        out,
        ".TH AOERAID 8 \"\" \"aoeraid {version}\" \"System Administration\""
    );
    let _ = writeln!(out, ".SH NAME\naoeraid \\- {}", text(&about(cmd)));
    let _ = writeln!(out, ".SH SYNOPSIS\n.B aoeraid\n.I COMMAND\n.RI [ OPTIONS ]");
    let _ = writeln!(
        out,
        ".SH DESCRIPTION\n\
         aoeraid is a software RAID appliance for ATA over Ethernet (AoE). Behind it, AoE \
         blades (EtherDrive shelves or vblade) are found and driven over raw Ethernet; \
         inside it, RAID 0, 1, 10 and 5 arrays and concatenations of arrays keep \
         superblocks, write-intent bitmaps and shared hot spares; in front of it, each \
         volume is exported as one AoE device (shelf.slot) that the Linux aoe driver of \
         several cluster nodes mounts at once.\n.PP\n\
         Arrays and volumes are declared in\n.BR appliance.yaml (5).\n\
         .B aoeraid run\nis the daemon; the maintenance commands talk to it through its \
         control socket."
    );
    for sub in visible_subcommands(cmd) {
        render_subcommand(&mut out, &[], sub);
    }
    let _ = writeln!(
        out,
        ".SH FILES\n.TP\n.I /etc/aoeraid/appliance.yaml\nThe configuration read by \
         \\fBrun\\fR, \\fBcheck-config\\fR and \\fBcreate\\fR.\n\
         .TP\n.I /run/aoeraid/control.sock\nThe daemon's control socket (root only).\n\
         .TP\n.I /var/lib/aoeraid\nExport state (config strings, mask and reserve lists) kept \
         across restarts.\n\
         .SH EXIT STATUS\n0 on success, 1 on failure, 2 for bad arguments.\n\
         .SH SEE ALSO\n.BR appliance.yaml (5),\n.BR aoe (4)\n.BR vblade (8),\n.BR mdadm (8)"
    );
    out
}

fn render_subcommand(out: &mut String, parents: &[&str], cmd: &Command) {
    let mut path: Vec<&str> = parents.to_vec();
    path.push(cmd.get_name());
    let name = path.join(" ");
    let _ = writeln!(out, ".SH \"AOERAID {}\"", text(&name.to_uppercase()));
    let _ = writeln!(out, ".B aoeraid {}", text(&name));
    let usage = synopsis(cmd);
    if !usage.is_empty() {
        let _ = writeln!(out, "{}", text(&usage));
    }
    let long = cmd
        .get_long_about()
        .map(|s| s.to_string())
        .unwrap_or_else(|| about(cmd).to_string());
    if !long.is_empty() {
        let _ = writeln!(out, ".PP\n{}", paragraphs(&long));
    }
    let args: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !matches!(a.get_id().as_str(), "help" | "version"))
        .collect();
    if !args.is_empty() {
        let _ = writeln!(out, ".PP\nOptions:");
        for a in args {
            render_arg(out, a);
        }
    }
    for sub in visible_subcommands(cmd) {
        render_subcommand(out, &path, sub);
    }
}

fn render_arg(out: &mut String, a: &Arg) {
    let value = a
        .get_value_names()
        .map(|v| {
            v.iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| a.get_id().as_str().to_uppercase());
    let takes_value = !matches!(
        a.get_action(),
        ArgAction::SetTrue | ArgAction::SetFalse | ArgAction::Count | ArgAction::Help
    );
    let mut head = Vec::new();
    if let Some(s) = a.get_short() {
        head.push(format!("\\fB\\-{s}\\fR"));
    }
    if let Some(l) = a.get_long() {
        head.push(format!("\\fB\\-\\-{}\\fR", text(l)));
    }
    let mut head = head.join(", ");
    if head.is_empty() {
        head = format!("\\fI{}\\fR", text(&value));
    } else if takes_value {
        head.push_str(&format!(" \\fI{}\\fR", text(&value)));
    }
    let _ = writeln!(out, ".TP\n{head}");
    let help = a
        .get_long_help()
        .or_else(|| a.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let mut body = paragraphs(&help);
    if !body.is_empty() && !body.ends_with(['.', ':', ')']) {
        body.push('.');
    }
    let possible: Vec<String> = a
        .get_possible_values()
        .iter()
        .filter(|p| !p.is_hide_set())
        .map(|p| p.get_name().to_string())
        .collect();
    if takes_value && !possible.is_empty() {
        body.push_str(&format!(" One of: {}.", text(&possible.join(", "))));
    }
    let defaults: Vec<String> = a
        .get_default_values()
        .iter()
        .map(|d| d.to_string_lossy().into_owned())
        .collect();
    if takes_value && !defaults.is_empty() {
        body.push_str(&format!(" Default: {}.", text(&defaults.join(" "))));
    }
    let _ = writeln!(out, "{}", body.trim_start());
}

fn synopsis(cmd: &Command) -> String {
    let mut c = cmd.clone();
    let usage = c.render_usage().to_string();
    // clap writes "Usage: NAME ARGS"; the page already names the command.
    usage
        .trim_start_matches("Usage:")
        .trim()
        .split_once(' ')
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_default()
}

fn visible_subcommands(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

fn about(cmd: &Command) -> String {
    cmd.get_about().map(|s| s.to_string()).unwrap_or_default()
}

/// Help text as roff paragraphs: blank lines separate paragraphs.
fn paragraphs(s: &str) -> String {
    s.split("\n\n")
        .map(|p| text(&p.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect::<Vec<_>>()
        .join("\n.PP\n")
}

/// Escapes text for roff: backslashes and hyphens, and a leading control character.
fn text(s: &str) -> String {
    let escaped = s.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_visible_subcommand_has_its_own_section_with_its_options() {
        let cmd = crate::cli::Cli::command();
        let page = render_page(&cmd);
        for sub in visible_subcommands(&cmd) {
            let heading = format!(".SH \"AOERAID {}\"", text(&sub.get_name().to_uppercase()));
            let at = page
                .find(&heading)
                .unwrap_or_else(|| panic!("no section for {}", sub.get_name()));
            let section = &page[at..];
            let section = &section[..section[4..].find(".SH").map_or(section.len(), |i| i + 4)];
            for a in sub.get_arguments().filter(|a| !a.is_hide_set()) {
                if let Some(l) = a.get_long().filter(|l| *l != "help") {
                    assert!(
                        section.contains(&format!("\\-\\-{}", text(l))),
                        "{}: --{l} missing from its section",
                        sub.get_name()
                    );
                }
            }
        }
    }

    #[test]
    fn roff_control_characters_are_escaped() {
        assert_eq!(text(".hidden"), "\\&.hidden");
        assert_eq!(text("a-b\\c"), "a\\-b\\ec");
        assert_eq!(paragraphs("one\ntwo\n\nthree"), "one two\n.PP\nthree");
    }

    #[test]
    fn the_configuration_page_is_a_man_page_in_section_5() {
        assert!(APPLIANCE_YAML_5.starts_with(".TH APPLIANCE.YAML 5"));
        for section in ["NAME", "DESCRIPTION", "EXAMPLE", "SEE ALSO"] {
            assert!(APPLIANCE_YAML_5.contains(&format!(".SH {section}")));
        }
    }
}
