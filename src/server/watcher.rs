//! The watcher: one thread that polls every parked (idle) connection and
//! hands a connection whose next request arrives to a thread: a new one in
//! threaded mode, a pool worker in pool mode.
//!
//! It also applies the idle timeout to parked connections and, after
//! connections have closed, gives freed heap memory back to the system
//! (glibc keeps it otherwise, so a burst of connections would leave the
//! server's RSS high long after they are gone).

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{join_within, Mode, Shared};

/// How a connection with a request gets a thread.
#[derive(Clone)]
enum Dispatch {
    /// A thread of its own, kept while requests come within the linger.
    Threads(Arc<Shared>),
    /// The pool's work queue (0 tells a worker to stop).
    Pool(crossbeam_channel::Sender<u64>),
}

impl Dispatch {
    fn send(&self, id: u64) {
        match self {
            Dispatch::Pool(tx) => {
                let _ = tx.send(id);
            }
            Dispatch::Threads(sh) => {
                let Some(conn) = sh.conns.lock().get(&id).cloned() else { return };
                sh.spawn_for(id, conn, Some(sh.limits.linger));
            }
        }
    }
}

/// The watcher thread and, in pool mode, the workers.
pub(super) struct Watcher {
    shared: Arc<Shared>,
    dispatch: Dispatch,
    workers: usize,
    threads: Vec<JoinHandle<()>>,
}

impl Watcher {
    pub(super) fn start(shared: &Arc<Shared>, mode: Mode) -> std::io::Result<Watcher> {
        let mut threads = Vec::new();
        let (dispatch, workers) = match mode {
            Mode::Pool { workers } => {
                let workers = workers.max(1);
                let (tx, rx) = crossbeam_channel::unbounded::<u64>();
                for n in 0..workers {
                    let (sh, rx) = (shared.clone(), rx.clone());
                    threads.push(
                        std::thread::Builder::new()
                            .name(format!("rpyc-worker-{n}"))
                            .spawn(move || work(&sh, &rx))?,
                    );
                }
                (Dispatch::Pool(tx), workers)
            }
            _ => (Dispatch::Threads(shared.clone()), 0),
        };
        let (sh, d) = (shared.clone(), dispatch.clone());
        threads.push(std::thread::Builder::new().name("rpyc-watcher".into()).spawn(move || watch(&sh, &d))?);
        Ok(Watcher { shared: shared.clone(), dispatch, workers, threads })
    }

    /// Gives connection `id` a thread now.
    pub(super) fn dispatch(&self, id: u64) {
        self.dispatch.send(id);
    }

    /// Stops the watcher and the workers, waiting at most `wait` for
    /// them (a worker may still be inside a handler).
    pub(super) fn stop(self, wait: Duration) {
        if let Dispatch::Pool(tx) = &self.dispatch {
            for _ in 0..self.workers {
                let _ = tx.send(0);
            }
        }
        self.shared.watcher_wake.wake();
        join_within(self.threads, wait);
    }
}

/// A pool worker: serves what each connection it is handed has buffered,
/// then parks it again.
fn work(sh: &Arc<Shared>, rx: &crossbeam_channel::Receiver<u64>) {
    while let Ok(id) = rx.recv() {
        if id == 0 {
            return;
        }
        let Some(conn) = sh.conns.lock().get(&id).cloned() else { continue };
        sh.serve_on_this_thread(id, conn, Some(Duration::ZERO));
    }
}

/// How often the watcher wakes with nothing to do (shutdown and idle
/// timeouts are noticed within this).
const TICK: Duration = Duration::from_secs(1);

fn watch(sh: &Arc<Shared>, dispatch: &Dispatch) {
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let mut ids: Vec<u64> = Vec::new();
    let mut last_trim = Instant::now();
    while !sh.stopping() {
        fds.clear();
        ids.clear();
        fds.push(libc::pollfd { fd: sh.watcher_wake.rx.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        let mut wait = TICK;
        let now = Instant::now();
        let mut expired = Vec::new();
        {
            let conns = sh.conns.lock();
            for (id, since) in sh.parked.lock().iter() {
                if let Some(limit) = sh.limits.idle_timeout {
                    let idle = now.saturating_duration_since(*since);
                    if idle >= limit {
                        expired.push(*id);
                        continue;
                    }
                    wait = wait.min(limit - idle);
                }
                if let Some(fd) = conns.get(id).and_then(|c| c.fileno()) {
                    fds.push(libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
                    ids.push(*id);
                }
            }
        }
        for id in expired {
            let conn = sh.conns.lock().get(&id).cloned();
            match conn {
                Some(c) => sh.end(id, &c, "idle timeout"),
                None => {
                    sh.parked.lock().remove(&id);
                }
            }
        }
        let ms = wait.as_millis().clamp(1, TICK.as_millis()) as libc::c_int;
        // SAFETY: `fds` is a valid, initialised array of its length.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if rc > 0 {
            if fds[0].revents != 0 {
                sh.watcher_wake.drain();
            }
            let ready: Vec<u64> = {
                let mut parked = sh.parked.lock();
                fds[1..]
                    .iter()
                    .zip(&ids)
                    .filter(|(p, id)| p.revents != 0 && parked.remove(id).is_some())
                    .map(|(_, id)| *id)
                    .collect()
            };
            for id in ready {
                dispatch.send(id);
            }
        }
        if last_trim.elapsed() >= TICK && sh.closed_any.swap(false, std::sync::atomic::Ordering::AcqRel) {
            give_back_memory();
            last_trim = Instant::now();
        }
    }
    // Shutting down: whatever is still parked ends now.
    let parked: Vec<u64> = sh.parked.lock().drain().map(|(id, _)| id).collect();
    for id in parked {
        let conn = sh.conns.lock().get(&id).cloned();
        if let Some(c) = conn {
            sh.end(id, &c, "server shutting down");
        }
    }
}

/// Returns freed heap pages to the system.
fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
