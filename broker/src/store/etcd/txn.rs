//! A commit as etcd transactions.
//!
//! etcd refuses a transaction that puts a key twice, or puts a key that it
//! also deletes, whatever their order; and it bounds a transaction to 128
//! operations and a request to about 1.5 MB. So a commit is first reduced
//! to its net effect — the last write of each key, and each range deleted
//! with holes at the keys put after it — in which no two writes touch the
//! same key but to delete it, so that any run of them is a valid
//! transaction and the runs together leave what the commit in order would.
//! Then it is cut into runs within both bounds.

use std::{collections::BTreeMap, ops::Bound};

use etcd_client::{DeleteOptions, TxnOp};

use crate::store::Write;

/// etcd's default `--max-txn-ops`.
const MAX_TXN_OPS: usize = 128;

/// What a transaction's operations may add up to, keys and values:
/// under etcd's default `--max-request-bytes` of 1.5 MiB, with room for
/// the request's own framing, and above one record of the largest size.
const MAX_TXN_BYTES: usize = 1_400_000;

/// The framing of one operation in a transaction beyond its key and
/// value, counted generously.
const OP_OVERHEAD: usize = 32;

/// The net effect of `writes` as etcd operations on keys under `root`, cut
/// into runs that each fit in one transaction, in the commit's order.
pub(super) fn transactions(root: &str, writes: Vec<Write>) -> Vec<Vec<TxnOp>> {
    let key = |key: &str| format!("{root}{key}");
    let mut transactions = Vec::new();
    let (mut operations, mut bytes) = (Vec::new(), 0);
    for write in net_effect(writes) {
        let (operation, size) = match write {
            Write::Put { key: k, value } => {
                let k = key(&k);
                let size = k.len() + value.len();
                (TxnOp::put(k, value, None), size)
            }
            Write::Delete { key: k } => {
                let k = key(&k);
                let size = k.len();
                (TxnOp::delete(k, None), size)
            }
            Write::DeleteRange { start, end } => {
                let (start, end) = (key(&start), key(&end));
                let size = start.len() + end.len();
                let range = DeleteOptions::new().with_range(end);
                (TxnOp::delete(start, Some(range)), size)
            }
        };
        let size = size + OP_OVERHEAD;
        if !operations.is_empty()
            && (operations.len() == MAX_TXN_OPS || bytes + size > MAX_TXN_BYTES)
        {
            transactions.push(std::mem::take(&mut operations));
            bytes = 0;
        }
        operations.push(operation);
        bytes += size;
    }
    if !operations.is_empty() {
        transactions.push(operations);
    }
    transactions
}

/// Writes that leave what `writes` applied in order would, in the order
/// of the writes they come from, with no key put twice, no key both put
/// and deleted, and no empty range.
fn net_effect(writes: Vec<Write>) -> Vec<Write> {
    // The last put or delete of each key, with its position in the commit;
    // a range deleted later drops those it covers.
    let mut points: BTreeMap<String, (usize, Write)> = BTreeMap::new();
    let mut ranges = Vec::new();
    for (position, write) in writes.into_iter().enumerate() {
        match write {
            Write::Put { ref key, .. } | Write::Delete { ref key } => {
                points.insert(key.clone(), (position, write));
            }
            Write::DeleteRange { start, end } if start < end => {
                let covered: Vec<String> = points
                    .range::<str, _>(between(&start, &end))
                    .map(|(key, _)| key.clone())
                    .collect();
                for key in covered {
                    points.remove(&key);
                }
                ranges.push((position, start, end));
            }
            Write::DeleteRange { .. } => {}
        }
    }
    let mut net = Vec::new();
    for (position, start, end) in ranges {
        // What a range still covers was put after it: leave a hole there.
        let put_after: Vec<&String> = points
            .range::<str, _>(between(&start, &end))
            .filter(|(_, (_, write))| matches!(write, Write::Put { .. }))
            .map(|(key, _)| key)
            .collect();
        let mut from = start;
        for key in put_after {
            if from < *key {
                let end = key.clone();
                net.push((position, Write::DeleteRange { start: from, end }));
            }
            // The first key after `key` in byte order.
            from = format!("{key}\0");
        }
        if from < end {
            net.push((position, Write::DeleteRange { start: from, end }));
        }
    }
    net.extend(points.into_values());
    net.sort_by_key(|(position, _)| *position);
    net.into_iter().map(|(_, write)| write).collect()
}

/// The keys in `[start, end)`.
fn between<'a>(start: &'a str, end: &'a str) -> (Bound<&'a str>, Bound<&'a str>) {
    (Bound::Included(start), Bound::Excluded(end))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn big_commits_are_cut_by_count_and_by_size() {
        let puts = |count: usize, size: usize| {
            (0..count)
                .map(|i| Write::Put {
                    key: format!("k{i:04}"),
                    value: vec![0; size],
                })
                .collect::<Vec<_>>()
        };
        let lengths = |writes| {
            transactions("/agora/data/", writes)
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>()
        };
        assert_eq!(lengths(puts(300, 1)), [128, 128, 44]);
        // 13 values of 100 KB fit in 1.4 MB, 14 do not.
        assert_eq!(lengths(puts(27, 100_000)), [13, 13, 1]);
        assert_eq!(lengths(puts(2, 1024 * 1024)), [1, 1]);
        let empty_range = Write::DeleteRange {
            start: "b".into(),
            end: "a".into(),
        };
        assert!(lengths(vec![empty_range]).is_empty());
    }

    #[test]
    fn a_range_gets_holes_at_keys_put_after_it() {
        let range = |start: &str, end: &str| Write::DeleteRange {
            start: start.into(),
            end: end.into(),
        };
        let put = |key: &str| Write::Put {
            key: key.into(),
            value: b"v".to_vec(),
        };
        let net = net_effect(vec![put("b"), range("a", "d"), put("c"), put("a")]);
        assert_eq!(
            net,
            [range("a\0", "c"), range("c\0", "d"), put("c"), put("a")]
        );
    }

    /// Applies `writes` in order to `records`, as redb does.
    fn apply(records: &mut BTreeMap<String, Vec<u8>>, writes: &[Write]) {
        for write in writes {
            match write {
                Write::Put { key, value } => {
                    records.insert(key.clone(), value.clone());
                }
                Write::Delete { key } => {
                    records.remove(key);
                }
                Write::DeleteRange { start, end } => {
                    records.retain(|key, _| !(start <= key && key < end));
                }
            }
        }
    }

    fn write() -> impl Strategy<Value = Write> {
        // Few short keys, so that writes collide and ranges cover them.
        let key = "[ab]{0,3}";
        prop_oneof![
            (key, any::<u8>()).prop_map(|(key, v)| Write::Put {
                key,
                value: vec![v]
            }),
            key.prop_map(|key| Write::Delete { key }),
            (key, key).prop_map(|(start, end)| Write::DeleteRange { start, end }),
        ]
    }

    proptest! {
        #[test]
        fn the_net_effect_is_the_commit_and_etcd_accepts_it(
            before in prop::collection::vec(write(), 0..10),
            commit in prop::collection::vec(write(), 0..20),
        ) {
            let mut expected = BTreeMap::new();
            apply(&mut expected, &before);
            let mut actual = expected.clone();
            apply(&mut expected, &commit);
            let net = net_effect(commit);
            apply(&mut actual, &net);
            prop_assert_eq!(&actual, &expected);

            // etcd's rule: a key put once at most, and never deleted too.
            let mut put = std::collections::HashSet::new();
            for write in &net {
                if let Write::Put { key, .. } = write {
                    prop_assert!(put.insert(key.clone()), "{key:?} put twice in {net:?}");
                }
            }
            for write in &net {
                let deletes = |key: &String| match write {
                    Write::Put { .. } => false,
                    Write::Delete { key: deleted } => deleted == key,
                    Write::DeleteRange { start, end } => start <= key && key < end,
                };
                prop_assert!(!put.iter().any(deletes), "{write:?} deletes a key put in {net:?}");
                if let Write::DeleteRange { start, end } = write {
                    prop_assert!(start < end, "empty range in {net:?}");
                }
            }
        }
    }
}
