//! Scalar quantities: what quota, DRF shares and headroom are counted
//! in. A leaf of the allocator, so that `drf` and `quota` use it without
//! depending on the allocator that uses them.

use std::collections::BTreeMap;

use crate::resources::Resources;

/// Scalar quantities by resource name.
pub type Quantities = BTreeMap<String, f64>;

/// Scalar quantities of `resources`.
pub fn quantities(resources: &Resources) -> Quantities {
    let mut out = Quantities::new();
    for r in resources.iter() {
        if let Some(scalar) = r.scalar {
            *out.entry(r.name.clone()).or_default() += scalar.value;
        }
    }
    out
}

/// Adds `other` into `into`, name by name.
pub fn add_quantities(into: &mut Quantities, other: &Quantities) {
    for (name, value) in other {
        *into.entry(name.clone()).or_default() += value;
    }
}
