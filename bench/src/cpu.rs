//! CPU time of the processes in a run, from `/proc/PID/stat`. The load
//! generator, the broker and the devcluster share the same cores, so how
//! much of them each one burns per operation explains a throughput figure
//! better than latency alone does.

use std::time::Duration;

use anyhow::{Context, ensure};

/// A process whose CPU time a measured loop reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Metered {
    pub name: &'static str,
    pub pid: u32,
}

impl Metered {
    /// This process: the load generator (and the direct framework).
    pub(crate) fn this() -> Metered {
        Metered {
            name: "agora-bench",
            pid: std::process::id(),
        }
    }
}

/// User plus system CPU time of all threads of `pid` so far.
pub(crate) fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let ticks = parse_ticks(&stat).with_context(|| format!("{path} has no utime/stime"))?;
    // rustix's safe `sysconf(_SC_CLK_TCK)`: the workspace forbids unsafe code.
    let per_second = rustix::param::clock_ticks_per_second();
    ensure!(per_second > 0, "the kernel reports no clock tick rate");
    Ok(Duration::from_secs_f64(ticks as f64 / per_second as f64))
}

/// utime + stime, in clock ticks: fields 14 and 15, counted after the
/// command name, which is in parentheses and may itself hold spaces.
fn parse_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_ticks_past_an_odd_command_name() {
        let stat = "4242 (tokio rt) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 70 0 0 20 0 8 0";
        assert_eq!(parse_ticks(stat), Some(320));
        assert_eq!(parse_ticks("4242 (x) S 1"), None);
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {}
        assert!(cpu_time(std::process::id()).unwrap() > Duration::ZERO);
    }
}
