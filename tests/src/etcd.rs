//! A real, single-member etcd for tests: the Debian `etcd` binary on free
//! loopback ports with a data directory of its own, killed (and its
//! directory removed) when dropped. Its log stays with the other
//! children's, in `target/<profile>/e2e-logs`.
//!
//! It uses only the standard library and blocks, so that any test can use
//! it — the broker's store tests as well as end-to-end tests here. etcd
//! missing fails the test with what to install rather than skipping it:
//! the HA store would otherwise go untested without anyone noticing.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

/// How long etcd gets to answer its health check after starting.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A running etcd, killed when dropped.
pub struct Etcd {
    child: Child,
    endpoint: String,
    dir: PathBuf,
}

impl Etcd {
    /// Starts etcd on two free loopback ports (client and peer) and waits
    /// until it reports itself healthy. Fails the test when `etcd` is not
    /// installed or does not become healthy in 30 s.
    pub fn start() -> Etcd {
        let mut last_failure = String::new();
        // A port found free can be taken by someone else before etcd binds
        // it; another pair of ports is then tried.
        for _ in 0..3 {
            match Self::try_start() {
                Ok(etcd) => return etcd,
                Err(failure) => last_failure = failure,
            }
        }
        panic!("etcd did not start: {last_failure}");
    }

    /// The client URL, such as `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The server's process id, to signal it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Freezes the server (SIGSTOP): it keeps its sockets but answers
    /// nothing, like a server cut off by a partition. [`Etcd::resume`] or
    /// the drop undoes it.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        crate::signal(self.pid(), name);
    }

    fn try_start() -> Result<Etcd, String> {
        let dir = scratch_dir();
        // Left over by a killed run whose process id this one reuses.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        // Beside the other children's logs, kept after the test.
        let log_path = crate::log_path("etcd");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("create {}: {e}", log_path.display()))?;
        let [client, peer] = free_ports()?;
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = Command::new("etcd")
            .arg("--name=agora-test")
            .arg(format!("--data-dir={}", dir.join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=agora-test={peer_url}"))
            .arg("--logger=zap")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot run `etcd` ({error}): the store's tests need a real etcd on PATH; \
                     install it with `apt-get install etcd-server` (Debian)"
                )
            });
        let mut etcd = Etcd {
            child,
            endpoint: client_url,
            dir,
        };
        etcd.wait_until_healthy(&log_path)?;
        Ok(etcd)
    }

    /// Polls `/health` on the client port; fails with the log's tail if
    /// etcd exits or stays unhealthy.
    fn wait_until_healthy(&mut self, log: &Path) -> Result<(), String> {
        let deadline = Instant::now() + READY_WITHIN;
        let authority = self.endpoint.trim_start_matches("http://").to_owned();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("etcd exited ({status}); log:\n{}", tail(log)));
            }
            if healthy(&authority) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "etcd was not healthy within {READY_WITHIN:?}; log:\n{}",
                    tail(log)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        // SIGKILL ends a paused process too.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether etcd's `/health` answers `"health":"true"`.
fn healthy(authority: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(authority) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /health HTTP/1.0\r\nHost: {authority}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.contains("\"health\":\"true\"")
}

/// Two loopback ports free right now.
fn free_ports() -> Result<[u16; 2], String> {
    let bind = || TcpListener::bind("127.0.0.1:0").map_err(|e| format!("find a free port: {e}"));
    let (a, b) = (bind()?, bind()?);
    let port = |l: &TcpListener| {
        l.local_addr()
            .map(|a| a.port())
            .map_err(|e| format!("read a bound port: {e}"))
    };
    Ok([port(&a)?, port(&b)?])
}

/// A directory no other etcd of this or another test process uses.
fn scratch_dir() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("agora-etcd-{}-{n}", std::process::id()))
}

/// The last lines of etcd's log, for a failure message.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
