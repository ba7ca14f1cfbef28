//! Packet captures on lab interfaces (dumpcap) and their analysis (tshark).

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::proc::Proc;
use super::sh::{err, run};
use super::Lab;

/// A running capture; `stop()` finishes the file.
pub struct Capture {
    proc: Proc,
    path: PathBuf,
    iface: String,
}

/// A finished pcap file.
#[derive(Clone, Debug)]
pub struct CaptureFile {
    pub path: PathBuf,
    /// Frames the kernel dropped before dumpcap saw them (from dumpcap's
    /// closing report), when it printed one.
    pub dropped: Option<u64>,
}

/// What tshark made of a capture.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureSummary {
    pub frames: usize,
    /// Frames whose protocol stack contains "aoe".
    pub aoe: usize,
    /// Frames tshark flags `_ws.malformed`.
    pub malformed: usize,
}

impl CaptureSummary {
    pub fn non_aoe(&self) -> usize {
        self.frames - self.aoe
    }
    /// Every frame dissected as AoE and none malformed (and not empty).
    pub fn all_aoe_clean(&self) -> bool {
        self.frames > 0 && self.aoe == self.frames && self.malformed == 0
    }
}

impl Lab {
    /// Starts capturing every frame on `iface` (in the lab namespace) into
    /// `<dir>/<iface>-<n>.pcap`; returns once dumpcap is capturing.
    pub fn capture(&self, iface: &str) -> io::Result<Capture> {
        let before = packet_sockets_on(self, iface)?;
        let n = self
            .proc_counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = self.dir().join(format!("{iface}-{n}.pcap"));
        let mut cmd = self.cmd("dumpcap");
        cmd.args(["-i", iface, "-P", "-w"]).arg(&path);
        let mut proc = self.spawn(&format!("dumpcap-{iface}"), cmd)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        // dumpcap says "Capturing on" before libpcap has bound its socket;
        // frames before the bind are not seen, so wait for the socket itself.
        while !proc.log().contains("Capturing on") || packet_sockets_on(self, iface)? <= before {
            if let Some(st) = proc.try_wait()? {
                return Err(err(format!(
                    "dumpcap on {iface} exited ({st}): {}",
                    proc.log().trim()
                )));
            }
            if Instant::now() > deadline {
                return Err(err(format!(
                    "dumpcap on {iface} did not start: {}",
                    proc.log().trim()
                )));
            }
            sleep(Duration::from_millis(20));
        }
        // After binding, libpcap drains the socket while it installs the
        // filter and ring; frames in that window are lost. 0.5 s covers it here.
        sleep(Duration::from_millis(500));
        Ok(Capture {
            proc,
            path,
            iface: iface.to_string(),
        })
    }
}

/// Packet sockets bound to `iface` (from /proc/net/packet of the namespace).
fn packet_sockets_on(lab: &Lab, iface: &str) -> io::Result<usize> {
    let idx = lab.run("cat", &[&format!("/sys/class/net/{iface}/ifindex")])?;
    let idx = idx.trim();
    let table = lab.run("cat", &["/proc/net/packet"])?;
    Ok(table
        .lines()
        .skip(1)
        .filter(|l| l.split_whitespace().nth(4) == Some(idx))
        .count())
}

impl Capture {
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// dumpcap's own output.
    pub fn log_path(&self) -> &Path {
        self.proc.log_path()
    }
    pub fn iface(&self) -> &str {
        &self.iface
    }
    /// Waits 1 s, SIGINT (dumpcap writes what it has and closes the file),
    /// waits for it, returns the file. The pause matters: libpcap hands frames
    /// over in ring blocks that retire on a timer, and dumpcap does not drain
    /// the ring on SIGINT, so the last frames would be missing without it.
    pub fn stop(mut self) -> io::Result<CaptureFile> {
        sleep(Duration::from_secs(1));
        self.proc.signal(libc::SIGINT)?;
        if self.proc.wait_timeout(Duration::from_secs(10))?.is_none() {
            self.proc.kill()?;
            return Err(err(format!("dumpcap on {} ignored SIGINT", self.iface)));
        }
        let log = self.proc.log();
        // "Packets received/dropped on interface 'x': 123/0 (...)"
        let dropped = log
            .lines()
            .find_map(|l| l.split_once("received/dropped on interface"))
            .and_then(|(_, rest)| rest.split_once("': "))
            .and_then(|(_, counts)| counts.split_whitespace().next())
            .and_then(|rd| rd.split('/').nth(1))
            .and_then(|d| d.parse().ok());
        Ok(CaptureFile {
            path: self.path.clone(),
            dropped,
        })
    }
}

impl CaptureFile {
    /// Number of frames matching a tshark display filter, e.g. "aoe",
    /// "_ws.malformed", "aoe.cmd == 0 && aoe.response == 1".
    pub fn count(&self, display_filter: &str) -> io::Result<usize> {
        let out = run(Command::new("tshark").arg("-r").arg(&self.path).args([
            "-Y",
            display_filter,
            "-T",
            "fields",
            "-e",
            "frame.number",
        ]))?;
        Ok(out.lines().filter(|l| !l.trim().is_empty()).count())
    }

    /// Frames, AoE frames and malformed frames.
    pub fn summary(&self) -> io::Result<CaptureSummary> {
        let out = run(Command::new("tshark").arg("-r").arg(&self.path).args([
            "-T",
            "fields",
            "-e",
            "frame.protocols",
        ]))?;
        let mut s = CaptureSummary::default();
        for l in out.lines().filter(|l| !l.trim().is_empty()) {
            s.frames += 1;
            if l.split(':').any(|p| p == "aoe") {
                s.aoe += 1;
            }
        }
        s.malformed = self.count("_ws.malformed")?;
        Ok(s)
    }

    /// tshark's one-line summaries of the first `max` frames matching
    /// `display_filter` (for failure messages).
    pub fn describe(&self, display_filter: &str, max: usize) -> io::Result<String> {
        let out = run(Command::new("tshark")
            .arg("-r")
            .arg(&self.path)
            .args(["-Y", display_filter]))?;
        Ok(out.lines().take(max).map(|l| format!("{l}\n")).collect())
    }
}
