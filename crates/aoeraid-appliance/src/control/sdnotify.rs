//! sd_notify(3) without libsystemd: datagrams like `READY=1` to the unix
//! socket named by $NOTIFY_SOCKET (a path, or an abstract name written with a
//! leading `@`). Outside systemd there is no socket and every call is a
//! harmless no-op.

use std::ffi::OsString;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// From $NOTIFY_SOCKET, as systemd passes it to Type=notify services.
    pub fn from_env() -> io::Result<Notifier> {
        Notifier::from_socket_var(std::env::var_os("NOTIFY_SOCKET"))
    }

    /// From the value $NOTIFY_SOCKET would have; None or empty disables.
    pub fn from_socket_var(var: Option<OsString>) -> io::Result<Notifier> {
        let Some(var) = var.filter(|v| !v.is_empty()) else {
            return Ok(Notifier { target: None });
        };
        let bytes = var.as_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name)?,
            None if bytes.starts_with(b"/") => {
                SocketAddr::from_pathname(std::path::Path::new(&var))?
            }
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "NOTIFY_SOCKET must be an absolute path or start with @",
                ))
            }
        };
        Ok(Notifier {
            target: Some((UnixDatagram::unbound()?, addr)),
        })
    }

    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Sends newline-separated `KEY=value` assignments. Returns false when
    /// not running under systemd.
    pub fn notify(&self, state: &str) -> io::Result<bool> {
        match &self.target {
            None => Ok(false),
            Some((sock, addr)) => sock.send_to_addr(state.as_bytes(), addr).map(|_| true),
        }
    }

    pub fn ready(&self) -> io::Result<bool> {
        self.notify("READY=1")
    }

    pub fn reloading(&self) -> io::Result<bool> {
        self.notify("RELOADING=1")
    }

    pub fn stopping(&self) -> io::Result<bool> {
        self.notify("STOPPING=1")
    }

    /// Free-form status shown by `systemctl status`; one line.
    pub fn status(&self, text: &str) -> io::Result<bool> {
        let line: String = text
            .chars()
            .map(|c| if c == '\n' { ' ' } else { c })
            .collect();
        self.notify(&format!("STATUS={line}"))
    }

    pub fn watchdog(&self) -> io::Result<bool> {
        self.notify("WATCHDOG=1")
    }
}

/// How often to send WATCHDOG=1: half of $WATCHDOG_USEC as systemd
/// recommends, if the watchdog is on and meant for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let pid = std::env::var("WATCHDOG_PID").ok();
    watchdog_interval_from(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        pid.as_deref(),
        std::process::id(),
    )
}

pub fn watchdog_interval_from(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    if let Some(p) = pid {
        if p.trim().parse::<u32>().ok()? != me {
            return None;
        }
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    Some(Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn path_socket_receives_each_state() {
        let dir = std::env::temp_dir().join(format!("ctl-sdnotify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = Notifier::from_socket_var(Some(path.clone().into_os_string())).unwrap();
        assert!(n.enabled());
        assert!(n.ready().unwrap());
        assert_eq!(recv(&server), "READY=1");
        n.status("degraded: data\nrebuilding").unwrap();
        assert_eq!(recv(&server), "STATUS=degraded: data rebuilding");
        n.watchdog().unwrap();
        assert_eq!(recv(&server), "WATCHDOG=1");
        n.stopping().unwrap();
        assert_eq!(recv(&server), "STOPPING=1");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn abstract_socket_with_at_sign() {
        let name = format!("ctl-sdnotify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = Notifier::from_socket_var(Some(format!("@{name}").into())).unwrap();
        n.ready().unwrap();
        assert_eq!(recv(&server), "READY=1");
    }

    #[test]
    fn disabled_outside_systemd() {
        let n = Notifier::from_socket_var(None).unwrap();
        assert!(!n.enabled());
        assert!(!n.ready().unwrap());
        assert!(Notifier::from_socket_var(Some("relative".into())).is_err());
    }

    #[test]
    fn watchdog_interval_is_half_and_checks_pid() {
        assert_eq!(
            watchdog_interval_from(Some("30000000"), None, 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_interval_from(Some("30000000"), Some("7"), 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(watchdog_interval_from(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval_from(None, None, 7), None);
        assert_eq!(watchdog_interval_from(Some("0"), None, 7), None);
    }
}
