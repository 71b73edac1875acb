//! Harness for end-to-end tests: starts the real `agora` and `devcluster`
//! binaries as child processes on port 0, reads the address each prints on
//! its first stdout line, and stops them when the test ends.
//!
//! The binaries are the ones `cargo test --workspace` builds next to this
//! test executable (cargo builds a package's binaries for its integration
//! tests), so no test depends on an installed copy.

pub mod crash;
pub mod etcd;
pub mod link;

use std::{
    future::Future,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    time::{Instant, sleep, timeout},
};

/// A child process that is killed when dropped.
pub struct Process {
    name: String,
    child: Child,
    url: String,
    log: PathBuf,
}

impl Process {
    /// Starts `binary` with `args`, waits for its `listening on URL` line.
    pub async fn start(binary: &str, args: &[&str]) -> Process {
        Self::start_with_env(binary, args, &[]).await
    }

    /// Like [`Process::start`], with extra environment variables.
    pub async fn start_with_env(binary: &str, args: &[&str], env: &[(&str, &str)]) -> Process {
        let path = binary_path(binary);
        let log = log_path(binary);
        let stderr = std::fs::File::create(&log).expect("create the child's log file");
        let mut child = Command::new(&path)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", path.display()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let first = timeout(Duration::from_secs(60), lines.next_line())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{binary} printed no address in 60 s; log: {}",
                    log.display()
                )
            })
            .expect("read the child's stdout")
            .unwrap_or_else(|| panic!("{binary} exited before listening; log: {}", log.display()));
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{binary} first line was {first:?}"))
            .to_owned();
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Process {
            name: binary.to_owned(),
            child,
            url,
            log,
        }
    }

    /// The URL from the child's `listening on` line.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the child's stderr goes.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Waits until the child's log holds `text`, failing the test after
    /// `within`.
    pub async fn wait_for_log(&self, text: &str, within: Duration) {
        let what = format!("{:?} in {}", text, self.log.display());
        eventually(within, &what, || async {
            let log = std::fs::read_to_string(&self.log).ok()?;
            log.contains(text).then_some(())
        })
        .await;
    }

    /// The child's OS process id.
    pub fn pid(&self) -> u32 {
        self.child
            .id()
            .unwrap_or_else(|| panic!("{} has exited", self.name))
    }

    /// Freezes the process (SIGSTOP): it keeps its sockets open and
    /// answers nothing, like a host that hangs. The drop still kills it.
    pub fn pause(&self) {
        signal(self.pid(), "STOP");
    }

    /// Waits until the process exits by itself; how it ended.
    pub async fn exited(&mut self) -> std::process::ExitStatus {
        self.child
            .wait()
            .await
            .unwrap_or_else(|error| panic!("cannot wait for {}: {error}", self.name))
    }

    /// Kills the process and waits until it has exited, so that what it
    /// held (its port, its store's lock) is free when this returns. A drop
    /// kills without waiting.
    pub async fn kill(mut self) {
        self.child
            .kill()
            .await
            .unwrap_or_else(|error| panic!("cannot kill {}: {error}", self.name));
    }
}

/// Sends signal `name` (such as `STOP`) to process `pid`, failing the
/// test if it cannot be sent.
fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap_or_else(|error| panic!("run kill -{name}: {error}"));
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// A standalone devcluster on port 0 with `agents` agents.
pub async fn devcluster(agents: u32, extra: &[&str]) -> Process {
    let agents = agents.to_string();
    let mut args = vec!["--listen", "127.0.0.1:0", "--agents", &agents];
    args.extend_from_slice(extra);
    Process::start("devcluster", &args).await
}

/// A broker on port 0 connected to the master at `master_url`, with
/// configuration overrides as `AGORA_*` variables (e.g.
/// `("AGORA_BROKER__POOL_TTL", "60s")`), once it is subscribed to Mesos
/// (before that, calls that need Mesos answer UNAVAILABLE). Authentication
/// is off (`--insecure`); `tests/security.rs` starts brokers with
/// principals.
pub async fn broker(master_url: &str, env: &[(&str, &str)]) -> Process {
    let broker = unsubscribed_broker(master_url, env).await;
    broker.wait_for_log(SERVING_LOG, SETTLE).await;
    broker
}

/// What the broker logs once it serves: subscribed to Mesos, as the calls
/// that need Mesos see it, and its core answering.
const SERVING_LOG: &str = "health: SERVING";

/// Like [`broker`], without waiting for the subscription.
pub async fn unsubscribed_broker(master_url: &str, env: &[(&str, &str)]) -> Process {
    unsubscribed_broker_at(master_url, "127.0.0.1:0", env).await
}

/// Like [`unsubscribed_broker`], listening on `listen`: a broker restarted
/// where it was, as a supervisor restarts a replica.
pub async fn unsubscribed_broker_at(
    master_url: &str,
    listen: &str,
    env: &[(&str, &str)],
) -> Process {
    let args = [
        "serve",
        "--master",
        master_url,
        "--listen",
        listen,
        "--insecure",
    ];
    Process::start_with_env("agora", &args, env).await
}

/// A broker that is killed with SIGKILL and started again, as a supervisor
/// would after a crash: on the same address, against the same master,
/// with the same settings (its `AGORA_STORE__PATH` among them), so that
/// frontends reconnect to the URL they know. Each start writes a log of
/// its own.
pub struct CrashingBroker {
    master_url: String,
    listen: String,
    env: Vec<(String, String)>,
    process: Option<Process>,
}

impl CrashingBroker {
    /// Starts a broker like [`broker`] does, on a port the OS picks; later
    /// starts take the same port.
    pub async fn start(master_url: &str, env: &[(&str, &str)]) -> CrashingBroker {
        let mut broker = CrashingBroker {
            master_url: master_url.to_owned(),
            listen: "127.0.0.1:0".to_owned(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            process: None,
        };
        broker.restart().await;
        let url = broker.url().to_owned();
        broker.listen = url.trim_start_matches("http://").to_owned();
        broker
    }

    /// The broker's URL, the same across restarts.
    pub fn url(&self) -> &str {
        self.running().url()
    }

    /// The running process (for its log).
    pub fn running(&self) -> &Process {
        self.process.as_ref().expect("the broker runs")
    }

    /// Kills the broker with SIGKILL (`kill -9`) and waits until it has
    /// exited: its port and its store are free when this returns.
    pub async fn crash(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill().await;
        }
    }

    /// Starts the broker (again, after [`CrashingBroker::crash`]) and waits
    /// until it serves.
    pub async fn restart(&mut self) {
        assert!(
            self.process.is_none(),
            "crash the broker before restarting it"
        );
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let process = unsubscribed_broker_at(&self.master_url, &self.listen, &env).await;
        process.wait_for_log(SERVING_LOG, SETTLE).await;
        self.process = Some(process);
    }
}

/// A broker on port 0 connected to the master at `master_url`, configured
/// by the TOML file at `config` (principals, TLS), with authentication on.
pub async fn broker_with_config(master_url: &str, config: &Path, env: &[(&str, &str)]) -> Process {
    let config = config.to_str().expect("a UTF-8 configuration path");
    let args = [
        "serve",
        "--master",
        master_url,
        "--listen",
        "127.0.0.1:0",
        "--config",
        config,
    ];
    let broker = Process::start_with_env("agora", &args, env).await;
    broker.wait_for_log(SERVING_LOG, SETTLE).await;
    broker
}

/// How long end-to-end tests wait for the cluster to do something.
pub const SETTLE: Duration = Duration::from_secs(30);

/// The Admin service of the broker at `broker_url` (authentication off).
pub async fn admin(
    broker_url: &str,
) -> agora_client::api::admin_client::AdminClient<tonic::transport::Channel> {
    agora_client::api::admin_client::AdminClient::connect(broker_url.to_owned())
        .await
        .expect("connect to the Admin service")
}

/// Subscribes frontend `name` in namespace `default`.
pub async fn frontend(
    broker_url: &str,
    name: &str,
) -> (agora_client::Frontend, agora_client::Events) {
    agora_client::Frontend::subscribe(broker_url, name, &["default"])
        .await
        .unwrap_or_else(|e| panic!("subscribe {name}: {e}"))
}

/// One lease of `cpus` and `mem_mb` in namespace `default`, waiting up to
/// [`SETTLE`] for capacity.
pub async fn one_lease(
    frontend: &mut agora_client::Frontend,
    cpus: f64,
    mem_mb: f64,
) -> agora_client::api::Lease {
    let request = agora_client::Acquire::new("default")
        .slot(agora_client::Slot::new(cpus, mem_mb))
        .wait_for(SETTLE);
    let mut leases = frontend
        .acquire(request)
        .await
        .expect("a lease within the settle time");
    leases.remove(0)
}

/// Whether `status` carries the `agora.v1.ErrorReason` named `reason`. The
/// reason travels as a plain string inside the serialized
/// `google.rpc.ErrorInfo` of the status details, so finding its bytes there
/// is enough, without a decoder for the details.
pub fn has_reason(status: &tonic::Status, reason: &str) -> bool {
    status
        .details()
        .windows(reason.len())
        .any(|window| window == reason.as_bytes())
}

/// The gRPC status of a client error, failing the test on any other error.
pub fn as_status(error: agora_client::Error) -> tonic::Status {
    match error {
        agora_client::Error::Status(status) => status,
        other => panic!("expected a status, got {other}"),
    }
}

/// Polls `check` until it returns `Some`, failing the test after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        sleep(Duration::from_millis(50)).await;
    }
}

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps")
        .to_path_buf()
}

/// GETs `path` from the HTTP server at `base_url` (e.g. the devcluster's
/// `/state`) and parses the body as JSON.
pub async fn get_json(base_url: &str, path: &str) -> serde_json::Value {
    request_json(base_url, "GET", path, None).await
}

/// POSTs `body` as JSON to `path` (e.g. the devcluster's
/// `/devcluster/agents`) and parses the answer as JSON.
pub async fn post_json(base_url: &str, path: &str, body: &serde_json::Value) -> serde_json::Value {
    request_json(base_url, "POST", path, Some(body)).await
}

/// One HTTP/1.0 exchange, failing the test on anything but a 2xx status;
/// the answer's body.
async fn request(
    base_url: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> String {
    use tokio::io::AsyncWriteExt;
    let authority = base_url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .unwrap_or_else(|e| panic!("connect to {authority}: {e}"));
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut response = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut response)
        .await
        .expect("read the response");
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        head.starts_with("HTTP/1.")
            && head
                .split_whitespace()
                .nth(1)
                .is_some_and(|code| code.starts_with('2')),
        "{method} {path}: {head}"
    );
    body.to_owned()
}

/// [`request`] with a JSON answer.
async fn request_json(
    base_url: &str,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> serde_json::Value {
    let text = request(base_url, method, path, body).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path} is not JSON: {e}"))
}

/// PUTs `body` as JSON to `path` (e.g. an agent's revocable estimate on the
/// devcluster); the answer's body as text.
pub async fn put_json(base_url: &str, path: &str, body: &serde_json::Value) -> String {
    request(base_url, "PUT", path, Some(body)).await
}

/// GETs `path` and returns the body as text (e.g. Prometheus metrics).
pub async fn get_text(base_url: &str, path: &str) -> String {
    request(base_url, "GET", path, None).await
}

/// The path of a binary built by `cargo test --workspace`.
pub fn binary_path(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace` so cargo builds it",
        path.display()
    );
    path
}

pub(crate) fn log_path(name: &str) -> PathBuf {
    let dir = target_dir().join("e2e-logs");
    std::fs::create_dir_all(&dir).expect("create target/<profile>/e2e-logs");
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    dir.join(format!("{name}-{}-{stamp}.log", std::process::id()))
}

pub use agora_client as client;
