//! Logs and traces.
//!
//! Logs go to stderr through `tracing-subscriber`, filtered by `RUST_LOG`
//! (default `info`), as text or JSON. Text is coloured only for a person
//! at a terminal ([`colour_logs`]). When an OTLP endpoint is configured,
//! spans are also exported over OTLP/gRPC (to Jaeger, for instance); without
//! one nothing is exported. A caller's W3C `traceparent` becomes the parent
//! of the broker's span for its request ([`grpc_request_span`]), so a request
//! can be followed from the frontend to the Mesos call it caused.
//! [`metrics`] serves Prometheus metrics on a port of their own.

pub mod metrics;

use std::{ffi::OsStr, io::IsTerminal};

use opentelemetry::{global, propagation::Extractor, trace::TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::{LogFormat, TelemetrySettings};

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The exporter refused `telemetry.otlp_endpoint`, usually because it
    /// is not a URI such as `http://127.0.0.1:4317`.
    #[error("cannot build the OTLP exporter for {endpoint}: {source}")]
    Exporter {
        /// The configured `telemetry.otlp_endpoint`.
        endpoint: String,
        /// Why the exporter was refused.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// [`init`] was called twice in one process, or something else set the
    /// global subscriber first.
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
}

/// Keeps the span exporter alive; [`Telemetry::shutdown`] flushes it.
#[must_use = "dropping the guard without shutdown may lose the last spans"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops span export.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "flushing spans at shutdown failed");
        }
    }
}

/// Installs the global subscriber. Must run inside a tokio runtime when an
/// OTLP endpoint is set (the exporter's channel lives on it).
pub fn init(settings: &TelemetrySettings) -> Result<Telemetry, TelemetryError> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = colour_logs(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let logs = match settings.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(colour)
            .with_writer(std::io::stderr)
            .boxed(),
        // JSON is for machines, wherever it goes.
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let provider = settings
        .otlp_endpoint
        .as_deref()
        .map(otlp_provider)
        .transpose()?;
    let traces = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("agora")));
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces)
        .try_init()?;
    Ok(Telemetry { provider })
}

/// Whether text logs on stderr are coloured. Only when stderr is a
/// terminal: in a file, a pipe or a log collector the escapes are noise
/// that breaks `grep` and shows up as `[2m` in log viewers.
/// `tracing-subscriber` colours regardless of where its output goes, so
/// this decides for it. A `NO_COLOR` of any non-empty value turns colour
/// off even on a terminal, as <https://no-color.org> asks; an empty one
/// counts as unset.
pub fn colour_logs(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

fn otlp_provider(endpoint: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|source| TelemetryError::Exporter {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("agora").build())
        .build())
}

/// The server span of one gRPC request, continuing the caller's trace when
/// its metadata carries a W3C `traceparent`. Only the path is recorded, never
/// other headers: they may hold credentials.
pub fn grpc_request_span(request: &http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!(
        "grpc.request",
        otel.kind = "server",
        rpc.method = %request.uri().path(),
    );
    let parent = global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(request.headers()))
    });
    let _ = span.set_parent(parent);
    span
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_and_without_no_color() {
        for (terminal, no_color, colour) in [
            (true, None, true),
            (true, Some(""), true),
            (true, Some("1"), false),
            // Any non-empty value, even one that reads as "no".
            (true, Some("0"), false),
            (true, Some("false"), false),
            (false, None, false),
            (false, Some(""), false),
            (false, Some("1"), false),
        ] {
            assert_eq!(
                colour_logs(terminal, no_color.map(OsStr::new)),
                colour,
                "terminal: {terminal}, NO_COLOR: {no_color:?}"
            );
        }
    }
}
