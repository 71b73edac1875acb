//! What a run found, as a table for people or JSON for scripts: each
//! measured loop with its latency percentiles and rate, the broker's memory,
//! and every target as a ratio against a baseline measured in the same run.

use std::{collections::BTreeMap, fmt::Write as _, time::Duration};

use serde::Serialize;

use crate::{load::Run, process::Memory, stats::Latency};

/// The outcome of one scenario.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub scenario: &'static str,
    /// The flags that shaped the run, as given.
    pub settings: BTreeMap<&'static str, String>,
    pub loops: Vec<Measured>,
    /// Memory of processes, at named moments.
    pub memory: Vec<MemorySample>,
    pub targets: Vec<Target>,
}

/// One closed loop (a scenario's or a baseline's).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Measured {
    pub name: String,
    pub clients: usize,
    /// Completed cycles in the measured window.
    pub ops: u64,
    pub ops_per_sec: f64,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Latency of each step of a cycle, in the order given.
    pub steps: Vec<Step>,
    /// Where the machine's cores went while it ran.
    pub cpu: Vec<CpuUse>,
}

/// One process's CPU use over a measured window.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CpuUse {
    pub process: &'static str,
    /// Average cores busy (user + system).
    pub cores: f64,
    /// CPU time per completed operation, in microseconds.
    pub us_per_op: f64,
}

/// One timed step of a cycle.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Step {
    pub name: &'static str,
    pub latency: Latency,
}

impl Measured {
    /// Summarises `run` over a window of `duration`, listing `steps` that
    /// have samples.
    pub(crate) fn new(
        name: &str,
        clients: usize,
        duration: Duration,
        run: &Run,
        steps: &[&'static str],
    ) -> Measured {
        let recorded = &run.recorded;
        let cpu = run
            .cpu
            .iter()
            .map(|&(process, used)| CpuUse {
                process,
                cores: used.as_secs_f64() / duration.as_secs_f64(),
                us_per_op: used.as_secs_f64() * 1e6 / recorded.ops.max(1) as f64,
            })
            .collect();
        Measured {
            name: name.to_owned(),
            clients,
            ops: recorded.ops,
            ops_per_sec: recorded.ops as f64 / duration.as_secs_f64(),
            errors: recorded.errors,
            first_error: recorded.first_error.clone(),
            steps: steps
                .iter()
                .filter_map(|&step| {
                    recorded.latency(step).map(|latency| Step {
                        name: step,
                        latency,
                    })
                })
                .collect(),
            cpu,
        }
    }

    /// The latency of `step`, if it was measured.
    pub(crate) fn step(&self, step: &str) -> Option<Latency> {
        self.steps
            .iter()
            .find(|s| s.name == step)
            .map(|s| s.latency)
    }
}

/// A process's memory at one moment of the run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MemorySample {
    pub process: &'static str,
    pub when: String,
    #[serde(flatten)]
    pub memory: Memory,
}

/// A figure the issue sets a target for, and whether this run met it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Target {
    pub what: String,
    pub value: f64,
    pub unit: &'static str,
    /// `<=` or `>=`.
    pub relation: &'static str,
    pub limit: f64,
    pub met: bool,
}

impl Target {
    /// `value` must not exceed `limit`.
    pub(crate) fn at_most(
        what: impl Into<String>,
        value: f64,
        limit: f64,
        unit: &'static str,
    ) -> Target {
        Target {
            what: what.into(),
            value,
            unit,
            relation: "<=",
            limit,
            met: value <= limit,
        }
    }

    /// `value` must reach `limit`.
    pub(crate) fn at_least(
        what: impl Into<String>,
        value: f64,
        limit: f64,
        unit: &'static str,
    ) -> Target {
        Target {
            what: what.into(),
            value,
            unit,
            relation: ">=",
            limit,
            met: value >= limit,
        }
    }
}

impl Report {
    /// The report as pretty JSON.
    pub(crate) fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }

    /// The report as an aligned text table.
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        let settings: Vec<String> = self
            .settings
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(out, "scenario {} ({})", self.scenario, settings.join(", "));
        let _ = writeln!(
            out,
            "\n{:<40} {:>8} {:>10} {:>10} {:>10} {:>10} {:>12} {:>7}",
            "loop / step", "samples", "p50", "p90", "p99", "max", "ops/s", "errors"
        );
        for measured in &self.loops {
            let _ = writeln!(
                out,
                "{:<40} {:>8} {:>10} {:>10} {:>10} {:>10} {:>12.0} {:>7}",
                format!("{} (x{})", measured.name, measured.clients),
                "",
                "",
                "",
                "",
                "",
                measured.ops_per_sec,
                measured.errors
            );
            for step in &measured.steps {
                let l = step.latency;
                let _ = writeln!(
                    out,
                    "  {:<38} {:>8} {:>10} {:>10} {:>10} {:>10}",
                    step.name,
                    l.samples,
                    micros(l.p50_us),
                    micros(l.p90_us),
                    micros(l.p99_us),
                    micros(l.max_us)
                );
            }
            if !measured.cpu.is_empty() {
                let uses: Vec<String> = measured
                    .cpu
                    .iter()
                    .map(|c| {
                        format!(
                            "{} {:.2} cores, {:.0}µs/op",
                            c.process, c.cores, c.us_per_op
                        )
                    })
                    .collect();
                let _ = writeln!(out, "  cpu: {}", uses.join("; "));
            }
            if let Some(error) = &measured.first_error {
                let _ = writeln!(out, "  first error: {error}");
            }
        }
        if !self.memory.is_empty() {
            let _ = writeln!(out, "\nmemory");
            for sample in &self.memory {
                let _ = writeln!(
                    out,
                    "  {:<10} {:<38} rss {:>8.1} MiB   peak {:>8.1} MiB",
                    sample.process,
                    sample.when,
                    sample.memory.rss_kib as f64 / 1024.0,
                    sample.memory.peak_kib as f64 / 1024.0
                );
            }
        }
        if !self.targets.is_empty() {
            let _ = writeln!(out, "\ntargets");
            for target in &self.targets {
                let _ = writeln!(
                    out,
                    "  {:<52} {:>10.2} {:<9} {} {:<10} {}",
                    target.what,
                    target.value,
                    target.unit,
                    target.relation,
                    target.limit,
                    if target.met { "met" } else { "MISSED" }
                );
            }
        }
        out
    }
}

/// A latency in the unit that keeps it readable.
fn micros(us: f64) -> String {
    if us >= 10_000.0 {
        format!("{:.1}ms", us / 1_000.0)
    } else if us >= 1_000.0 {
        format!("{:.2}ms", us / 1_000.0)
    } else {
        format!("{us:.0}µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Recorder;

    fn report() -> Report {
        let mut recorded = Recorder::new();
        recorded.ops = 2_000;
        recorded.record("acquire", Duration::from_micros(120));
        recorded.record("acquire", Duration::from_micros(15_000));
        let run = Run {
            recorded,
            cpu: vec![("broker", Duration::from_secs(1))],
        };
        Report {
            scenario: "acquire-release",
            settings: BTreeMap::from([("clients", "2".to_owned())]),
            loops: vec![Measured::new(
                "acquire-release",
                2,
                Duration::from_secs(2),
                &run,
                &["acquire", "release"],
            )],
            memory: vec![MemorySample {
                process: "broker",
                when: "end".into(),
                memory: Memory {
                    rss_kib: 2048,
                    peak_kib: 4096,
                },
            }],
            targets: vec![Target::at_least(
                "acquire-release cycles/s",
                1_000.0,
                20_000.0,
                "cycles/s",
            )],
        }
    }

    #[test]
    fn summarises_rates_and_skips_unmeasured_steps() {
        let report = report();
        let measured = &report.loops[0];
        assert_eq!(measured.ops_per_sec, 1_000.0);
        assert_eq!(measured.steps.len(), 1, "release has no samples");
        assert!(measured.step("acquire").is_some());
        assert!(!report.targets[0].met);
    }

    #[test]
    fn json_round_trips_through_a_parser() {
        let value: serde_json::Value = serde_json::from_str(&report().json()).unwrap();
        assert_eq!(value["loops"][0]["ops"], 2_000);
        assert_eq!(value["memory"][0]["rss_kib"], 2048);
        assert_eq!(value["targets"][0]["met"], false);
    }

    #[test]
    fn table_shows_units_and_verdicts() {
        let table = report().table();
        assert!(table.contains("120µs"), "{table}");
        assert!(table.contains("15.0ms"), "{table}");
        assert!(table.contains("MISSED"), "{table}");
        assert!(table.contains("rss      2.0 MiB"), "{table}");
        assert!(table.contains("broker 0.50 cores, 500µs/op"), "{table}");
    }
}
