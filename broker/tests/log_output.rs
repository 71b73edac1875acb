//! What the real `agora` binary writes to its log when stderr is not a
//! terminal: something for files and log collectors, so no colour escapes.

mod common;

use common::{Running, agora};

/// Where ANSI colour and style sequences begin.
const ESCAPE: &str = "\x1b[";

/// `agora serve` against a master that is not there: it logs at start and
/// keeps running, which is all these tests need.
async fn serve_log(format: &str) -> String {
    let mut command = agora(&[
        "serve",
        "--insecure",
        "--master",
        "http://127.0.0.1:1",
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        format,
    ]);
    command.env_remove("NO_COLOR");
    let server = Running::start(command).await;
    let stderr = server.stderr_with("agora starting").await;
    server.stop().await;
    stderr
}

#[tokio::test]
async fn text_logs_to_a_pipe_carry_no_colour() {
    let stderr = serve_log("text").await;
    assert!(stderr.contains("INFO"), "{stderr}");
    assert!(!stderr.contains(ESCAPE), "{stderr:?}");
}

#[tokio::test]
async fn json_logs_to_a_pipe_carry_no_colour() {
    let stderr = serve_log("json").await;
    assert!(stderr.contains(r#""level":"INFO""#), "{stderr}");
    assert!(!stderr.contains(ESCAPE), "{stderr:?}");
}
