//! The real `agora` binary with every `AGORA_*` variable its `--help`
//! advertises set at once, next to variables other programs put in the
//! environment: each mode gets past loading its configuration and the
//! variables take effect. Nested `AGORA_<SECTION>__<KEY>` variables that
//! name no key still stop it.

mod common;

use std::{collections::BTreeSet, path::Path, time::Duration};

use common::{Running, WAIT, agora};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::timeout,
};

/// Set where containers and systemd units set them; none is `agora`'s.
const UNRELATED: [(&str, &str); 3] = [
    ("AGORA_UNRELATED", "x"),
    ("AGORA_VERSION", "1.2"),
    ("AGORA_TOKEN", "a-client-token"),
];

/// Read from `AGORA_CONFIG`'s file; the devcluster shows it.
const FRAMEWORK_NAME: &str = "from-agora-config";

/// A value for each advertised variable: Mesos at `master`, the file at
/// `config`, and everything observable from outside.
fn advertised_values(master: &str, config: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("AGORA_CONFIG", config.display().to_string()),
        ("AGORA_MASTER", master.to_owned()),
        ("AGORA_INSECURE", "true".to_owned()),
        // Nothing listens there: export fails quietly, as it must.
        ("AGORA_OTLP_ENDPOINT", "http://127.0.0.1:1".to_owned()),
        ("AGORA_LOG_FORMAT", "json".to_owned()),
        ("AGORA_MESOS_ENCODING", "json".to_owned()),
        ("AGORA_FRAMEWORK_ID", "framework-from-env".to_owned()),
        ("AGORA_LISTEN", "127.0.0.1:0".to_owned()),
    ]
}

/// A configuration file that only `AGORA_CONFIG` names.
fn config_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("agora.toml");
    std::fs::write(
        &path,
        format!("[mesos]\nframework_name = \"{FRAMEWORK_NAME}\"\n"),
    )
    .expect("write agora.toml");
    path
}

/// `agora <mode> <args>` with every advertised variable and the unrelated
/// ones set.
fn agora_with_everything(mode: &[&str], master: &str, config: &Path) -> tokio::process::Command {
    let mut command = agora(mode);
    command.envs(advertised_values(master, config));
    command.envs(UNRELATED);
    command
}

/// The broker's `agora starting` line, which names its effective settings.
fn starting_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|line| line.contains("agora starting"))
        .expect("the starting line")
}

/// Every log line is a JSON object, which `AGORA_LOG_FORMAT=json` asks for.
fn assert_json_lines(stderr: &str) {
    for line in stderr.lines() {
        assert!(
            line.starts_with('{') && line.ends_with('}'),
            "not a JSON log line: {line:?}"
        );
    }
}

#[tokio::test]
async fn every_advertised_variable_is_set_by_these_tests() {
    let mut advertised = BTreeSet::new();
    for mode in ["serve", "dev", "teardown"] {
        let output = agora(&[mode, "--help"])
            .output()
            .await
            .expect("agora --help");
        let help = String::from_utf8(output.stdout).expect("help is UTF-8");
        for shown in help.split("[env: ").skip(1) {
            let name = shown.split('=').next().expect("[env: NAME=]");
            advertised.insert(name.to_owned());
        }
    }
    let covered: BTreeSet<String> = advertised_values("", Path::new(""))
        .into_iter()
        .map(|(name, _)| name.to_owned())
        .collect();
    assert_eq!(advertised, covered);
}

#[tokio::test]
async fn serve_starts_with_every_advertised_variable_and_unrelated_ones() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let config = config_file(dir.path());
    // Nothing listens there: the broker keeps retrying, and serves anyway.
    let masters = "http://127.0.0.1:1,http://127.0.0.1:2";
    let server = Running::start(agora_with_everything(&["serve"], masters, &config)).await;
    // AGORA_LISTEN: port 0 was asked for, not the default 50051.
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.url
    );
    assert!(!server.url.ends_with(":50051"), "{}", server.url);
    let stderr = server.stderr_with("agora starting").await;
    server.stop().await;
    assert!(!stderr.contains("unknown field"), "{stderr}");
    // AGORA_INSECURE: without it serve exits 64 for want of principals.
    assert!(
        stderr.contains("authentication is off (--insecure)"),
        "{stderr}"
    );
    assert_json_lines(&stderr);
    let starting = starting_line(&stderr);
    assert!(starting.contains(r#""encoding":"Json""#), "{starting}");
    // AGORA_MASTER, split at the comma (quotes escaped in the JSON).
    assert!(
        starting.contains(r#"http://127.0.0.1:1\""#)
            && starting.contains(r#"http://127.0.0.1:2\""#),
        "{starting}"
    );
}

#[tokio::test]
async fn dev_starts_with_every_advertised_variable_and_unrelated_ones() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let config = config_file(dir.path());
    // AGORA_MASTER, AGORA_INSECURE and AGORA_FRAMEWORK_ID belong to other
    // modes: `agora dev` must not trip over them.
    let command = agora_with_everything(&["dev", "--agents", "1"], "http://127.0.0.1:1", &config);
    let server = Running::start(command).await;
    assert!(!server.url.ends_with(":50051"), "{}", server.url);
    let stderr = server.stderr_with("agora starting").await;
    server.stop().await;
    assert_json_lines(&stderr);
    let starting = starting_line(&stderr);
    assert!(starting.contains(r#""encoding":"Json""#), "{starting}");
    assert!(!starting.contains(r#"http://127.0.0.1:1\""#), "{starting}");
}

#[tokio::test]
async fn teardown_takes_its_master_framework_and_file_from_the_environment() {
    let cluster = devcluster::Cluster::start(
        devcluster::Config {
            agents: 1,
            ..Default::default()
        },
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .expect("start the devcluster");
    let dir = tempfile::tempdir().expect("a scratch directory");
    let config = config_file(dir.path());
    let output = timeout(
        WAIT,
        agora_with_everything(&["teardown"], &cluster.url(), &config).output(),
    )
    .await
    .expect("agora teardown finishes")
    .expect("run agora teardown");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("framework framework-from-env torn down"),
        "{stdout}"
    );
    assert_json_lines(&stderr);
    let state = get(&cluster.url(), "/state").await;
    let completed = state
        .split_once("\"completed_frameworks\"")
        .expect("/state lists completed frameworks")
        .1;
    assert!(
        completed.contains(r#""id":"framework-from-env""#),
        "{completed}"
    );
    assert!(
        completed.contains(&format!(r#""name":"{FRAMEWORK_NAME}""#)),
        "{completed}"
    );
    cluster.shutdown().await.expect("stop the devcluster");
}

#[tokio::test]
async fn a_nested_variable_that_names_no_key_stops_agora_naming_it() {
    let output = agora(&["dev"])
        .env("AGORA_MESOS__FRAMWORK_NAME", "typo")
        .envs(UNRELATED)
        .output()
        .await
        .expect("run agora dev");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("AGORA_MESOS__FRAMWORK_NAME"), "{stderr}");
    assert!(stderr.contains("framwork_name"), "{stderr}");
}

/// The body of an HTTP/1.0 GET of `path` on the server at `base_url`.
async fn get(base_url: &str, path: &str) -> String {
    let authority = base_url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(authority).await.expect("connect");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n").as_bytes())
        .await
        .expect("send the request");
    let mut response = String::new();
    timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("an answer in time")
    .expect("read the answer");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_else(|| panic!("not HTTP: {response:?}"))
}
