//! `agoractl` against a real `agora dev` on port 0: every command, its
//! table and JSON output, and its exit codes. The broker is the
//! `target/<profile>/agora` that `cargo test --workspace` (or
//! `cargo build -p agora-broker`) builds.

use std::{path::Path, process::Output, time::Duration};

use agora_tests::{
    Process, binary_path,
    client::{Acquire, Frontend, Slot, Task},
    eventually,
};
use serde_json::Value;

/// Runs agoractl against `server` with `args`.
fn agoractl(server: &str, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_agoractl"))
        .args(args)
        .env("AGORA_SERVER", server)
        .env_remove("AGORA_TOKEN")
        .env_remove("AGORACTL_CONFIG")
        .env("HOME", "/nonexistent")
        .output()
        .expect("run agoractl")
}

/// Runs agoractl, expects exit code 0, returns its standard output.
fn ok(server: &str, args: &[&str]) -> String {
    let output = agoractl(server, args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "agoractl {args:?} failed with {:?}: {}{stdout}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs agoractl with `-o json`, returns the parsed answer.
fn json(server: &str, args: &[&str]) -> Value {
    let mut all = vec!["-o", "json"];
    all.extend_from_slice(args);
    let text = ok(server, &all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

/// The rows (after the header) whose first column is `first`.
fn row<'a>(table: &'a str, first: &str) -> Option<&'a str> {
    table
        .lines()
        .skip(1)
        .find(|line| line.split_whitespace().next() == Some(first))
}

async fn agora_dev() -> Process {
    let _ = binary_path("agora");
    Process::start(
        "agora",
        &[
            "dev",
            "--listen",
            "127.0.0.1:0",
            "--agents",
            "2",
            "--agent-resources",
            "cpus:4;mem:4096;disk:10000;ports:[31000-31999]",
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_session_against_agora_dev() {
    let broker = agora_dev().await;
    let url = broker.url().to_owned();
    let server = url.as_str();

    // Namespaces: the dev broker has `default`.
    let table = ok(server, &["get", "namespaces"]);
    assert!(table.starts_with("NAME "), "{table}");
    assert!(row(&table, "default").is_some(), "{table}");
    let answer = json(server, &["get", "ns"]);
    assert_eq!(answer["namespaces"][0]["name"], "default");

    // Agents show once the devcluster has offered them.
    let agents = eventually(Duration::from_secs(30), "two agents offered", || async {
        let answer = json(server, &["get", "agents"]);
        (answer["agents"].as_array().map_or(0, Vec::len) == 2).then_some(answer)
    })
    .await;
    assert_eq!(agents["agents"][0]["pooled"]["cpus"], 4.0);

    // Put a namespace from YAML, read it back.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("batch.yaml");
    std::fs::write(
        &file,
        "name: batch\nlimit: {cpus: 2}\nweight: 2\nlending: {lend: LEND_IDLE, reclaimGrace: 30s}\n",
    )
    .unwrap();
    let put = ok(server, &["put", "namespace", "-f", path(&file)]);
    assert_eq!(put, "namespace/batch configured\n");
    let batch = ok(server, &["get", "ns", "batch"]);
    let line = row(&batch, "batch").expect("batch listed");
    assert!(line.contains("cpus=2"), "{batch}");
    let yaml = ok(server, &["get", "ns", "batch", "-o", "yaml"]);
    assert!(yaml.starts_with("name: batch\n"), "{yaml}");
    assert!(yaml.contains("lend: LEND_IDLE"), "{yaml}");

    // A frontend leases one cpu in batch and launches a task on another.
    let (mut spark, _spark_events) = Frontend::subscribe(server, "spark", &["batch"])
        .await
        .unwrap();
    let leases = spark
        .acquire(
            Acquire::new("batch")
                .slot(Slot::new(1.0, 128.0))
                .wait_for(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    let (mut web, _web_events) = Frontend::subscribe(server, "web", &["default"])
        .await
        .unwrap();
    let lease = web
        .acquire(
            Acquire::new("default")
                .slot(Slot::new(1.0, 64.0))
                .wait_for(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    web.launch(
        &lease[0].id,
        Task::shell("sleeper", "sleep 20").resources(1.0, 64.0),
    )
    .await
    .unwrap();

    let table = ok(server, &["get", "leases"]);
    let line = row(&table, &leases[0].id).expect("the lease is listed");
    assert!(line.contains("spark") && line.contains("batch"), "{table}");
    let answer = json(server, &["get", "leases", "--frontend", "web"]);
    assert_eq!(answer, serde_json::json!({}), "web's lease was launched on");
    let frontends = ok(server, &["get", "frontends"]);
    assert!(
        row(&frontends, "spark").unwrap().contains("Active"),
        "{frontends}"
    );
    let tasks = json(server, &["get", "tasks", "--live"]);
    assert_eq!(tasks["tasks"][0]["frontend"], "web");
    assert_eq!(tasks["tasks"][0]["status"]["clientTaskId"], "sleeper");
    let table = ok(server, &["get", "tasks", "-o", "wide"]);
    assert!(table.contains("sleeper"), "{table}");

    // Top: batch uses one of its two cpus.
    let top = ok(server, &["top"]);
    let line = row(&top, "batch").expect("batch in top");
    assert!(line.contains("1/2") && line.contains("50%"), "{top}");

    // A request that waits, and why: more than any agent holds, and more
    // than batch's limit.
    let (mut mpi, _mpi_events) = Frontend::subscribe(server, "mpi", &["default"])
        .await
        .unwrap();
    let waiting = tokio::spawn(async move {
        mpi.acquire(
            Acquire::new("default")
                .slot(Slot::new(3.0, 128.0).count(3))
                .gang()
                .request_id("job-7")
                .wait_for(Duration::from_secs(60)),
        )
        .await
    });
    let answer = eventually(Duration::from_secs(10), "the gang waits", || async {
        let answer = json(server, &["get", "waiting"]);
        answer["requests"].as_array().is_some().then_some(answer)
    })
    .await;
    let request = &answer["requests"][0];
    assert_eq!(request["frontend"], "mpi");
    assert_eq!(request["requestId"], "job-7");
    let kinds: Vec<&str> = request["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"KIND_CAPACITY"), "{kinds:?}");
    assert!(kinds.contains(&"KIND_GANG"), "{kinds:?}");
    let why = ok(server, &["why", "mpi"]);
    assert!(
        why.starts_with("Request of frontend mpi (request id job-7) in namespace default"),
        "{why}"
    );
    assert!(why.contains("gang:"), "{why}");
    assert!(why.contains("capacity:"), "{why}");
    let table = ok(server, &["get", "waiting"]);
    assert!(row(&table, "mpi").unwrap().contains("job-7"), "{table}");
    let describe = ok(server, &["describe", "namespace", "default"]);
    assert!(
        describe.contains("Waiting demand: 1 request(s)"),
        "{describe}"
    );
    assert!(describe.contains("Waiting slots:  3"), "{describe}");
    assert_eq!(
        ok(server, &["why", "spark"]),
        "No waiting requests of frontend spark: nothing is pending.\n"
    );

    // Draining mpi refuses its waiting gang.
    let drained = ok(server, &["drain", "frontend", "mpi"]);
    assert!(
        drained.starts_with("frontend/mpi drained: 0 lease(s) released, 1 request(s) refused"),
        "{drained}"
    );
    match waiting.await.unwrap() {
        Err(agora_tests::client::Error::Status(status)) => {
            assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
        }
        other => panic!("the waiting gang was not refused: {other:?}"),
    }
    let answer = json(server, &["drain", "frontend", "mpi", "--undo"]);
    assert_eq!(answer["frontend"]["name"], "mpi");

    // Refusals exit 1 with the status and reason.
    let refused = agoractl(server, &["delete", "namespace", "nope"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.starts_with("Error from server (NotFound, reason NAMESPACE_NOT_FOUND)"),
        "{stderr}"
    );
    let in_use = agoractl(server, &["delete", "namespace", "batch"]);
    assert_eq!(in_use.status.code(), Some(1), "batch holds a lease");
    let bad = agoractl(server, &["get", "leases", "-n", "not a name"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("InvalidArgument"),
        "{bad:?}"
    );
    spark
        .release(&[leases[0].id.as_str()], Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        ok(server, &["delete", "ns", "batch"]),
        "namespace/batch deleted\n"
    );

    // Usage errors exit 2.
    assert_eq!(agoractl(server, &["get", "pods"]).status.code(), Some(2));
    let missing = agoractl(server, &["put", "ns", "-f", "/nonexistent.yaml"]);
    assert_eq!(missing.status.code(), Some(2));
    std::fs::write(&file, "name: x\nlimits: {cpus: 2}\n").unwrap();
    let typo = agoractl(server, &["put", "ns", "-f", path(&file)]);
    assert_eq!(typo.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&typo.stderr).contains("limits"),
        "{typo:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_again_when_something_changed_until_interrupted() {
    let broker = agora_dev().await;
    let mut watch = std::process::Command::new(env!("CARGO_BIN_EXE_agoractl"))
        .args(["get", "frontends", "--watch", "--interval", "200ms"])
        .env("AGORA_SERVER", broker.url())
        .env("HOME", "/nonexistent")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start agoractl --watch");
    // Its lines, as they come.
    let stdout = watch.stdout.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = || {
        lines
            .recv_timeout(Duration::from_secs(30))
            .expect("agoractl --watch printed within 30 s")
    };
    assert_eq!(next(), "No frontends found.");
    let (_frontend, _events) = Frontend::subscribe(broker.url(), "spark", &["default"])
        .await
        .unwrap();
    assert_eq!(next(), "", "a blank line between two listings");
    assert!(next().starts_with("NAME "));
    let spark = next();
    assert!(
        spark.starts_with("spark ") && spark.contains("Active"),
        "{spark}"
    );
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &watch.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    assert_eq!(watch.wait().unwrap().code(), Some(0), "Ctrl-C ends a watch");
}

#[tokio::test]
async fn an_unreachable_broker_exits_3() {
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = agoractl(&format!("http://127.0.0.1:{port}"), &["get", "ns"]);
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).starts_with("error: cannot connect"),
        "{output:?}"
    );
}

fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}
