//! A minimal HTTP/1.1 server for `GET /metrics`, on its own thread.
//!
//! Prometheus scrapes once every few seconds, so connections are served one
//! at a time; every read and write has a timeout and requests are capped in
//! size, so a slow or hostile client costs at most a few seconds and a few
//! KiB, never a thread or unbounded memory.

use crate::accept_loop::AcceptLoop;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

const MAX_REQUEST: usize = 8 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Produces the body of `/metrics`; called once per scrape.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

pub struct MetricsServer {
    addr: SocketAddr,
    accepting: AcceptLoop,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port) and starts serving.
    pub fn start(addr: SocketAddr, render: Render) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let accepting = AcceptLoop::spawn(
            "metrics-http",
            move || listener.accept().map(|(stream, _)| stream),
            move |stream| {
                // A failed exchange concerns only that client.
                let _ = serve(stream, &render);
            },
        )?;
        Ok(MetricsServer { addr, accepting })
    }

    /// Serves `metrics`, first refreshing them from a fresh status snapshot
    /// on every scrape (`status` returns None when no snapshot can be had,
    /// e.g. while the data path is busy; the previous values are served).
    pub fn start_with_status(
        addr: SocketAddr,
        metrics: std::sync::Arc<super::Metrics>,
        status: impl Fn() -> Option<crate::control::Status> + Send + Sync + 'static,
    ) -> io::Result<MetricsServer> {
        MetricsServer::start(
            addr,
            Arc::new(move || {
                if let Some(s) = status() {
                    metrics.apply_status(&s);
                }
                metrics.render()
            }),
        )
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and joins the thread.
    pub fn shutdown(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        let addr = self.addr;
        self.accepting.stop(|| {
            let _ = TcpStream::connect_timeout(&addr, IO_TIMEOUT);
        });
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

fn serve(mut stream: TcpStream, render: &Render) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                "request too large\n",
                false,
            );
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    // HEAD answers exactly as GET would, without the body (RFC 9110 9.3.2).
    let head_only = method == "HEAD";
    let mut reply = |status: &str, ctype: &str, body: &str| {
        respond(&mut stream, status, ctype, body, head_only)
    };
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => reply(
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            &render(),
        ),
        ("GET" | "HEAD", "/") => reply(
            "200 OK",
            "text/html; charset=utf-8",
            "<html><body><a href=\"/metrics\">aoeraid metrics</a></body></html>\n",
        ),
        ("GET" | "HEAD", _) => reply("404 Not Found", "text/plain", "not found\n"),
        _ => reply(
            "405 Method Not Allowed",
            "text/plain",
            "only GET and HEAD\n",
        ),
    }
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    ctype: &str,
    body: &str,
    head_only: bool,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if status.starts_with("405") {
        head.push_str("Allow: GET, HEAD\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}
