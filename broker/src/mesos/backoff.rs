//! Jittered exponential backoff between (re)subscription attempts, so a
//! fleet of restarting brokers does not hammer a recovering master in step.

use std::time::Duration;

/// Exponential backoff with "equal jitter": half the delay is fixed, half
/// random, doubling per attempt up to `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The delay after the first failure.
    pub initial: Duration,
    /// The longest delay, however many failures came before.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(15),
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt` (0-based), given `jitter` drawn
    /// uniformly from `[0, 1)`.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.max);
        let half = ceiling / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_within_the_upper_half() {
        let backoff = Backoff::default();
        assert_eq!(backoff.delay(0, 0.0), Duration::from_millis(250));
        assert_eq!(backoff.delay(0, 1.0), Duration::from_millis(500));
        assert_eq!(backoff.delay(3, 0.0), Duration::from_millis(2000));
        assert_eq!(backoff.delay(30, 0.999).max(backoff.max), backoff.max);
        assert!(backoff.delay(1000, 0.5) <= backoff.max);
        assert!(backoff.delay(1000, 0.0) >= backoff.max / 2);
    }
}
