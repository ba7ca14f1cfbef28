//! The CLI side of the control socket.

use super::protocol::{Request, Response, MAX_LINE};
use super::server::read_line_limited;
use anyhow::{bail, Context};
use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

pub struct Client {
    path: PathBuf,
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Client {
    pub fn connect(path: &Path) -> anyhow::Result<Client> {
        let stream = UnixStream::connect(path).with_context(|| {
            format!(
                "cannot reach the aoeraid daemon at {} (is `aoeraid run` up? point at it with --config FILE or --socket PATH)",
                path.display()
            )
        })?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        Ok(Client {
            path: path.to_path_buf(),
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
        })
    }

    /// Sends one request and waits for its response (which may say the
    /// command was refused: check `ok`).
    pub fn call(&mut self, req: &Request) -> anyhow::Result<Response> {
        let mut line = serde_json::to_string(req)?;
        line.push('\n');
        if let Err(e) = self.writer.write_all(line.as_bytes()) {
            // The daemon may have answered (a refusal) and closed before
            // reading everything; its answer beats the write error.
            return match read_line_limited(&mut self.reader, MAX_LINE) {
                Ok(Some(reply)) => serde_json::from_str(&reply)
                    .with_context(|| format!("malformed response from {}", self.path.display())),
                _ => Err(e).with_context(|| format!("sending to {}", self.path.display())),
            };
        }
        let Some(reply) = read_line_limited(&mut self.reader, MAX_LINE)
            .with_context(|| format!("reading from {}", self.path.display()))?
        else {
            bail!(
                "the daemon at {} closed the connection",
                self.path.display()
            );
        };
        serde_json::from_str(&reply)
            .with_context(|| format!("malformed response from {}", self.path.display()))
    }
}
