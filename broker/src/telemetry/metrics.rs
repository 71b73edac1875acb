//! Prometheus metrics on their own HTTP port: each namespace's usage
//! against its quota and its fair-share standing. Computed from the core at
//! scrape time, so the broker's hot paths pay nothing for them.

use std::sync::atomic::AtomicU64;

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{family::Family, gauge::Gauge},
    registry::Registry,
};
use tokio::{net::TcpListener, sync::mpsc};
use tracing::warn;

use crate::runtime::{self, Command};
use agora_core::{NamespaceUsage, Resources};

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NamespaceLabels {
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    namespace: String,
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UsageLabels {
    namespace: String,
    resource: String,
    /// `leased` (not launched) or `running` (held by live tasks).
    state: String,
}

/// Serves `GET /metrics` on `listener` until the runtime stops.
pub async fn serve(listener: TcpListener, commands: mpsc::Sender<Command>) {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(commands);
    if let Err(error) = axum::serve(listener, app).await {
        warn!(%error, "the metrics server stopped");
    }
}

async fn scrape(State(commands): State<mpsc::Sender<Command>>) -> impl IntoResponse {
    let report = runtime::read(&commands, |core, _| core.usage_report(None)).await;
    match report.and_then(Result::ok) {
        Some(report) => (StatusCode::OK, render(&report)),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the broker is shutting down\n".to_owned(),
        ),
    }
}

/// The text exposition of the namespaces' usage, quota and shares.
pub fn render(report: &[NamespaceUsage]) -> String {
    let used = Family::<UsageLabels, FloatGauge>::default();
    let guarantee = Family::<ResourceLabels, FloatGauge>::default();
    let limit = Family::<ResourceLabels, FloatGauge>::default();
    let weight = Family::<NamespaceLabels, FloatGauge>::default();
    let share = Family::<NamespaceLabels, FloatGauge>::default();
    let waiting = Family::<NamespaceLabels, FloatGauge>::default();
    for usage in report {
        let namespace = &usage.namespace.name;
        let by_resource = |family: &Family<ResourceLabels, FloatGauge>, resources: &Resources| {
            for (resource, amount) in resources.scalars() {
                let labels = ResourceLabels {
                    namespace: namespace.clone(),
                    resource: resource.to_owned(),
                };
                family.get_or_create(&labels).set(amount);
            }
        };
        for (state, resources) in [("leased", &usage.leased), ("running", &usage.running)] {
            for (resource, amount) in resources.scalars() {
                let labels = UsageLabels {
                    namespace: namespace.clone(),
                    resource: resource.to_owned(),
                    state: state.to_owned(),
                };
                used.get_or_create(&labels).set(amount);
            }
        }
        by_resource(&guarantee, &usage.namespace.guarantee);
        by_resource(&limit, &usage.namespace.limit);
        let labels = NamespaceLabels {
            namespace: namespace.clone(),
        };
        weight.get_or_create(&labels).set(usage.namespace.weight);
        share.get_or_create(&labels).set(usage.dominant_share);
        waiting
            .get_or_create(&labels)
            .set(f64::from(usage.waiting_slots));
    }
    let mut registry = Registry::with_prefix("agora_namespace");
    registry.register("used", "Resources leased or held by live tasks", used);
    registry.register("guarantee", "Capacity served first", guarantee);
    registry.register("limit", "Most the namespace may hold", limit);
    registry.register("weight", "Weight under fair sharing", weight);
    registry.register(
        "dominant_share",
        "Largest share of any resource held, divided by the weight",
        share,
    );
    registry.register("waiting_slots", "Slots waiting for capacity", waiting);
    let mut text = String::new();
    encode(&mut text, &registry).expect("writing to a String cannot fail");
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_core::Namespace;

    #[test]
    fn renders_usage_quota_and_shares_per_namespace() {
        let cpus = |n| Resources::from_scalars([("cpus", n)], []).unwrap();
        let report = [NamespaceUsage {
            namespace: Namespace {
                limit: cpus(8.0),
                weight: 2.0,
                ..Namespace::new("batch", "batch")
            },
            leased: cpus(1.0),
            running: cpus(2.5),
            borrowed: Resources::default(),
            lent: Resources::default(),
            dominant_share: 0.25,
            waiting_slots: 3,
        }];
        let text = render(&report);
        for line in [
            r#"agora_namespace_used{namespace="batch",resource="cpus",state="running"} 2.5"#,
            r#"agora_namespace_limit{namespace="batch",resource="cpus"} 8.0"#,
            r#"agora_namespace_weight{namespace="batch"} 2.0"#,
            r#"agora_namespace_dominant_share{namespace="batch"} 0.25"#,
            r#"agora_namespace_waiting_slots{namespace="batch"} 3.0"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
