//! Proves the harness works end to end: each scenario runs for about a
//! second per loop with small numbers against the real `agora` and
//! `devcluster` binaries, and its JSON report must parse and show work done
//! without errors. The figures themselves are not judged here.
//!
//! The binaries are the ones `cargo test --workspace` builds beside this
//! test; `--no-build` keeps the harness from running cargo inside cargo.

use std::process::Command;

use serde_json::Value;

/// Runs `agora-bench` with `args` plus `--json --no-build` and parses its
/// report.
fn run(args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_agora-bench"))
        .args(args)
        .args([
            "--json",
            "--no-build",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
        ])
        .output()
        .expect("agora-bench starts");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "agora-bench {args:?} failed: {stderr}"
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("agora-bench {args:?} printed no JSON report ({e}): {stderr}"))
}

/// Every loop did work without errors and every step has samples.
fn assert_sane(report: &Value, loops: usize) {
    let measured = report["loops"].as_array().expect("loops is a list");
    assert_eq!(measured.len(), loops, "{report:#}");
    for entry in measured {
        assert!(entry["ops"].as_u64().unwrap() > 0, "no ops: {entry:#}");
        assert!(entry["ops_per_sec"].as_f64().unwrap() > 0.0, "{entry:#}");
        assert_eq!(entry["errors"], 0, "{entry:#}");
        let steps = entry["steps"].as_array().expect("steps is a list");
        assert!(!steps.is_empty(), "{entry:#}");
        for step in steps {
            let latency = &step["latency"];
            assert!(latency["samples"].as_u64().unwrap() > 0, "{step:#}");
            assert!(latency["p50_us"].as_f64().unwrap() > 0.0, "{step:#}");
            assert!(
                latency["p50_us"].as_f64() <= latency["max_us"].as_f64(),
                "{step:#}"
            );
        }
    }
    let memory = report["memory"].as_array().expect("memory is a list");
    assert!(!memory.is_empty(), "{report:#}");
    assert!(memory.iter().all(|m| m["rss_kib"].as_u64().unwrap() > 0));
    assert!(!report["targets"].as_array().unwrap().is_empty());
}

#[test]
fn acquire_release_reports_its_loops_and_baselines() {
    let report = run(&[
        "acquire-release",
        "--clients",
        "4",
        "--agents",
        "2",
        "--frontends-per-connection",
        "2",
    ]);
    assert_eq!(report["scenario"], "acquire-release");
    assert_sane(&report, 4);
    assert_eq!(report["settings"]["frontends_per_connection"], "2");
}

#[test]
fn short_tasks_run_through_agora_with_each_store_and_both_direct_frameworks() {
    let report = run(&["short-tasks", "--clients", "2", "--agents", "4"]);
    assert_eq!(report["scenario"], "short-tasks");
    assert_sane(&report, 4);
}

#[test]
fn scale_subscribes_idle_frontends_in_many_namespaces() {
    let report = run(&[
        "scale",
        "--agents",
        "20",
        "--namespaces",
        "3",
        "--frontends",
        "12",
        "--clients",
        "3",
    ]);
    assert_eq!(report["scenario"], "scale");
    assert_sane(&report, 2);
    assert_eq!(report["settings"]["namespaces"], "3");
    assert_eq!(report["memory"].as_array().unwrap().len(), 4);
}
