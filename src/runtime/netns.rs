//! An isolated network namespace that has nothing but loopback.
//!
//! A dedicated thread calls `unshare(CLONE_NEWNET)` and brings `lo` up. Sockets belong to the namespace they are
//! created in, so listeners bound by that thread serve only the namespace, whichever thread later accepts on them;
//! and a child forked by that thread inherits the namespace, so whatever the agent does, a packet to
//! 169.254.169.254 or an Azure host fails with "Network is unreachable" before it is sent. The thread lives as
//! long as the [`IsolatedNetwork`]; the agent is started with `PR_SET_PDEATHSIG`, so it dies with that thread even
//! if the harness is killed.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send>;

/// A network namespace with only loopback, and the thread that lives in it.
#[derive(Debug)]
pub struct IsolatedNetwork {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl IsolatedNetwork {
    /// Creates the namespace. Needs root (CAP_SYS_ADMIN); the error says so.
    ///
    /// ```no_run
    /// # async fn demo() -> std::io::Result<()> {
    /// let ns = azrw::runtime::netns::IsolatedNetwork::create()?;
    /// let listener = ns.bind_tcp("127.0.0.1:0".parse().unwrap()).await?;
    /// # Ok(()) }
    /// ```
    pub fn create() -> io::Result<IsolatedNetwork> {
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<io::Result<()>>();
        let thread = std::thread::Builder::new().name("azrw-netns".into()).spawn(move || {
            let setup = enter_new_namespace();
            let ok = setup.is_ok();
            let _ = ready_tx.send(setup);
            if ok {
                for job in jobs_rx {
                    job();
                }
            }
        })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(IsolatedNetwork { jobs: Some(jobs_tx), thread: Some(thread) }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(io::Error::other("the namespace thread died during set-up")),
        }
    }

    /// Runs `f` on the namespace thread and returns its result.
    pub async fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> io::Result<R> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let jobs = self.jobs.as_ref().ok_or_else(|| io::Error::other("namespace closed"))?;
        jobs.send(Box::new(move || {
            let _ = tx.send(f());
        }))
        .map_err(|_| io::Error::other("the namespace thread is gone"))?;
        rx.await.map_err(|_| io::Error::other("the namespace thread dropped a job"))
    }

    /// Binds a TCP listener inside the namespace.
    pub async fn bind_tcp(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        self.run(move || TcpListener::bind(addr)).await?
    }

    /// Starts a child inside the namespace. The child is registered with the current tokio runtime (for reaping)
    /// and is killed when the namespace thread ends.
    pub async fn spawn(&self, mut command: tokio::process::Command) -> io::Result<tokio::process::Child> {
        let handle = tokio::runtime::Handle::current();
        // SAFETY: prctl is async-signal-safe; it is the only call made between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        self.run(move || {
            let _guard = handle.enter();
            command.spawn()
        })
        .await?
    }
}

impl Drop for IsolatedNetwork {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop; the namespace goes away with its last process.
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn enter_new_namespace() -> io::Result<()> {
    // SAFETY: unshare affects only the calling thread's namespace membership.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!(
                "cannot create an isolated network namespace (unshare(CLONE_NEWNET): {e}); the process runtime needs \
                 root or CAP_SYS_ADMIN — run as root, or use --runtime docker"
            ),
        ));
    }
    set_loopback_up()
}

fn set_loopback_up() -> io::Result<()> {
    // SAFETY: plain socket + ioctl on a zeroed ifreq naming "lo"; the fd is closed on every path.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let result = if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) < 0 {
            Err(io::Error::last_os_error())
        } else {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
        };
        libc::close(fd);
        result
    }
}
