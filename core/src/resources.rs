//! Resources as the core counts them: scalars in fixed-point thousandths
//! (Mesos rounds scalars to three decimals) and port numbers as merged
//! inclusive ranges. Integers inside mean no NaN, no negative amounts and
//! no drift from repeated float arithmetic; the only floats are at the edge,
//! in [`Resources::from_scalars`] and [`Resources::scalar`].

use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, fmt};

/// Thousandths of a unit per unit.
const MILLI: f64 = 1000.0;
/// The largest scalar accepted (in units): far beyond any real agent, small
/// enough that sums of thousandths never overflow.
pub const MAX_SCALAR: f64 = 1e12;
/// The largest port number.
pub const MAX_PORT: u64 = 65_535;

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[error("{name}: {reason}")]
pub struct InvalidResource {
    /// The resource refused, such as `cpus` or `ports`.
    pub name: String,
    /// What is wrong with the amount or range, in words.
    pub reason: String,
}

/// A bag of resources: named scalars plus ports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resources {
    /// Amounts in thousandths; zero amounts are never stored.
    scalars: BTreeMap<String, u64>,
    ports: PortSet,
}

impl Resources {
    /// Builds resources from `(name, amount)` pairs and port ranges, refusing
    /// negative, NaN, infinite or absurd amounts and invalid ranges with an
    /// error naming the resource.
    pub fn from_scalars<'a>(
        scalars: impl IntoIterator<Item = (&'a str, f64)>,
        ports: impl IntoIterator<Item = (u64, u64)>,
    ) -> Result<Resources, InvalidResource> {
        let mut resources = Resources::default();
        for (name, amount) in scalars {
            let invalid = |reason: &str| InvalidResource {
                name: name.to_owned(),
                reason: reason.to_owned(),
            };
            if name.is_empty() {
                return Err(invalid("a resource needs a name"));
            }
            if amount.is_nan() {
                return Err(invalid("must be a number, not NaN"));
            }
            if amount < 0.0 {
                return Err(invalid(&format!("must not be negative (got {amount})")));
            }
            if !amount.is_finite() || amount > MAX_SCALAR {
                return Err(invalid(&format!(
                    "must be at most {MAX_SCALAR} (got {amount})"
                )));
            }
            let milli = (amount * MILLI).round() as u64;
            if milli > 0 {
                let amount = resources.scalars.entry(name.to_owned()).or_default();
                *amount = amount.saturating_add(milli);
            }
        }
        for (begin, end) in ports {
            if begin > end || end > MAX_PORT {
                return Err(InvalidResource {
                    name: "ports".into(),
                    reason: format!("[{begin}-{end}] is not a range of ports within 0-{MAX_PORT}"),
                });
            }
            resources.ports.insert(begin, end);
        }
        Ok(resources)
    }

    /// The amount of scalar `name`, in units.
    pub fn scalar(&self, name: &str) -> f64 {
        self.scalars.get(name).map_or(0.0, |&m| m as f64 / MILLI)
    }

    /// The amount of scalar `name` in thousandths, the unit the pool's index
    /// orders offers by.
    pub fn milli(&self, name: &str) -> u64 {
        self.scalars.get(name).copied().unwrap_or(0)
    }

    /// Every scalar with a non-zero amount, in units, by name.
    pub fn scalars(&self) -> impl Iterator<Item = (&str, f64)> {
        self.scalars
            .iter()
            .map(|(name, &milli)| (name.as_str(), milli as f64 / MILLI))
    }

    /// The port ranges, sorted and merged.
    pub fn port_ranges(&self) -> &[(u64, u64)] {
        &self.ports.0
    }

    /// Whether there is nothing at all.
    pub fn is_empty(&self) -> bool {
        self.scalars.is_empty() && self.ports.0.is_empty()
    }

    /// Whether every scalar and port of `other` is also here.
    pub fn contains(&self, other: &Resources) -> bool {
        self.shortfall(other).is_none()
    }

    /// The first resource of `other` that is not here, with what was asked
    /// and what is available (ports as counts of the missing ones).
    pub fn shortfall(&self, other: &Resources) -> Option<Shortfall> {
        for (name, &asked) in &other.scalars {
            let available = self.scalars.get(name).copied().unwrap_or(0);
            if asked > available {
                return Some(Shortfall {
                    resource: name.clone(),
                    asked: asked as f64 / MILLI,
                    available: available as f64 / MILLI,
                });
            }
        }
        if !self.ports.contains_all(&other.ports) {
            return Some(Shortfall {
                resource: "ports".into(),
                asked: other.ports.count() as f64,
                available: self.ports.intersection_count(&other.ports) as f64,
            });
        }
        None
    }

    /// Adds `other` to these resources. Sums saturate: an offer that
    /// repeats a resource thousands of times, or a total over many agents,
    /// must not wrap around to a small amount.
    pub fn add(&mut self, other: &Resources) {
        for (name, &milli) in &other.scalars {
            let amount = self.scalars.entry(name.clone()).or_default();
            *amount = amount.saturating_add(milli);
        }
        for &(begin, end) in &other.ports.0 {
            self.ports.insert(begin, end);
        }
    }

    /// Grows these resources to hold `other` too: the larger amount of each
    /// scalar, the union of the ports.
    pub fn widen(&mut self, other: &Resources) {
        for (name, &milli) in &other.scalars {
            let amount = self.scalars.entry(name.clone()).or_default();
            *amount = (*amount).max(milli);
        }
        for &(begin, end) in &other.ports.0 {
            self.ports.insert(begin, end);
        }
    }

    /// Removes `other`, which must be contained; returns `false` and changes
    /// nothing when it is not.
    pub fn subtract(&mut self, other: &Resources) -> bool {
        if !self.contains(other) {
            return false;
        }
        for (name, &milli) in &other.scalars {
            let left = self.scalars[name] - milli;
            if left == 0 {
                self.scalars.remove(name);
            } else {
                self.scalars.insert(name.clone(), left);
            }
        }
        for &(begin, end) in &other.ports.0 {
            self.ports.remove(begin, end);
        }
        true
    }

    /// Up to `count` port numbers here that are not in `excluded`, lowest
    /// first; `None` when fewer are free.
    pub fn pick_ports(&self, count: u32, excluded: &Resources) -> Option<Resources> {
        let mut picked = Resources::default();
        let mut wanted = u64::from(count);
        for &(begin, end) in &self.ports.0 {
            let mut port = begin;
            while wanted > 0 && port <= end {
                if !excluded.ports.contains(port) {
                    picked.ports.insert(port, port);
                    wanted -= 1;
                }
                port += 1;
            }
            if wanted == 0 {
                break;
            }
        }
        (wanted == 0).then_some(picked)
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self
            .scalars()
            .map(|(name, amount)| format!("{name}:{amount}"))
            .collect();
        if !self.ports.0.is_empty() {
            let ranges: Vec<String> = self
                .ports
                .0
                .iter()
                .map(|(b, e)| format!("{b}-{e}"))
                .collect();
            parts.push(format!("ports:[{}]", ranges.join(",")));
        }
        f.write_str(&parts.join(";"))
    }
}

/// The first resource that did not fit, for an error a person can act on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shortfall {
    /// The scalar's name, or `ports`.
    pub resource: String,
    /// What was asked of it, in its units (of ports: how many).
    pub asked: f64,
    /// What is there of it (of ports: how many of those asked).
    pub available: f64,
}

/// Sorted, merged, inclusive ranges of port numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct PortSet(Vec<(u64, u64)>);

impl PortSet {
    fn insert(&mut self, begin: u64, end: u64) {
        self.0.push((begin, end));
        self.0.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.0.len());
        for &(b, e) in &self.0 {
            match merged.last_mut() {
                Some(last) if b <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => merged.push((b, e)),
            }
        }
        self.0 = merged;
    }

    fn remove(&mut self, begin: u64, end: u64) {
        let mut kept = Vec::with_capacity(self.0.len() + 1);
        for &(b, e) in &self.0 {
            if e < begin || b > end {
                kept.push((b, e));
                continue;
            }
            if b < begin {
                kept.push((b, begin - 1));
            }
            if e > end {
                kept.push((end + 1, e));
            }
        }
        self.0 = kept;
    }

    fn contains(&self, port: u64) -> bool {
        self.0.iter().any(|&(b, e)| b <= port && port <= e)
    }

    fn contains_all(&self, other: &PortSet) -> bool {
        other
            .0
            .iter()
            .all(|&(b, e)| self.0.iter().any(|&(sb, se)| sb <= b && e <= se))
    }

    fn count(&self) -> u64 {
        self.0.iter().map(|(b, e)| e - b + 1).sum()
    }

    fn intersection_count(&self, other: &PortSet) -> u64 {
        let mut total = 0;
        for &(b, e) in &self.0 {
            for &(ob, oe) in &other.0 {
                let (lo, hi) = (b.max(ob), e.min(oe));
                if lo <= hi {
                    total += hi - lo + 1;
                }
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn res(scalars: &[(&str, f64)], ports: &[(u64, u64)]) -> Resources {
        Resources::from_scalars(scalars.iter().copied(), ports.iter().copied()).unwrap()
    }

    #[test]
    fn sums_saturate_instead_of_wrapping() {
        let repeated = std::iter::repeat_n(("cpus", MAX_SCALAR), 20_000);
        let huge = Resources::from_scalars(repeated, []).unwrap();
        assert_eq!(huge.milli("cpus"), u64::MAX);
        let mut total = huge.clone();
        total.add(&huge);
        assert_eq!(total.milli("cpus"), u64::MAX);
    }

    #[test]
    fn refuses_amounts_that_make_no_sense() {
        for (amount, words) in [
            (-1.0, "negative"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "at most"),
            (1e13, "at most"),
        ] {
            let error = Resources::from_scalars([("cpus", amount)], []).unwrap_err();
            assert_eq!(error.name, "cpus");
            assert!(error.reason.contains(words), "{amount}: {error}");
        }
        assert!(Resources::from_scalars([], [(10, 5)]).is_err());
        assert!(Resources::from_scalars([], [(1, 70_000)]).is_err());
    }

    #[test]
    fn rounds_to_thousandths_like_mesos() {
        let r = res(&[("cpus", 0.1 + 0.2)], &[]);
        assert_eq!(r.scalar("cpus"), 0.3);
        assert!(res(&[("cpus", 0.0004)], &[]).is_empty());
    }

    #[test]
    fn shortfall_names_what_is_missing() {
        let agent = res(&[("cpus", 4.0), ("mem", 1024.0)], &[(31000, 31009)]);
        assert_eq!(
            agent.shortfall(&res(&[("cpus", 2.0)], &[(31000, 31000)])),
            None
        );
        let short = agent.shortfall(&res(&[("mem", 2048.0)], &[])).unwrap();
        assert_eq!(
            (short.resource.as_str(), short.asked, short.available),
            ("mem", 2048.0, 1024.0)
        );
        let short = agent.shortfall(&res(&[], &[(31005, 31020)])).unwrap();
        assert_eq!(
            (short.resource.as_str(), short.asked, short.available),
            ("ports", 16.0, 5.0)
        );
    }

    #[test]
    fn picks_the_lowest_free_ports() {
        let agent = res(&[], &[(100, 102), (200, 205)]);
        let taken = res(&[], &[(101, 101)]);
        let picked = agent.pick_ports(3, &taken).unwrap();
        assert_eq!(picked.port_ranges(), &[(100, 100), (102, 102), (200, 200)]);
        assert!(agent.pick_ports(20, &taken).is_none());
    }

    fn arb_resources() -> impl Strategy<Value = Resources> {
        (
            0u32..8000,
            0u32..8000,
            proptest::collection::vec((0u64..300, 0u64..20), 0..4),
        )
            .prop_map(|(cpus, mem, ranges)| {
                let ports: Vec<(u64, u64)> = ranges.iter().map(|&(b, len)| (b, b + len)).collect();
                Resources::from_scalars(
                    [("cpus", f64::from(cpus) / 1000.0), ("mem", f64::from(mem))],
                    ports,
                )
                .unwrap()
            })
    }

    proptest! {
        #[test]
        fn add_then_subtract_is_identity(a in arb_resources(), b in arb_resources()) {
            let mut sum = a.clone();
            sum.add(&b);
            prop_assert!(sum.contains(&a) && sum.contains(&b));
            // Ports may overlap, so subtracting b only restores a's scalars.
            let mut back = sum.clone();
            prop_assert!(back.subtract(&b));
            for (name, amount) in a.scalars() {
                prop_assert_eq!(back.scalar(name), amount);
            }
        }

        #[test]
        fn subtract_never_goes_below_zero(a in arb_resources(), b in arb_resources()) {
            let mut left = a.clone();
            if left.subtract(&b) {
                prop_assert!(a.contains(&b));
                let mut restored = left.clone();
                restored.add(&b);
                prop_assert!(restored.contains(&a));
            } else {
                prop_assert_eq!(left, a.clone());
                prop_assert!(!a.contains(&b));
            }
        }

        #[test]
        fn port_ranges_stay_sorted_and_disjoint(a in arb_resources(), b in arb_resources()) {
            let mut sum = a;
            sum.add(&b);
            for pair in sum.port_ranges().windows(2) {
                prop_assert!(pair[0].1 + 1 < pair[1].0);
            }
        }
    }
}
