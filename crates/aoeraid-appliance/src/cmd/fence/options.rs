//! The agent's options: `key=value` lines on stdin (what `dlm_controld`, `fenced` and
//! Pacemaker's fencer write) and the same options on the command line, merged into one
//! checked [`Options`].
//!
//! Stdin follows `FenceAgentAPI.md`: one `key=value` per line, `#` lines are comments,
//! the last value of a key wins, unknown keys are ignored (with a note on stderr, since
//! callers pass keys of their own: `dlm_controld` adds `fail_time`, `fenced` `agent` and
//! `name`). `-` and `_` are the same in a key, as in the agents' long options.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use aoe_wire::AoeAddr;

use super::hosts::Hosts;

/// What the caller asks for (`action=`, `-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Off,
    On,
    Status,
    Monitor,
    List,
    Metadata,
    ValidateAll,
}

impl FromStr for Action {
    type Err = String;

    fn from_str(s: &str) -> Result<Action, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "off" => Action::Off,
            "on" => Action::On,
            "status" => Action::Status,
            "monitor" => Action::Monitor,
            "list" => Action::List,
            "metadata" | "meta-data" => Action::Metadata,
            "validate-all" => Action::ValidateAll,
            "reboot" => {
                return Err(
                    "action `reboot` is not supported: fabric fencing has no reboot \
                            (use off, then on once the node has restarted)"
                        .to_string(),
                )
            }
            other => {
                return Err(format!(
                    "unknown action `{other}` (off, on, status, monitor, list, metadata, \
                     validate-all)"
                ))
            }
        })
    }
}

/// Keys the agent understands, each under its one canonical name.
const KEYS: [&str; 11] = [
    "action",
    "target",
    "interface",
    "plug",
    "port",
    "nodename",
    "node",
    "hosts",
    "retry_on",
    "power_timeout",
    "verbose",
];

/// Older spellings of canonical keys.
fn canonical(key: &str) -> Option<&'static str> {
    let key = key.replace('-', "_");
    let key = if key == "option" { "action" } else { &key };
    KEYS.iter().copied().find(|k| *k == key)
}

/// Raw option values by canonical key, before they are checked.
#[derive(Debug, Default, Clone)]
pub(crate) struct Settings(BTreeMap<&'static str, String>);

impl Settings {
    /// Reads `key=value` lines; returns the notes about lines it ignored.
    pub(crate) fn read_lines(&mut self, text: &str) -> Vec<String> {
        let mut notes = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                notes.push(format!("stdin line {}: no `=`, ignored", n + 1));
                continue;
            };
            match canonical(key.trim_end()) {
                Some(key) => {
                    self.0.insert(key, value.trim_end().to_string());
                }
                None => notes.push(format!(
                    "stdin line {}: unknown option `{}` ignored",
                    n + 1,
                    key.trim_end()
                )),
            }
        }
        notes
    }

    /// Sets `key` (a canonical name) from the command line; it wins over stdin.
    pub(crate) fn set(&mut self, key: &'static str, value: impl Into<String>) {
        debug_assert!(KEYS.contains(&key), "{key}");
        self.0.insert(key, value.into());
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

/// A refused option: the one line the agent prints before it exits 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OptionError(pub(crate) String);

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn refuse<T>(msg: impl Into<String>) -> Result<T, OptionError> {
    Err(OptionError(msg.into()))
}

/// Default of `power_timeout`: the whole action's time limit. fence-agents' default, and
/// longer than a blade's default dead time (10 s), which can hold the reply to an `off` of
/// a RAID export while the victim's writes in flight wait on a dying blade.
pub(crate) const DEFAULT_POWER_TIMEOUT: Duration = Duration::from_secs(20);
/// Default of `retry_on`: read-check-set rounds before giving up on a list that keeps
/// changing under the agent.
pub(crate) const DEFAULT_RETRY_ON: u32 = 3;

/// Checked options of one run.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) action: Action,
    pub(crate) target: Option<AoeAddr>,
    pub(crate) interface: Option<String>,
    /// The node acted on: `plug`, else `port`, else `nodename`, else `node` (the node
    /// id `dlm_controld` always passes).
    pub(crate) plug: Option<String>,
    pub(crate) hosts: Option<Hosts>,
    pub(crate) retry_on: u32,
    pub(crate) power_timeout: Duration,
    pub(crate) verbose: bool,
}

/// What a network action needs, all present and consistent.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub(crate) target: AoeAddr,
    pub(crate) interface: String,
    pub(crate) hosts: Hosts,
}

fn parse_bool(key: &str, v: &str) -> Result<bool, OptionError> {
    match v.to_ascii_lowercase().as_str() {
        "" | "1" | "yes" | "on" | "true" => Ok(true),
        "0" | "no" | "off" | "false" => Ok(false),
        _ => refuse(format!(
            "{key}={v}: expected 1/0, yes/no, on/off or true/false"
        )),
    }
}

/// Seconds (as fence agents take them, `20` or `2.5`) or a duration with a unit (`500ms`).
fn parse_timeout(v: &str) -> Result<Duration, OptionError> {
    let d = match v.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= 3600.0 => {
            Duration::from_secs_f64(secs)
        }
        Ok(_) => return refuse(format!("power_timeout={v}: must be in (0, 3600] seconds")),
        Err(_) => match v.parse::<crate::config::Duration>() {
            Ok(d) => d.get(),
            Err(e) => return refuse(format!("power_timeout={v}: {e}")),
        },
    };
    if d.is_zero() || d > Duration::from_secs(3600) {
        return refuse(format!("power_timeout={v}: must be in (0, 3600] seconds"));
    }
    Ok(d)
}

impl Options {
    pub(crate) fn parse(s: &Settings) -> Result<Options, OptionError> {
        // No action means off, as for fence_scsi (the metadata says so):
        // dlm_controld fences by running the agent without an action= line.
        let action = s
            .get("action")
            .unwrap_or("off")
            .parse()
            .map_err(OptionError)?;
        let target = match s.get("target") {
            None => None,
            Some(t) => match t.parse::<AoeAddr>() {
                Ok(a) => Some(a),
                Err(e) => return refuse(format!("target={t}: {e}")),
            },
        };
        let hosts = match s.get("hosts") {
            None => None,
            Some(h) => Some(h.parse::<Hosts>().map_err(|e| OptionError(e.to_string()))?),
        };
        let plug = ["plug", "port", "nodename", "node"]
            .iter()
            .find_map(|k| s.get(k))
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty());
        let retry_on = match s.get("retry_on") {
            None => DEFAULT_RETRY_ON,
            Some(v) => match v.parse::<u32>() {
                Ok(n @ 1..=100) => n,
                _ => return refuse(format!("retry_on={v}: expected a count in 1..=100")),
            },
        };
        let power_timeout = match s.get("power_timeout") {
            None => DEFAULT_POWER_TIMEOUT,
            Some(v) => parse_timeout(v)?,
        };
        let verbose = match s.get("verbose") {
            None => false,
            Some(v) => parse_bool("verbose", v)?,
        };
        let interface = s
            .get("interface")
            .map(|i| i.trim().to_string())
            .filter(|i| !i.is_empty());
        Ok(Options {
            action,
            target,
            interface,
            plug,
            hosts,
            retry_on,
            power_timeout,
            verbose,
        })
    }

    /// The options every action that talks to the target needs.
    pub(crate) fn setup(&self) -> Result<Setup, OptionError> {
        let (Some(target), Some(interface), Some(hosts)) =
            (self.target, &self.interface, &self.hosts)
        else {
            let missing: Vec<&str> = [
                ("target", self.target.is_none()),
                ("interface", self.interface.is_none()),
                ("hosts", self.hosts.is_none()),
            ]
            .iter()
            .filter(|(_, m)| *m)
            .map(|(k, _)| *k)
            .collect();
            return refuse(format!("missing required option {}", missing.join(", ")));
        };
        if let Some(plug) = &self.plug {
            if hosts.get(plug).is_none() {
                return refuse(format!(
                    "unknown node `{plug}`: hosts names {}",
                    hosts.names()
                ));
            }
        }
        Ok(Setup {
            target,
            interface: interface.clone(),
            hosts: hosts.clone(),
        })
    }

    /// The node an on/off/status acts on, known to the hosts map (checked by `setup`).
    pub(crate) fn victim(&self) -> Result<&str, OptionError> {
        match &self.plug {
            Some(p) => Ok(p),
            None => refuse(
                format!(
                    "action {:?} needs the node to act on (plug=, port=, nodename= or node=; -n)",
                    self.action
                )
                .to_lowercase(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
# written by dlm_controld
action=off
target=e1.0
interface=eth0
hosts=n1=02:00:00:00:00:01;n2=02:00:00:00:00:02
plug=n2
";

    fn from_stdin(text: &str) -> (Result<Options, OptionError>, Vec<String>) {
        let mut s = Settings::default();
        let notes = s.read_lines(text);
        (Options::parse(&s), notes)
    }

    #[test]
    fn stdin_lines_comments_and_last_value_wins() {
        let text =
            format!("{GOOD}  # indented comment\n\nplug=n1\npower-timeout=2.5\nverbose=yes\n");
        let (o, notes) = from_stdin(&text);
        let o = o.unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(o.action, Action::Off);
        assert_eq!(o.target.unwrap().to_string(), "e1.0");
        assert_eq!(o.interface.as_deref(), Some("eth0"));
        assert_eq!(o.plug.as_deref(), Some("n1"));
        assert_eq!(o.power_timeout, Duration::from_millis(2500));
        assert_eq!(o.retry_on, DEFAULT_RETRY_ON);
        assert!(o.verbose);
        let setup = o.setup().unwrap();
        assert_eq!(setup.hosts.get("n2").unwrap().macs.len(), 1);
        assert_eq!(o.victim().unwrap(), "n1");
    }

    #[test]
    fn unknown_keys_and_lines_without_equals_are_noted_and_ignored() {
        let text = format!("{GOOD}fail_time=1700000000\nagent=fence_aoeraid\ngarbage\n");
        let (o, notes) = from_stdin(&text);
        assert_eq!(o.unwrap().action, Action::Off);
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[0].contains("unknown option `fail_time`"), "{notes:?}");
        assert!(notes[2].contains("line 9: no `=`"), "{notes:?}");
    }

    #[test]
    fn the_node_comes_from_plug_port_nodename_or_dlm_node_id() {
        let base = "action=status\ntarget=e1.0\ninterface=eth0\nhosts=1=02:00:00:00:00:01;2=02:00:00:00:00:02\n";
        for (extra, want) in [
            ("node=2\n", "2"),
            ("node=2\nnodename=1\n", "1"),
            ("nodename=1\nport=2\n", "2"),
            ("port=2\nplug=1\nnode=2\n", "1"),
        ] {
            let (o, _) = from_stdin(&format!("{base}{extra}"));
            assert_eq!(o.unwrap().victim().unwrap(), want, "{extra}");
        }
        let (o, _) = from_stdin("action=option-less\n");
        assert!(o.unwrap_err().0.contains("unknown action"));
        let (o, _) = from_stdin(&format!("{base}option=off\n"));
        // `option=` is the old name of `action=`: the later line wins.
        assert_eq!(o.unwrap().action, Action::Off);
    }

    #[test]
    fn command_line_values_win_over_stdin() {
        let mut s = Settings::default();
        s.read_lines(GOOD);
        s.set("plug", "n1");
        s.set("action", "on");
        let o = Options::parse(&s).unwrap();
        assert_eq!(o.action, Action::On);
        assert_eq!(o.victim().unwrap(), "n1");
    }

    #[test]
    fn missing_or_bad_options_give_one_clear_line() {
        for (text, why) in [
            ("action=reboot\n", "fabric fencing has no reboot"),
            (
                "action=off\ntarget=e1\n",
                "target=e1: expected an AoE address",
            ),
            ("action=off\ntarget=e1.255\n", "target=e1.255"),
            ("action=off\nhosts=n1\n", "malformed hosts map"),
            ("action=off\nretry_on=0\n", "retry_on=0"),
            ("action=off\npower_timeout=0\n", "power_timeout=0"),
            ("action=off\npower_timeout=soon\n", "power_timeout=soon"),
            ("action=off\nverbose=maybe\n", "verbose=maybe"),
        ] {
            let (o, _) = from_stdin(text);
            let e = o.unwrap_err().0;
            assert!(e.contains(why), "{text:?}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let (o, _) = from_stdin("action=off\ninterface=eth0\n");
        let e = o.unwrap().setup().unwrap_err().0;
        assert_eq!(e, "missing required option target, hosts");
        let (o, _) = from_stdin(&GOOD.replace("plug=n2", "plug=n9"));
        let e = o.unwrap().setup().unwrap_err().0;
        assert_eq!(e, "unknown node `n9`: hosts names n1, n2");
        let (o, _) = from_stdin(&GOOD.replace("plug=n2\n", ""));
        let e = o.unwrap().victim().unwrap_err().0;
        assert!(e.contains("needs the node to act on"), "{e}");
    }

    #[test]
    fn no_action_means_off_as_dlm_controld_expects() {
        let (o, notes) = from_stdin(
            "target=e1.0\ninterface=eth0\nhosts=node1=02:00:00:00:00:01\nnode=1\nfail_time=1796583613\n",
        );
        assert_eq!(o.unwrap().action, Action::Off);
        assert_eq!(notes.len(), 1, "{notes:?}");
    }

    #[test]
    fn metadata_needs_nothing_else() {
        let (o, _) = from_stdin("action=metadata\n");
        assert_eq!(o.unwrap().action, Action::Metadata);
        let (o, _) = from_stdin("action=meta-data\n");
        assert_eq!(o.unwrap().action, Action::Metadata);
    }
}
