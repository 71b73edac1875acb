//! A minimal Mesos scheduler HTTP client for the integration tests: one
//! hyper HTTP/1.1 connection per request, RecordIO decoding of the
//! SUBSCRIBE stream, and helpers to build calls.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use agora_proto::mesos::v1::framework_info::Capability;
use agora_proto::mesos::v1::framework_info::capability::Type as CapabilityType;
use agora_proto::mesos::v1::scheduler::{Call, Event, call, event};
use agora_proto::mesos::v1::{FrameworkId, FrameworkInfo, Offer, TaskStatus};
use agora_proto::mesos_json::{from_json, to_json};
use agora_proto::wire::recordio::Decoder;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prost::Message;

pub(crate) const JSON: &str = "application/json";
pub(crate) const PROTOBUF: &str = "application/x-protobuf";

/// A devcluster with fast clocks for tests.
pub(crate) fn fast_config() -> devcluster::Config {
    devcluster::Config {
        agents: 1,
        allocation_interval: Duration::from_millis(100),
        heartbeat_interval: Duration::from_secs(15),
        status_update_retry_interval: Duration::from_millis(300),
        ..devcluster::Config::default()
    }
}

pub(crate) async fn start(config: devcluster::Config) -> devcluster::Cluster {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    devcluster::Cluster::start(config, listener).await.unwrap()
}

/// Sends one request on a fresh connection.
pub(crate) async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Response<Incoming> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("Host", addr.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    sender
        .send_request(builder.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap()
}

/// Sends a request and reads the whole answer.
pub(crate) async fn request_full(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, String) {
    let response = request(addr, method, path, headers, body).await;
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

pub(crate) fn encode(media: &str, call: &Call) -> Vec<u8> {
    if media == JSON {
        to_json(call)
    } else {
        call.encode_to_vec()
    }
}

pub(crate) fn decode(media: &str, bytes: &[u8]) -> Event {
    if media == JSON {
        from_json(bytes).unwrap()
    } else {
        Event::decode(bytes).unwrap()
    }
}

pub(crate) fn framework_info(roles: &[&str]) -> FrameworkInfo {
    FrameworkInfo {
        user: "tester".into(),
        name: "devcluster-test".into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        failover_timeout: Some(3600.0),
        capabilities: vec![Capability {
            r#type: Some(CapabilityType::MultiRole as i32),
        }],
        ..Default::default()
    }
}

pub(crate) fn subscribe_call(info: FrameworkInfo) -> Call {
    Call {
        framework_id: info.id.clone(),
        r#type: Some(call::Type::Subscribe as i32),
        subscribe: Some(call::Subscribe {
            framework_info: info,
            suppressed_roles: Vec::new(),
        }),
        ..Default::default()
    }
}

/// A live SUBSCRIBE stream.
pub(crate) struct Subscription {
    pub(crate) addr: SocketAddr,
    pub(crate) media: &'static str,
    pub(crate) stream_id: String,
    pub(crate) framework_id: String,
    pub(crate) content_type: String,
    body: Incoming,
    decoder: Decoder,
    pending: std::collections::VecDeque<Event>,
}

pub(crate) async fn subscribe(
    addr: SocketAddr,
    media: &'static str,
    info: FrameworkInfo,
) -> Subscription {
    let body = encode(media, &subscribe_call(info));
    let response = request(
        addr,
        "POST",
        "/api/v1/scheduler",
        &[("Content-Type", media), ("Accept", media)],
        body,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("content-length").is_none());
    assert_eq!(
        response.headers().get("transfer-encoding").unwrap(),
        "chunked"
    );
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    let stream_id = response.headers()["mesos-stream-id"]
        .to_str()
        .unwrap()
        .to_string();
    let mut subscription = Subscription {
        addr,
        media,
        stream_id,
        framework_id: String::new(),
        content_type,
        body: response.into_body(),
        decoder: Decoder::new(64 << 20),
        pending: Default::default(),
    };
    let first = subscription.next_event().await.expect("SUBSCRIBED");
    assert_eq!(
        first.r#type,
        Some(event::Type::Subscribed as i32),
        "{first:?}"
    );
    subscription.framework_id = first.subscribed.unwrap().framework_id.value;
    subscription
}

impl Subscription {
    /// The next event, or `None` when the stream ended.
    pub(crate) async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if let Some(record) = self.decoder.next_record().unwrap() {
                return Some(decode(self.media, &record));
            }
            let frame = tokio::time::timeout(Duration::from_secs(20), self.body.frame())
                .await
                .expect("an event within 20 s")?;
            if let Ok(data) = frame.unwrap().into_data() {
                self.decoder.feed(&data);
            }
        }
    }

    /// The next event of `kind`, skipping heartbeats and others.
    pub(crate) async fn next_of(&mut self, kind: event::Type) -> Event {
        loop {
            let event = self.next_event().await.expect("stream open");
            if event.r#type == Some(kind as i32) {
                return event;
            }
        }
    }

    /// Events of `kind` arriving within `window` (others are dropped).
    pub(crate) async fn collect_for(&mut self, kind: event::Type, window: Duration) -> Vec<Event> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, self.next_event()).await {
            if event.r#type == Some(kind as i32) {
                out.push(event);
            }
        }
        out
    }

    pub(crate) async fn next_offers(&mut self) -> Vec<Offer> {
        self.next_of(event::Type::Offers)
            .await
            .offers
            .unwrap()
            .offers
    }

    pub(crate) async fn next_update(&mut self) -> TaskStatus {
        self.next_of(event::Type::Update)
            .await
            .update
            .unwrap()
            .status
    }

    /// Sends a call with this subscription's ids; returns status and body.
    pub(crate) async fn call(&self, mut call: Call) -> (StatusCode, String) {
        call.framework_id = Some(FrameworkId {
            value: self.framework_id.clone(),
        });
        request_full(
            self.addr,
            "POST",
            "/api/v1/scheduler",
            &[
                ("Content-Type", self.media),
                ("Mesos-Stream-Id", &self.stream_id),
            ],
            encode(self.media, &call),
        )
        .await
    }

    pub(crate) async fn acknowledge(&self, status: &TaskStatus) -> StatusCode {
        let call = Call {
            r#type: Some(call::Type::Acknowledge as i32),
            acknowledge: Some(call::Acknowledge {
                agent_id: status.agent_id.clone().unwrap(),
                task_id: status.task_id.clone(),
                uuid: status.uuid.clone().unwrap(),
            }),
            ..Default::default()
        };
        self.call(call).await.0
    }
}

pub(crate) fn launch_call(
    offer: &Offer,
    tasks: Vec<agora_proto::mesos::v1::TaskInfo>,
    refuse: Option<f64>,
) -> Call {
    use agora_proto::mesos::v1::offer::{Operation, operation};
    Call {
        r#type: Some(call::Type::Accept as i32),
        accept: Some(call::Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![Operation {
                r#type: Some(operation::Type::Launch as i32),
                launch: Some(operation::Launch { task_infos: tasks }),
                ..Default::default()
            }],
            filters: refuse.map(|r| agora_proto::mesos::v1::Filters {
                refuse_seconds: Some(r),
            }),
        }),
        ..Default::default()
    }
}

pub(crate) fn command_task(
    id: &str,
    offer: &Offer,
    resources: &str,
    command: &str,
) -> agora_proto::mesos::v1::TaskInfo {
    agora_proto::mesos::v1::TaskInfo {
        name: id.into(),
        task_id: agora_proto::mesos::v1::TaskId { value: id.into() },
        agent_id: offer.agent_id.clone(),
        resources: devcluster::resources::parse_resources(resources)
            .unwrap()
            .to_protos(),
        command: Some(agora_proto::mesos::v1::CommandInfo {
            value: Some(command.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) fn state_name(status: &TaskStatus) -> &'static str {
    agora_proto::mesos::v1::TaskState::try_from(status.state)
        .unwrap()
        .as_str_name()
}

/// Sends an operator call to `/api/v1`; returns the status and the decoded
/// response when there is a body.
pub(crate) async fn operator(
    addr: SocketAddr,
    media: &str,
    call: &agora_proto::mesos::v1::master::Call,
) -> (
    StatusCode,
    Option<agora_proto::mesos::v1::master::Response>,
    String,
) {
    let body = if media == JSON {
        to_json(call)
    } else {
        call.encode_to_vec()
    };
    let response = request(
        addr,
        "POST",
        "/api/v1",
        &[("Content-Type", media), ("Accept", media)],
        body,
    )
    .await;
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let decoded = (status == StatusCode::OK && !bytes.is_empty()).then(|| {
        if media == JSON {
            from_json(&bytes).unwrap()
        } else {
            agora_proto::mesos::v1::master::Response::decode(&bytes[..]).unwrap()
        }
    });
    (
        status,
        decoded,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// A framework that also has the capabilities `extra`.
pub(crate) fn framework_with(roles: &[&str], extra: &[CapabilityType]) -> FrameworkInfo {
    let mut info = framework_info(roles);
    info.capabilities.extend(extra.iter().map(|c| Capability {
        r#type: Some(*c as i32),
    }));
    info
}

/// A `devcluster` binary running as a child of the test, with the address
/// it printed. Dropping it stops it gracefully (SIGTERM) and reaps it.
pub(crate) struct Standalone {
    child: std::process::Child,
    pub(crate) addr: SocketAddr,
}

impl Standalone {
    /// Starts the binary on port 0 with fast allocation and `args`, and
    /// waits for its `listening on` line.
    pub(crate) fn start(args: &[&str]) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_devcluster"))
            .args(["--listen", "127.0.0.1:0", "--allocation-interval", "100ms"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("devcluster starts");
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut first)
            .expect("devcluster prints its address");
        let addr = first
            .trim_end()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .parse()
            .expect("a socket address");
        Self { child, addr }
    }

    /// The process id of the devcluster.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Ends the devcluster with SIGKILL, as a crash or `kill -9` would:
    /// no shutdown code of its own runs. Reaps it.
    pub(crate) fn kill_hard(&mut self) {
        self.child.kill().expect("SIGKILL the devcluster");
        self.child.wait().expect("reap the devcluster");
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            #[allow(unsafe_code)]
            // SAFETY: kill(2) on our own child's pid (SIGTERM: graceful);
            // harmless when it was already killed and reaped.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let _ = self.child.wait();
    }
}

/// A process seen alive once, recognised again by its start time so that
/// a recycled pid is not mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcessId {
    pub(crate) pid: i32,
    start_time: u64,
}

impl ProcessId {
    /// The live (non-zombie) process `pid`, if there is one.
    pub(crate) fn of(pid: i32) -> Option<Self> {
        let (state, start_time) = proc_stat(pid)?;
        (!matches!(state, 'Z' | 'X')).then_some(Self { pid, start_time })
    }

    /// Whether the process still runs: a zombie, a process that is gone
    /// and a pid now used by another process all count as dead.
    pub(crate) fn is_alive(&self) -> bool {
        Self::of(self.pid) == Some(*self)
    }

    /// SIGKILLs the process if it is still this one (test cleanup).
    pub(crate) fn kill(&self) {
        if self.is_alive() {
            #[allow(unsafe_code)]
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
            }
        }
    }
}

/// The fields of `/proc/<pid>/stat` after the command name, from field 3
/// (the state) on; `None` when there is no such process.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // the fields after it start past the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// State letter and start time (clock ticks since boot) of `pid`.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let fields = stat_fields(pid)?;
    let state = fields.first()?.chars().next()?;
    // Field 22, counted from field 3.
    let start_time = fields.get(19)?.parse().ok()?;
    Some((state, start_time))
}

/// The live (non-zombie) processes of process group `group`.
pub(crate) fn group_members(group: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            // Field 5, counted from field 3, is the process group.
            stat_fields(pid).is_some_and(|fields| {
                fields.get(2).and_then(|g| g.parse().ok()) == Some(group)
                    && !matches!(fields[0].as_str(), "Z" | "X")
            })
        })
        .collect()
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes;
/// returns whether it held.
pub(crate) async fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A scratch directory removed when the test ends.
pub(crate) struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub(crate) fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("devcluster-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills the processes still alive when the test ends, pass or fail, so
/// a failing run leaves no `sleep 600` behind.
pub(crate) struct Reaper(pub Vec<ProcessId>);

impl Drop for Reaper {
    fn drop(&mut self) {
        self.0.iter().for_each(ProcessId::kill);
    }
}

/// Reads the pid a task wrote to `file`, once it is complete.
pub(crate) async fn pid_in(file: &std::path::Path) -> ProcessId {
    let mut found = None;
    let written = eventually(Duration::from_secs(10), || {
        found = std::fs::read_to_string(file)
            .ok()
            .filter(|text| text.ends_with('\n'))
            .and_then(|text| text.trim().parse().ok())
            .and_then(ProcessId::of);
        found.is_some()
    })
    .await;
    assert!(written, "no live process id in {}", file.display());
    found.expect("checked above")
}

/// A scheduler `Call` written as JSON, in protobuf: through a dynamic
/// message, so that absent required fields stay absent on the wire (a
/// prost `Call` always writes them).
pub(crate) fn call_json_to_protobuf(json: &str) -> Vec<u8> {
    use prost_reflect::{DescriptorPool, DynamicMessage};
    let pool = DescriptorPool::decode(agora_proto::FILE_DESCRIPTOR_SET).unwrap();
    let descriptor = pool.get_message_by_name("mesos.v1.scheduler.Call").unwrap();
    let mut deserializer = serde_json::Deserializer::from_str(json);
    DynamicMessage::deserialize(descriptor, &mut deserializer)
        .unwrap()
        .encode_to_vec()
}
