//! The rule for the names people choose: frontends and namespaces. Both
//! end up inside Mesos task ids (at most 255 bytes, no path separators or
//! control characters) and namespaces inside Mesos roles, so one plain rule
//! keeps every name safe in both places.

/// The longest name: three of them (namespace, frontend, the frontend's
/// task id) plus a generated suffix stay within Mesos's 255-byte task ids.
pub const MAX_NAME_BYTES: usize = 64;

/// Refuses a name that is not 1 to [`MAX_NAME_BYTES`] ASCII letters,
/// digits, `-`, `_` and `.`, starting with a letter or digit; so `*`, `.`,
/// `..`, `/`, whitespace and control characters are all refused. The reason
/// is in words.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "at most {MAX_NAME_BYTES} bytes allowed, {} given",
            name.len()
        ));
    }
    let well_formed = name
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not a name: use 1 to {MAX_NAME_BYTES} letters, digits, '-', '_' or '.', starting with a letter or digit",
            name.escape_debug()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_take_what_task_ids_and_roles_take() {
        for good in ["default", "a", "eng.batch-2_x", &"n".repeat(MAX_NAME_BYTES)] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "*",
            ".",
            "..",
            "a/b",
            "/x",
            "-x",
            ".hidden",
            "a b",
            "tab\t",
            "nul\0",
            "é",
            &"n".repeat(MAX_NAME_BYTES + 1),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
