//! The daemon side of the control socket.
//!
//! The socket is root-only twice over: the file is mode 0600 (in a 0700
//! directory when we create the directory), and every connection's peer
//! credentials are checked, so a client that slipped in before the chmod is
//! still refused. Each connection gets a thread; their number is capped and
//! idle connections time out, so misbehaving clients cannot pile up.

use super::protocol::{Request, Response, MAX_LINE};
use super::status::Status;
use crate::accept_loop::AcceptLoop;
use crate::config::{MemberAddr, Rate, RebuildRates};
use aoe_uring::sys;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const MAX_CONNECTIONS: usize = 16;
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// What a command did, in words for the operator, or why it was refused.
pub type Reply = Result<String, String>;

/// A command on one member of an array (fail, remove, add, re-add) or of a spare group
/// (spare-add, spare-remove).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberCommand {
    Fail,
    Remove,
    /// `force`: write over what the device carries.
    Add {
        force: bool,
    },
    ReAdd,
    SpareAdd {
        force: bool,
    },
    SpareRemove,
}

impl MemberCommand {
    /// The command's name on the command line and in the control protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberCommand::Fail => "fail",
            MemberCommand::Remove => "remove",
            MemberCommand::Add { .. } => "add",
            MemberCommand::ReAdd => "re-add",
            MemberCommand::SpareAdd { .. } => "spare-add",
            MemberCommand::SpareRemove => "spare-remove",
        }
    }
}

/// Implemented by the daemon: each method turns one command into messages
/// to the data path and reports the outcome. Called from connection
/// threads, so implementations must be thread-safe and should not block for
/// long (start a scrub, don't wait for it).
pub trait ControlHandler: Send + Sync + 'static {
    fn status(&self) -> Result<Status, String>;
    /// `target` is the array, or the spare group for spare-add and spare-remove.
    fn member(&self, cmd: MemberCommand, target: &str, member: &MemberAddr) -> Reply;
    fn scrub(&self, array: &str, repair: bool) -> Reply;
    fn grow(&self, volume: &str, add_array: &str) -> Reply;
    fn rebuild_rate(&self, array: &str, min: Option<Rate>, max: Option<Rate>) -> Reply;
    fn reload(&self) -> Reply;
}

fn reply(r: Reply) -> Response {
    match r {
        Ok(m) => Response::done(m),
        Err(e) => Response::error(e),
    }
}

/// Runs one request against the handler. Member addresses are checked here
/// so handlers only ever see well-formed ones.
pub fn dispatch(h: &dyn ControlHandler, req: Request) -> Response {
    let with_member = |cmd: MemberCommand, target: &str, m: &str| match m.parse::<MemberAddr>() {
        Ok(addr) => reply(h.member(cmd, target, &addr)),
        Err(e) => Response::error(e),
    };
    match req {
        Request::Status => match h.status() {
            Ok(s) => Response::status(s),
            Err(e) => Response::error(e),
        },
        Request::Fail { array, member } => with_member(MemberCommand::Fail, &array, &member),
        Request::Remove { array, member } => with_member(MemberCommand::Remove, &array, &member),
        Request::Add {
            array,
            member,
            force,
        } => with_member(MemberCommand::Add { force }, &array, &member),
        Request::ReAdd { array, member } => with_member(MemberCommand::ReAdd, &array, &member),
        Request::SpareAdd {
            group,
            member,
            force,
        } => with_member(MemberCommand::SpareAdd { force }, &group, &member),
        Request::SpareRemove { group, member } => {
            with_member(MemberCommand::SpareRemove, &group, &member)
        }
        Request::Scrub { array, repair } => reply(h.scrub(&array, repair)),
        Request::Grow { volume, add_array } => reply(h.grow(&volume, &add_array)),
        Request::RebuildRate {
            array,
            min_bytes_per_second,
            max_bytes_per_second,
        } => {
            let (min, max) = (
                min_bytes_per_second.map(Rate),
                max_bytes_per_second.map(Rate),
            );
            if min.is_none() && max.is_none() {
                return Response::error("rebuild-rate needs a min or a max");
            }
            match RebuildRates::check(min, max) {
                Ok(()) => reply(h.rebuild_rate(&array, min, max)),
                Err(why) => Response::error(why),
            }
        }
        Request::Reload => reply(h.reload()),
    }
}

pub struct ControlServer {
    path: PathBuf,
    accepting: AcceptLoop,
}

impl ControlServer {
    /// Creates the socket at `path` and starts accepting. Refuses to start
    /// if another daemon answers on it; removes a stale socket file.
    pub fn start(path: &Path, handler: Arc<dyn ControlHandler>) -> io::Result<ControlServer> {
        prepare(path)?;
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let active = Arc::new(AtomicUsize::new(0));
        let accepting = AcceptLoop::spawn(
            "control",
            move || listener.accept().map(|(stream, _)| stream),
            move |stream| accept(stream, &handler, &active),
        )?;
        Ok(ControlServer {
            path: path.to_path_buf(),
            accepting,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting, joins the accept thread and removes the socket.
    pub fn shutdown(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        if self.accepting.stop(|| {
            let _ = UnixStream::connect(&self.path);
        }) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

fn prepare(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "{}: another aoeraid daemon is listening here",
                        path.display()
                    ),
                ))
            } else {
                std::fs::remove_file(path)
            }
        }
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{}: exists and is not a socket; not removing it",
                path.display()
            ),
        )),
    }
}

fn accept(stream: UnixStream, handler: &Arc<dyn ControlHandler>, active: &Arc<AtomicUsize>) {
    let me = sys::effective_uid();
    match sys::peer_uid(&stream) {
        Ok(uid) if uid == 0 || uid == me => {}
        Ok(uid) => {
            refuse(
                stream,
                &format!("uid {uid} may not control aoeraid (root only)"),
            );
            return;
        }
        Err(e) => {
            refuse(stream, &format!("cannot identify the client: {e}"));
            return;
        }
    }
    if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
        active.fetch_sub(1, Ordering::AcqRel);
        refuse(stream, "too many control connections; try again");
        return;
    }
    let handler = handler.clone();
    let active2 = active.clone();
    let spawned = std::thread::Builder::new()
        .name("control-conn".into())
        .spawn(move || {
            // A broken connection concerns only that client.
            let _ = converse(stream, handler.as_ref());
            active2.fetch_sub(1, Ordering::AcqRel);
        });
    if spawned.is_err() {
        active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Answers a connection we will not serve. The client's request is read
/// first (briefly), so the refusal arrives as the answer to it instead of as
/// a reset under a request still being written.
fn refuse(stream: UnixStream, why: &str) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let _ = read_line_limited(&mut BufReader::new(stream), MAX_LINE);
    if let Ok(mut line) = serde_json::to_string(&Response::error(why)) {
        line.push('\n');
        let _ = writer.write_all(line.as_bytes());
    }
}

/// Reads one line of at most `max` bytes; None at end of stream.
pub(crate) fn read_line_limited(r: &mut impl BufRead, max: usize) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            return Ok(if buf.is_empty() {
                None
            } else {
                Some(String::from_utf8_lossy(&buf).into_owned())
            });
        }
        let (take, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        buf.extend_from_slice(&avail[..take]);
        r.consume(take);
        if buf.len() > max {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
        }
        if done {
            buf.pop();
            return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
        }
    }
}

fn converse(stream: UnixStream, handler: &dyn ControlHandler) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    stream.set_write_timeout(Some(IDLE_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some(line) = read_line_limited(&mut reader, MAX_LINE)? {
        if line.trim().is_empty() {
            continue;
        }
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(req) => dispatch(handler, req),
            Err(e) => Response::error(format!("bad request: {e}")),
        };
        let mut out = serde_json::to_string(&response).unwrap_or_else(|e| {
            format!("{{\"ok\":false,\"error\":\"cannot encode response: {e}\"}}")
        });
        out.push('\n');
        writer.write_all(out.as_bytes())?;
    }
    Ok(())
}
