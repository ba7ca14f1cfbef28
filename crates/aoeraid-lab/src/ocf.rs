//! An OCF resource agent run in a lab as Pacemaker's executor runs it: the
//! action as the only argument, parameters as `OCF_RESKEY_*` variables, the
//! OCF environment of the host's resource-agents package; and `ocf-tester`
//! over the same parameters.

use std::path::Path;
use std::process::Command;

use crate::{sh, Appliance, Lab};

/// Where Debian's resource-agents package puts `lib/heartbeat/ocf-shellfuncs`.
pub const OCF_ROOT: &str = "/usr/lib/ocf";

/// The OCF exit code of a successful action.
pub const OCF_SUCCESS: i32 = 0;

/// One resource: an agent script, its instance name and parameters.
pub struct OcfResource<'a> {
    pub(crate) lab: &'a Lab,
    agent: String,
    instance: String,
    params: Vec<(String, String)>,
}

/// What one action gave: the OCF exit code and everything it printed.
#[derive(Debug)]
pub struct OcfRun {
    pub code: i32,
    pub output: String,
}

impl Lab {
    /// Resource `instance` of `agent` (a path) with `params` (name, value),
    /// run inside this lab's namespace.
    pub fn ocf_resource(
        &self,
        agent: &str,
        instance: &str,
        params: &[(&str, &str)],
    ) -> OcfResource<'_> {
        OcfResource {
            lab: self,
            agent: agent.to_string(),
            instance: instance.to_string(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

impl Appliance {
    /// `ocf:aoeraid:appliance` (the script `agent`) over this appliance's
    /// config and binary, its pidfile and log in the lab dir (named after the
    /// appliance: each of an HA pair has its own).
    pub fn ocf_resource(&self, agent: &str) -> OcfResource<'_> {
        let dir = self.lab.dir();
        let name = &self.config().appliance.name;
        let pidfile = dir.join(format!("ocf-{name}.pid")).display().to_string();
        let logfile = dir
            .join(format!("logs/ocf-{name}.log"))
            .display()
            .to_string();
        self.lab.ocf_resource(
            agent,
            "appliance",
            &[
                ("config", self.cfg()),
                ("binary", self.bin()),
                ("pidfile", &pidfile),
                ("logfile", &logfile),
            ],
        )
    }
}

impl OcfResource<'_> {
    /// The same resource with `name` set to `value`.
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.params.retain(|(k, _)| k != name);
        self.params.push((name.to_string(), value.to_string()));
        self
    }

    /// A parameter's value as given.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Runs `action` to completion with the environment Pacemaker gives a
    /// recurring operation (`OCF_RESKEY_CRM_meta_interval` non-zero).
    pub fn action(&self, action: &str) -> OcfRun {
        let mut cmd = self.command(action);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("run {} {action}: {e}", self.agent));
        OcfRun {
            code: out.status.code().unwrap_or(-1),
            output: sh::combined(&out),
        }
    }

    /// The action with its code checked; panics with the output otherwise.
    pub fn expect(&self, action: &str, code: i32) -> OcfRun {
        let run = self.action(action);
        assert_eq!(
            run.code, code,
            "{action} of {}: {}",
            self.instance, run.output
        );
        run
    }

    fn command(&self, action: &str) -> Command {
        let mut cmd = self.lab.cmd(&self.agent);
        cmd.arg(action)
            .env("OCF_ROOT", OCF_ROOT)
            .env("OCF_RA_VERSION_MAJOR", "1")
            .env("OCF_RA_VERSION_MINOR", "0")
            .env("OCF_RESOURCE_INSTANCE", &self.instance)
            .env("OCF_RESKEY_CRM_meta_interval", "10000")
            // ocf_log to stderr, where `output` collects it.
            .env("HA_LOGFACILITY", "none")
            .env_remove("HA_LOGFILE");
        for (k, v) in &self.params {
            cmd.env(format!("OCF_RESKEY_{k}"), v);
        }
        cmd
    }

    /// `ocf-tester -n INSTANCE -o k=v … AGENT` in the lab: whether it passed
    /// and what it printed. It really starts and stops the resource.
    pub fn ocf_tester(&self) -> (bool, String) {
        let mut cmd = self.lab.cmd("ocf-tester");
        cmd.args(["-n", &self.instance])
            .env("OCF_ROOT", OCF_ROOT)
            .env("HA_LOGFACILITY", "none");
        for (k, v) in &self.params {
            cmd.arg("-o").arg(format!("{k}={v}"));
        }
        cmd.arg(Path::new(&self.agent));
        let out = cmd.output().expect("run ocf-tester");
        (out.status.success(), sh::combined(&out))
    }
}
