//! A listener served on a thread of its own until stopped: the control socket and the
//! metrics endpoint. A blocking accept cannot be interrupted, so stopping sets a flag and
//! the owner wakes the accept with a connection of its own.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

pub(crate) struct AcceptLoop {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AcceptLoop {
    /// Starts thread `name`, which hands every connection `accept` yields to `serve`
    /// (failed accepts are skipped) until [`AcceptLoop::stop`].
    pub(crate) fn spawn<S>(
        name: &str,
        mut accept: impl FnMut() -> io::Result<S> + Send + 'static,
        mut serve: impl FnMut(S) + Send + 'static,
    ) -> io::Result<AcceptLoop> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || loop {
                let conn = accept();
                if stopping.load(Ordering::Acquire) {
                    break;
                }
                if let Ok(stream) = conn {
                    serve(stream);
                }
            })?;
        Ok(AcceptLoop {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops accepting and joins the thread; `wake` connects to the listener so that the
    /// blocked accept returns. False when it was stopped already.
    pub(crate) fn stop(&mut self, wake: impl FnOnce()) -> bool {
        let Some(t) = self.thread.take() else {
            return false;
        };
        self.stop.store(true, Ordering::Release);
        wake();
        let _ = t.join();
        true
    }
}
