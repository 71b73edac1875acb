//! The resource bag: a normalized set of Mesos `Resource` protos and its
//! arithmetic (add, subtract, contain), at Mesos's scalar precision.

use agora_proto::mesos::v1::{Resource, value};

use super::role::{reservation_role, usable_by};

/// Mesos compares scalars with this tolerance (three decimal places).
const EPSILON: f64 = 0.0005;

/// Rounds a scalar to Mesos's fixed-point precision (three decimals).
pub fn round_scalar(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// A normalized bag of resources.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources(Vec<Resource>);

impl Resources {
    /// Normalizes and adds up `resources`.
    pub fn from_protos<'a>(resources: impl IntoIterator<Item = &'a Resource>) -> Self {
        let mut out = Self::default();
        for resource in resources {
            out.add(resource);
        }
        out
    }

    /// The normalized entries.
    pub fn iter(&self) -> impl Iterator<Item = &Resource> {
        self.0.iter()
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The total of the scalar `name` over all roles.
    pub fn scalar(&self, name: &str) -> f64 {
        round_scalar(
            self.0
                .iter()
                .filter(|r| r.name == name)
                .filter_map(|r| r.scalar.map(|s| s.value))
                .sum(),
        )
    }

    /// The part of these resources that may be allocated to `role`.
    pub fn usable_by(&self, role: &str) -> Self {
        Self(
            self.0
                .iter()
                .filter(|r| usable_by(reservation_role(r), role))
                .cloned()
                .collect(),
        )
    }

    /// The entries for which `keep` holds.
    pub fn filter(&self, keep: impl Fn(&Resource) -> bool) -> Self {
        Self(self.0.iter().filter(|r| keep(r)).cloned().collect())
    }

    /// These resources marked revocable (oversubscribed); `None` when some
    /// are reserved (Mesos: revocable resources cannot be reserved).
    pub fn into_revocable(self) -> Option<Self> {
        let mut out = Self::default();
        for mut resource in self.0 {
            if reservation_role(&resource) != "*" {
                return None;
            }
            resource.revocable = Some(agora_proto::mesos::v1::resource::RevocableInfo {});
            out.add(&resource);
        }
        Some(out)
    }

    /// Adds one resource (merging with an entry of the same kind).
    pub fn add(&mut self, resource: &Resource) {
        let resource = normalize(resource);
        if is_empty_value(&resource) {
            return;
        }
        match self.0.iter_mut().find(|r| same_kind(r, &resource)) {
            Some(existing) => merge(existing, &resource),
            None => self.0.push(resource),
        }
    }

    /// Adds every entry of `other`.
    pub fn add_all(&mut self, other: &Resources) {
        for resource in &other.0 {
            self.add(resource);
        }
    }

    /// Removes `other` (saturating: what is not there is ignored).
    pub fn subtract_all(&mut self, other: &Resources) {
        for resource in &other.0 {
            if let Some(index) = self.0.iter().position(|r| same_kind(r, resource)) {
                remove(&mut self.0[index], resource);
                if is_empty_value(&self.0[index]) {
                    self.0.remove(index);
                }
            }
        }
    }

    /// Whether every entry of `other` is covered by these resources.
    pub fn contains(&self, other: &Resources) -> bool {
        other.0.iter().all(|wanted| {
            self.0
                .iter()
                .find(|r| same_kind(r, wanted))
                .is_some_and(|have| covers(have, wanted))
        })
    }

    /// The entries as protos, each tagged with `allocation_info.role`.
    pub fn allocated_to(&self, role: &str) -> Vec<Resource> {
        self.0
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.allocation_info = Some(agora_proto::mesos::v1::resource::AllocationInfo {
                    role: Some(role.to_string()),
                });
                r
            })
            .collect()
    }

    /// The entries as protos, without allocation info.
    pub fn to_protos(&self) -> Vec<Resource> {
        self.0.clone()
    }
}

fn normalize(resource: &Resource) -> Resource {
    let role = reservation_role(resource).to_string();
    let mut out = Resource {
        name: resource.name.clone(),
        r#type: resource.r#type,
        revocable: resource.revocable,
        shared: resource.shared,
        reservation: resource.reservation.clone(),
        ..Default::default()
    };
    #[allow(deprecated)]
    {
        out.role = Some(role);
    }
    match value::Type::try_from(resource.r#type) {
        Ok(value::Type::Scalar) => {
            out.scalar = Some(value::Scalar {
                value: round_scalar(resource.scalar.map_or(0.0, |s| s.value)),
            });
        }
        Ok(value::Type::Ranges) => {
            let ranges = resource
                .ranges
                .as_ref()
                .map(|r| r.range.iter().map(|r| (r.begin, r.end)).collect())
                .unwrap_or_default();
            out.ranges = Some(to_ranges(merge_ranges(ranges)));
        }
        Ok(value::Type::Set) => {
            let mut items = resource.set.clone().unwrap_or_default().item;
            items.sort();
            items.dedup();
            out.set = Some(value::Set { item: items });
        }
        Ok(value::Type::Text) | Err(_) => {}
    }
    out
}

fn same_kind(a: &Resource, b: &Resource) -> bool {
    a.name == b.name
        && a.r#type == b.r#type
        && reservation_role(a) == reservation_role(b)
        && a.revocable.is_some() == b.revocable.is_some()
        && a.shared.is_some() == b.shared.is_some()
}

fn is_empty_value(resource: &Resource) -> bool {
    match value::Type::try_from(resource.r#type) {
        Ok(value::Type::Scalar) => resource.scalar.is_none_or(|s| s.value < EPSILON),
        Ok(value::Type::Ranges) => resource.ranges.as_ref().is_none_or(|r| r.range.is_empty()),
        Ok(value::Type::Set) => resource.set.as_ref().is_none_or(|s| s.item.is_empty()),
        Ok(value::Type::Text) | Err(_) => true,
    }
}

fn ranges_of(resource: &Resource) -> Vec<(u64, u64)> {
    resource
        .ranges
        .as_ref()
        .map(|r| r.range.iter().map(|r| (r.begin, r.end)).collect())
        .unwrap_or_default()
}

fn to_ranges(ranges: Vec<(u64, u64)>) -> value::Ranges {
    value::Ranges {
        range: ranges
            .into_iter()
            .map(|(begin, end)| value::Range { begin, end })
            .collect(),
    }
}

/// Sorts and coalesces overlapping or adjacent inclusive ranges.
fn merge_ranges(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (begin, end) in ranges {
        match out.last_mut() {
            Some(last) if begin <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => out.push((begin, end)),
        }
    }
    out
}

fn subtract_ranges(have: &[(u64, u64)], take: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = have.to_vec();
    for &(tb, te) in take {
        out = out
            .into_iter()
            .flat_map(|(b, e)| {
                if te < b || tb > e {
                    return vec![(b, e)];
                }
                let mut parts = Vec::new();
                if tb > b {
                    parts.push((b, tb - 1));
                }
                if te < e {
                    parts.push((te + 1, e));
                }
                parts
            })
            .collect();
    }
    out
}

fn merge(into: &mut Resource, other: &Resource) {
    if let (Some(a), Some(b)) = (into.scalar.as_mut(), other.scalar) {
        a.value = round_scalar(a.value + b.value);
    }
    if other.ranges.is_some() {
        let mut all = ranges_of(into);
        all.extend(ranges_of(other));
        into.ranges = Some(to_ranges(merge_ranges(all)));
    }
    if let (Some(a), Some(b)) = (into.set.as_mut(), other.set.as_ref()) {
        a.item.extend(b.item.iter().cloned());
        a.item.sort();
        a.item.dedup();
    }
}

fn remove(from: &mut Resource, other: &Resource) {
    if let (Some(a), Some(b)) = (from.scalar.as_mut(), other.scalar) {
        a.value = round_scalar((a.value - b.value).max(0.0));
    }
    if other.ranges.is_some() {
        let left = subtract_ranges(&ranges_of(from), &ranges_of(other));
        from.ranges = Some(to_ranges(left));
    }
    if let (Some(a), Some(b)) = (from.set.as_mut(), other.set.as_ref()) {
        a.item.retain(|item| !b.item.contains(item));
    }
}

fn covers(have: &Resource, wanted: &Resource) -> bool {
    match value::Type::try_from(wanted.r#type) {
        Ok(value::Type::Scalar) => {
            have.scalar.map_or(0.0, |s| s.value) + EPSILON >= wanted.scalar.map_or(0.0, |s| s.value)
        }
        Ok(value::Type::Ranges) => subtract_ranges(&ranges_of(wanted), &ranges_of(have)).is_empty(),
        Ok(value::Type::Set) => {
            let have = have
                .set
                .as_ref()
                .map(|s| s.item.as_slice())
                .unwrap_or_default();
            wanted
                .set
                .as_ref()
                .is_none_or(|s| s.item.iter().all(|item| have.contains(item)))
        }
        Ok(value::Type::Text) | Err(_) => false,
    }
}

/// Mesos's text form of a resource value, used by the `/state` endpoint:
/// `[31000-32000]` for ranges, `{a,b}` for sets.
pub fn value_text(resource: &Resource) -> String {
    if let Some(ranges) = &resource.ranges {
        let parts: Vec<String> = ranges
            .range
            .iter()
            .map(|r| format!("{}-{}", r.begin, r.end))
            .collect();
        return format!("[{}]", parts.join(", "));
    }
    if let Some(set) = &resource.set {
        return format!("{{{}}}", set.item.join(","));
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::parse_resources;

    fn res(text: &str) -> Resources {
        parse_resources(text).unwrap()
    }

    #[test]
    fn adds_subtracts_and_contains() {
        let mut pool = res("cpus:4;mem:1024;ports:[31000-31010]");
        let task = res("cpus:1.5;mem:256;ports:[31002-31003]");
        assert!(pool.contains(&task));
        pool.subtract_all(&task);
        assert_eq!(
            pool,
            res("cpus:2.5;mem:768;ports:[31000-31001,31004-31010]")
        );
        assert!(!pool.contains(&res("ports:[31002-31002]")));
        assert!(!pool.contains(&res("cpus:2.6")));
        assert!(pool.contains(&res("cpus:2.5")));
        pool.add_all(&task);
        assert_eq!(pool, res("cpus:4;mem:1024;ports:[31000-31010]"));
    }

    #[test]
    fn scalars_round_to_three_decimals() {
        let mut pool = res("cpus:0.3");
        pool.subtract_all(&res("cpus:0.1"));
        pool.subtract_all(&res("cpus:0.2"));
        assert!(pool.is_empty());
        assert_eq!(round_scalar(0.1 + 0.2), 0.3);
    }

    #[test]
    fn reserved_resources_are_separate_and_usable_by_descendants() {
        let pool = res("cpus:4;cpus(eng):2");
        assert_eq!(pool.scalar("cpus"), 6.0);
        assert_eq!(pool.usable_by("ops").scalar("cpus"), 4.0);
        assert_eq!(pool.usable_by("eng").scalar("cpus"), 6.0);
        assert_eq!(pool.usable_by("eng/web").scalar("cpus"), 6.0);
        assert_eq!(pool.usable_by("engineering").scalar("cpus"), 4.0);
        assert!(!pool.contains(&res("cpus(ops):1")));
    }

    #[test]
    fn prints_values_like_mesos_state() {
        let pool = res("ports:[1-2,4-5];s:{b,a}");
        let texts: Vec<_> = pool.iter().map(value_text).collect();
        assert_eq!(texts, vec!["[1-2, 4-5]", "{a,b}"]);
    }
}
