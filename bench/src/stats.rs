//! Latency recording: one HdrHistogram per measured step, so percentiles
//! stay exact to three significant digits however many samples a run takes,
//! and workers can record without sharing anything until the end.

use std::{collections::BTreeMap, time::Duration};

use hdrhistogram::Histogram;
use serde::Serialize;

/// The longest latency a histogram holds; longer samples are clamped, which
/// only matters for a run that is already broken.
const MAX_LATENCY: Duration = Duration::from_secs(120);

/// What one worker (or, merged, a whole run) measured.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    latencies: BTreeMap<&'static str, Histogram<u64>>,
    /// Completed operations (cycles) inside the measured window.
    pub ops: u64,
    /// Operations that failed inside the measured window.
    pub errors: u64,
    /// The first failure, so a report can say what went wrong.
    pub first_error: Option<String>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    pub(crate) fn new() -> Recorder {
        Recorder {
            latencies: BTreeMap::new(),
            ops: 0,
            errors: 0,
            first_error: None,
        }
    }

    /// Adds one sample of the step `name`.
    pub(crate) fn record(&mut self, name: &'static str, latency: Duration) {
        let histogram = self.latencies.entry(name).or_insert_with(new_histogram);
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        histogram.saturating_record(nanos.max(1));
    }

    /// Counts a failed operation, keeping the first message.
    pub(crate) fn error(&mut self, error: &anyhow::Error) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(format!("{error:#}"));
        }
    }

    /// Folds another worker's samples into this one.
    pub(crate) fn merge(&mut self, other: Recorder) {
        for (name, histogram) in other.latencies {
            self.latencies
                .entry(name)
                .or_insert_with(new_histogram)
                .add(&histogram)
                .expect("histograms with the same bounds merge");
        }
        self.ops += other.ops;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// The summary of step `name`, if it has samples.
    pub(crate) fn latency(&self, name: &str) -> Option<Latency> {
        self.latencies
            .get(name)
            .filter(|h| !h.is_empty())
            .map(Latency::of)
    }
}

fn new_histogram() -> Histogram<u64> {
    let max = u64::try_from(MAX_LATENCY.as_nanos()).unwrap_or(u64::MAX);
    Histogram::new_with_bounds(1, max, 3).expect("static histogram bounds are valid")
}

/// Percentiles of one step, in microseconds (fractions kept: an empty RPC
/// on loopback takes tens of them).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Latency {
    pub samples: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

impl Latency {
    fn of(histogram: &Histogram<u64>) -> Latency {
        let us = |nanos: u64| nanos as f64 / 1_000.0;
        Latency {
            samples: histogram.len(),
            p50_us: us(histogram.value_at_quantile(0.50)),
            p90_us: us(histogram.value_at_quantile(0.90)),
            p99_us: us(histogram.value_at_quantile(0.99)),
            max_us: us(histogram.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_workers_and_reads_percentiles() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        for micros in 1..=50 {
            a.record("step", Duration::from_micros(micros));
        }
        for micros in 51..=100 {
            b.record("step", Duration::from_micros(micros));
        }
        a.ops = 50;
        b.ops = 50;
        b.error(&anyhow::anyhow!("boom"));
        a.merge(b);
        let latency = a.latency("step").unwrap();
        assert_eq!(latency.samples, 100);
        assert!((latency.p50_us - 50.0).abs() < 0.1, "{latency:?}");
        assert!((latency.p99_us - 99.0).abs() < 0.1, "{latency:?}");
        assert!((latency.max_us - 100.0).abs() < 0.1, "{latency:?}");
        assert_eq!((a.ops, a.errors), (100, 1));
        assert_eq!(a.first_error.as_deref(), Some("boom"));
        assert_eq!(a.latency("other"), None);
    }
}
