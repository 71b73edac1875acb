//! A request carrying a W3C `traceparent` is exported over OTLP as part of
//! the caller's trace: the broker's request span is a child of the caller's
//! span, and the handler's span a child of that.

use std::{sync::Arc, time::Duration};

use agora_tests::{broker, client, devcluster, eventually};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    trace::v1::Span,
};
use tokio::{net::TcpListener, sync::Mutex};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// Receives OTLP trace exports and keeps every span.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans);
        self.spans.lock().await.extend(spans);
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn collector() -> (Collector, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let collector = Collector::default();
    let service = TraceServiceServer::new(collector.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (collector, format!("http://{address}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_trace_continues_into_the_broker() {
    let (collector, endpoint) = collector().await;
    let master = devcluster(1, &[]).await;
    let broker = broker(
        master.url(),
        &[("AGORA_TELEMETRY__OTLP_ENDPOINT", &endpoint)],
    )
    .await;

    let mut raw = client::connect(broker.url()).await.unwrap();
    let mut request = Request::new(client::api::ListAgentsRequest {
        session_id: "no-such-session".into(),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{CALLER_SPAN}-01").parse().unwrap(),
    );
    let status = raw.list_agents(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);

    let spans = eventually(
        Duration::from_secs(30),
        "the request's spans exported",
        || {
            let collector = collector.clone();
            async move {
                let spans = collector.spans.lock().await.clone();
                let ours: Vec<Span> = spans
                    .into_iter()
                    .filter(|s| hex(&s.trace_id) == TRACE_ID)
                    .collect();
                (ours.len() >= 2).then_some(ours)
            }
        },
    )
    .await;
    let request_span = spans
        .iter()
        .find(|s| s.name == "grpc.request")
        .expect("the server span of the request");
    assert_eq!(hex(&request_span.parent_span_id), CALLER_SPAN);
    let handler = spans
        .iter()
        .find(|s| s.name == "list_agents")
        .expect("the handler's span");
    assert_eq!(handler.parent_span_id, request_span.span_id);
}
