//! A Pacemaker cluster on one host: each node runs Debian's corosync and
//! pacemakerd in namespaces of its own (network, mount, UTS, IPC, PID; set up
//! by `pacemaker/node-init.sh` beside this crate), with ports on the lab's
//! segments like any other lab port, and the OCF agents under test installed
//! where Pacemaker looks for them. The nodes meet over a segment of their own,
//! `cluster`, on 10.99.0.0/24 (the only IP in the lab). Killing a node's
//! `unshare` (the lab does, on drop) ends its PID namespace and so every
//! process of the node, including daemons an agent detached.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::sh::{self, err, ip, run};
use crate::{Lab, Proc, Segment};

/// A node's files on the host appear inside it at these paths (bind mounts).
const PRIVATE: [&str; 5] = [
    "var/lib/pacemaker",
    "var/lib/corosync",
    "etc/corosync",
    "var/log/pacemaker",
    "usr/lib/ocf/resource.d",
];
/// Where the node sees `<dir>/node`: its own files (configs, the CIB draft).
pub const NODE_FILES: &str = "/run/node";

pub struct PacemakerNode {
    name: String,
    dir: PathBuf,
    /// `unshare`, whose death (`--kill-child`) kills the node's PID 1.
    holder: Proc,
    /// The host's PID of the node's PID 1.
    init: u32,
}

pub struct PacemakerCluster {
    nodes: Vec<PacemakerNode>,
    daemons: Vec<Proc>,
}

impl Lab {
    /// Nodes `names` (each its hostname and node name), joined on the segment
    /// `cluster`, with `agents` — (`provider/type`, script) — installed as
    /// `/usr/lib/ocf/resource.d/provider/type`, and one corosync.conf
    /// (knet, two_node quorum when there are two). Nothing runs yet:
    /// [`PacemakerCluster::configure`], then [`PacemakerCluster::start`].
    pub fn pacemaker_cluster(
        &self,
        names: &[&str],
        agents: &[(&str, &Path)],
    ) -> io::Result<PacemakerCluster> {
        let seg = Segment::named("cluster")?;
        let mut nodes = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let node = self.pacemaker_node(name, agents)?;
            node.add_port(self, &seg, "cl0")?;
            node.run(
                "ip",
                &[
                    "addr",
                    "add",
                    &format!("10.99.0.{}/24", i + 1),
                    "dev",
                    "cl0",
                ],
            )?;
            nodes.push(node);
        }
        let conf = corosync_conf(names);
        for node in &nodes {
            fs::write(node.dir.join("etc/corosync/corosync.conf"), &conf)?;
        }
        Ok(PacemakerCluster {
            nodes,
            daemons: Vec::new(),
        })
    }

    fn pacemaker_node(&self, name: &str, agents: &[(&str, &Path)]) -> io::Result<PacemakerNode> {
        let dir = self.dir().join(format!("pcmk-{name}"));
        for d in PRIVATE.iter().chain(&["node"]) {
            fs::create_dir_all(dir.join(d))?;
        }
        for d in ["cib", "pengine", "blackbox", "cores"] {
            fs::create_dir_all(dir.join("var/lib/pacemaker").join(d))?;
        }
        for (rtype, script) in agents {
            let to = dir.join("usr/lib/ocf/resource.d").join(rtype);
            fs::create_dir_all(to.parent().expect("provider dir"))?;
            fs::copy(script, &to)?;
        }
        chown_cluster(&dir.join("var/lib/pacemaker"))?;
        chown_cluster(&dir.join("var/log/pacemaker"))?;

        let init_script = Path::new(env!("CARGO_MANIFEST_DIR")).join("pacemaker/node-init.sh");
        let mut holder = Command::new("unshare");
        holder
            .args(["--net", "--mount", "--uts", "--ipc", "--pid", "--fork"])
            .args(["--kill-child", "--propagation", "private", "sh"])
            .arg(init_script)
            .arg(name)
            .arg(&dir);
        let mut holder = self.spawn(&format!("node-{name}"), holder)?;
        let t = Instant::now();
        while !dir.join("node/ready").exists() {
            if !holder.is_running() || t.elapsed() > Duration::from_secs(10) {
                return Err(err(format!(
                    "node {name} did not come up: {}",
                    holder.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let children = run(Command::new("pgrep").args(["-P", &holder.pid().to_string()]))?;
        let init = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| err(format!("node {name}: no PID 1 under unshare")))?;
        Ok(PacemakerNode {
            name: name.to_string(),
            dir,
            holder,
            init,
        })
    }
}

/// Pacemaker's daemons run as hacluster and keep their state there.
fn chown_cluster(path: &Path) -> io::Result<()> {
    run(Command::new("chown")
        .args(["-R", "hacluster:haclient"])
        .arg(path))
    .map(|_| ())
}

fn corosync_conf(names: &[&str]) -> String {
    let mut nodes = String::new();
    for (i, name) in names.iter().enumerate() {
        nodes.push_str(&format!(
            "    node {{\n        ring0_addr: 10.99.0.{}\n        name: {name}\n        nodeid: {}\n    }}\n",
            i + 1,
            i + 1
        ));
    }
    let two_node = if names.len() == 2 {
        "    two_node: 1\n"
    } else {
        ""
    };
    format!(
        "totem {{\n    version: 2\n    cluster_name: aoeraid-lab\n    transport: knet\n    \
         crypto_cipher: none\n    crypto_hash: none\n}}\n\
         nodelist {{\n{nodes}}}\n\
         quorum {{\n    provider: corosync_votequorum\n{two_node}}}\n\
         logging {{\n    to_logfile: yes\n    logfile: /var/log/pacemaker/corosync.log\n    \
         to_stderr: no\n    to_syslog: no\n    timestamp: on\n}}\n"
    )
}

impl PacemakerNode {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `program` inside the node (all of its namespaces): add args, then run or spawn it.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.args([
            "-t",
            &self.init.to_string(),
            "-p",
            "-m",
            "-n",
            "-u",
            "-i",
            "--",
        ])
        .arg(program);
        c
    }
    /// Runs `program args` in the node, requires success, returns stdout.
    pub fn run(&self, program: &str, args: &[&str]) -> io::Result<String> {
        run(self.cmd(program).args(args))
    }
    /// Runs `program args` in the node to completion (any exit status).
    pub fn output(&self, program: &str, args: &[&str]) -> io::Result<Output> {
        sh::output(self.cmd(program).args(args))
    }

    /// A port of this node called `name` on the lab's segment `seg`: a lab port
    /// moved into the node's network namespace and renamed. Returns its MAC.
    pub fn add_port(&self, lab: &Lab, seg: &Segment, name: &str) -> io::Result<String> {
        let port = lab.add_port(seg, "pm")?;
        ip(
            lab.ns(),
            &[
                "link",
                "set",
                &port,
                "netns",
                &self.holder.pid().to_string(),
            ],
        )?;
        self.run("ip", &["link", "set", &port, "name", name])?;
        self.run("ip", &["link", "set", name, "up"])?;
        Ok(self
            .run("cat", &[&format!("/sys/class/net/{name}/address")])?
            .trim()
            .to_string())
    }

    /// Writes `name` among the node's own files; returns its path inside the
    /// node (under [`NODE_FILES`]).
    pub fn write_file(&self, name: &str, contents: &str) -> io::Result<String> {
        fs::write(self.dir.join("node").join(name), contents)?;
        Ok(format!("{NODE_FILES}/{name}"))
    }

    /// One of the node's own files (under [`NODE_FILES`]); empty if absent.
    pub fn read_file(&self, name: &str) -> String {
        fs::read_to_string(self.dir.join("node").join(name)).unwrap_or_default()
    }

    /// Pacemaker's log of this node (empty if none yet).
    pub fn pacemaker_log(&self) -> String {
        fs::read_to_string(self.dir.join("var/log/pacemaker/pacemaker.log")).unwrap_or_default()
    }
}

impl PacemakerCluster {
    pub fn nodes(&self) -> &[PacemakerNode] {
        &self.nodes
    }
    pub fn node(&self, name: &str) -> &PacemakerNode {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// The configuration every node starts with: an empty CIB edited offline by
    /// `pcs -f CIB ARGS…` for each of `pcs` (run on the first node, where the
    /// agents are installed, so pcs checks their parameters), then copied to
    /// every node's /var/lib/pacemaker/cib.
    pub fn configure(&self, pcs: &[&[&str]]) -> io::Result<()> {
        let first = &self.nodes[0];
        let cib = first.cmd("cibadmin").arg("--empty").output()?;
        let draft = first.write_file("cib.xml", &String::from_utf8_lossy(&cib.stdout))?;
        for args in pcs {
            first.run("pcs", &[&["-f", draft.as_str()], *args].concat())?;
        }
        let text = fs::read(first.dir.join("node/cib.xml"))?;
        for node in &self.nodes {
            let to = node.dir.join("var/lib/pacemaker/cib/cib.xml");
            fs::write(&to, &text)?;
            chown_cluster(&to)?;
        }
        Ok(())
    }

    /// Starts corosync, then pacemakerd, on every node (processes of the lab:
    /// logs in its log dir).
    pub fn start(&mut self, lab: &Lab) -> io::Result<()> {
        for node in &self.nodes {
            let mut c = node.cmd("corosync");
            c.arg("-f");
            self.daemons
                .push(lab.spawn(&format!("corosync-{}", node.name), c)?);
        }
        for node in &self.nodes {
            let t = Instant::now();
            while !node
                .output("corosync-cfgtool", &["-s"])
                .is_ok_and(|o| o.status.success())
            {
                if t.elapsed() > Duration::from_secs(20) {
                    return Err(err(format!("corosync on {} does not answer", node.name)));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        for node in &self.nodes {
            let c = node.cmd("pacemakerd");
            self.daemons
                .push(lab.spawn(&format!("pacemakerd-{}", node.name), c)?);
        }
        Ok(())
    }

    /// `crm_mon -1 --output-as=xml` as the first node sees the cluster.
    pub fn crm_mon_xml(&self) -> String {
        self.nodes[0]
            .output("crm_mon", &["-1", "--output-as=xml"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Polls until a DC is elected and every node is online (panics after `limit`).
    pub fn wait_online(&self, limit: Duration) {
        let t = Instant::now();
        loop {
            let xml = self.crm_mon_xml();
            let online = xml.matches("online=\"true\"").count();
            if xml.contains("<current_dc present=\"true\"") && online == self.nodes.len() {
                return;
            }
            assert!(
                t.elapsed() < limit,
                "cluster not online after {limit:?}:\n{xml}\n{}",
                self.nodes[0].pacemaker_log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// How long the last `task` (start, stop, monitor) of `rsc` on `node` ran, as
    /// the cluster's operation history records it.
    pub fn op_exec_time(&self, node: &str, rsc: &str, task: &str) -> Option<Duration> {
        let xml = self.crm_mon_xml();
        let ms = attribute(last_op(&xml, node, rsc, task)?, "exec-time")?;
        ms.strip_suffix("ms")?
            .parse()
            .ok()
            .map(Duration::from_millis)
    }

    /// The OCF exit code of the last `task` of `rsc` on `node`.
    pub fn op_rc(&self, node: &str, rsc: &str, task: &str) -> Option<i32> {
        let xml = self.crm_mon_xml();
        attribute(last_op(&xml, node, rsc, task)?, "rc")?
            .parse()
            .ok()
    }

    /// The node where resource `rsc` runs, as `crm_resource --locate` says.
    pub fn locate(&self, rsc: &str) -> Option<String> {
        let out = self.nodes[0]
            .output("crm_resource", &["--locate", "--resource", rsc, "--quiet"])
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let node = text.lines().next()?.trim();
        (!node.is_empty()).then(|| node.to_string())
    }
}

/// The last `<operation_history …>` element of `task` for `rsc` on `node` in
/// `crm_mon --output-as=xml`.
fn last_op<'x>(xml: &'x str, node: &str, rsc: &str, task: &str) -> Option<&'x str> {
    let history = xml
        .split("<node name=\"")
        .find(|h| h.starts_with(&format!("{node}\">")))?;
    let ops = history
        .split("<resource_history id=\"")
        .find(|h| h.starts_with(&format!("{rsc}\"")))?;
    let ops = ops.split("</resource_history>").next()?;
    ops.split("<operation_history ")
        .filter(|o| o.contains(&format!("task=\"{task}\"")))
        .last()
}

/// The value of ` name="…"` in an element's text.
fn attribute<'x>(element: &'x str, name: &str) -> Option<&'x str> {
    element
        .split(&format!(" {name}=\""))
        .nth(1)?
        .split('"')
        .next()
}
