//! The empty-RPC baseline: `grpc.health.v1.Health/Check` served by
//! tonic-health on a server that does nothing else, in a process of its own
//! (this binary, re-run as `agora-bench empty-server`), so that it pays the
//! same loopback TCP, HTTP/2 and process hop as a call to the broker. Acquire
//! latency divided by this one is what Agora itself adds.

use std::{net::SocketAddr, time::Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::transport::{Channel, Endpoint, server::TcpIncoming};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::{
    binaries::Binaries,
    connections::Connections,
    cpu::Metered,
    load::{self, Run, Window},
    process::Process,
    report::Measured,
    stats::Recorder,
};

/// The step name of one Check call.
pub(crate) const STEP: &str = "check";

/// Serves only health on `listen`, printing `listening on URL` first, until
/// the process is killed.
pub(crate) async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    println!("listening on http://{}", listener.local_addr()?);
    let (_reporter, health) = tonic_health::server::health_reporter();
    // TCP_NODELAY as tonic's own `serve(addr)` sets it: the baseline is an
    // empty RPC on a default tonic server.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(health)
        .serve_with_incoming(incoming)
        .await
        .context("the empty-RPC server failed")
}

/// The baseline loop: starts the server, runs `clients` loops of Check on
/// it for `window`, and stops it again before the system under test starts.
pub(crate) async fn baseline(
    binaries: &Binaries,
    clients: usize,
    per_connection: usize,
    window: Window,
) -> anyhow::Result<Measured> {
    let server = start(binaries).await?;
    let run = measure(
        server.url(),
        clients,
        per_connection,
        window,
        server.metered("empty-server")?,
    )
    .await?;
    Ok(Measured::new(
        "empty RPC (bare tonic Health/Check)",
        clients,
        window.duration,
        &run,
        &[STEP],
    ))
}

/// Starts the baseline server as a child process.
async fn start(binaries: &Binaries) -> anyhow::Result<Process> {
    let args = [
        "empty-server".to_owned(),
        "--listen".into(),
        "127.0.0.1:0".into(),
    ];
    Process::start(&binaries.bench, &args, &[], &binaries.log_dir).await
}

/// Runs `clients` closed loops of Check against `url`, `per_connection`
/// of them on each connection as frontends would be, metering `server`.
pub(crate) async fn measure(
    url: &str,
    clients: usize,
    per_connection: usize,
    window: Window,
    server: Metered,
) -> anyhow::Result<Run> {
    let connections = Connections::open(clients, per_connection, || connect(url)).await?;
    load::run(
        clients,
        window,
        &[server, Metered::this()],
        move |index, gate| {
            let channel = connections.get(index);
            async move {
                let mut client = HealthClient::new(channel);
                let clock = gate.ready().await;
                let mut recorder = Recorder::new();
                while clock.running() {
                    let started = Instant::now();
                    let result = client.check(HealthCheckRequest::default()).await;
                    if clock.counts(started) {
                        match result {
                            Ok(_) => {
                                recorder.record(STEP, started.elapsed());
                                recorder.ops += 1;
                            }
                            Err(status) => recorder.error(&status.into()),
                        }
                    }
                }
                Ok(recorder)
            }
        },
    )
    .await
}

async fn connect(url: &str) -> anyhow::Result<Channel> {
    Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("{url} is not a URI"))?
        .connect()
        .await
        .with_context(|| format!("cannot connect to {url}"))
}
