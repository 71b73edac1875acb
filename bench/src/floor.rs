//! The physical floor of a durable broker on this machine: how long one
//! small write synced to disk takes, measured in the run that compares the
//! file store with the store in memory, on the disk the broker's store is
//! on. A broker that records a task's steps before answering for them
//! cannot be faster than its in-memory self plus one synced write per step
//! a task waits for; the ratio against that floor is the part of the gap
//! that is Agora's.

use std::{
    fs::OpenOptions,
    io::Write,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Context;

/// Synced writes timed; the median of these is the floor's unit.
const ROUNDS: usize = 200;

/// The median time to append a record of `bytes` to a file in `dir` and
/// `fdatasync` it: what the store's commit cannot go below.
pub(crate) async fn synced_write(dir: &Path, bytes: usize) -> anyhow::Result<Duration> {
    let path = dir.join(format!("synced-write-{}.bin", std::process::id()));
    let timed = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Duration>> {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let record = vec![0x5a_u8; bytes];
        let mut timed = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let started = Instant::now();
            file.write_all(&record)?;
            file.sync_data()?;
            timed.push(started.elapsed());
        }
        drop(file);
        let _ = std::fs::remove_file(&path);
        Ok(timed)
    })
    .await??;
    Ok(median(timed))
}

fn median(mut timed: Vec<Duration>) -> Duration {
    timed.sort_unstable();
    timed.get(timed.len() / 2).copied().unwrap_or_default()
}

/// The most a durable loop can reach, as a fraction of its in-memory
/// twin: each of `clients` closed loops runs one task at a time, taking
/// `clients / in_memory_per_sec` seconds a task in memory, and a durable
/// task waits for `waits` synced writes more.
pub(crate) fn best_ratio(
    in_memory_per_sec: f64,
    clients: usize,
    waits: u32,
    synced: Duration,
) -> f64 {
    if in_memory_per_sec <= 0.0 {
        return 0.0;
    }
    let cycle = clients as f64 / in_memory_per_sec;
    cycle / (cycle + f64::from(waits) * synced.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_adds_one_synced_write_per_wait_to_each_cycle() {
        // 8 loops at 2,000 tasks/s: 4 ms a task; 5 waits of 0.8 ms add 4 ms.
        let ratio = best_ratio(2_000.0, 8, 5, Duration::from_micros(800));
        assert!((ratio - 0.5).abs() < 1e-9, "{ratio}");
        assert_eq!(best_ratio(0.0, 8, 5, Duration::from_millis(1)), 0.0);
    }

    #[test]
    fn the_median_is_the_middle_time() {
        let ms = Duration::from_millis;
        assert_eq!(median(vec![ms(3), ms(1), ms(2)]), ms(2));
        assert_eq!(median(Vec::new()), Duration::ZERO);
    }
}
