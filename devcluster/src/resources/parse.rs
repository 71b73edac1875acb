//! Mesos's text syntax for agent resources and attributes, as given to
//! `mesos-agent --resources` and `--attributes`.
//!
//! Resources: `cpus:4;mem:8192;ports:[31000-32000];gpus_models:{a,b}`, and
//! `cpus(batch):8` for a static reservation to role `batch`. Attributes:
//! `rack:r1;zone:a;level:3;ports:[1-2];tags:{x,y}`, where a value that is a
//! number is SCALAR, `[..]` RANGES, `{..}` SET and anything else TEXT.

use agora_proto::mesos::v1::{Attribute, Resource, value};

use super::bag::{Resources, round_scalar};
use super::role::is_valid_role;

/// Why a resource or attribute string could not be parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// An item is not of the form `name:value`.
    #[error("'{item}' is not of the form name:value")]
    MissingColon {
        /// The offending `;`-separated item.
        item: String,
    },
    /// The name before `:` (or before `(role)`) is empty.
    #[error("'{item}' has an empty name")]
    EmptyName {
        /// The offending item.
        item: String,
    },
    /// The `(role)` part is malformed or names an invalid role.
    #[error("'{item}' has an invalid role: {reason}")]
    InvalidRole {
        /// The offending item.
        item: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A scalar is not a finite, non-negative number.
    #[error("'{value}' of '{name}' is not a finite non-negative number")]
    InvalidScalar {
        /// Resource or attribute name.
        name: String,
        /// The value text.
        value: String,
    },
    /// A `[..]` list is malformed (each element `begin-end`, begin ≤ end).
    #[error("'{value}' of '{name}' is not a list of ranges like [31000-32000,33000-33100]")]
    InvalidRanges {
        /// Resource or attribute name.
        name: String,
        /// The value text.
        value: String,
    },
    /// A `{..}` set is malformed (unbalanced braces or empty items).
    #[error("'{value}' of '{name}' is not a set like {{a,b}}")]
    InvalidSet {
        /// Resource or attribute name.
        name: String,
        /// The value text.
        value: String,
    },
    /// A resource name is given twice with different value types.
    #[error("resource '{name}' is given with different types")]
    TypeMismatch {
        /// Resource name.
        name: String,
    },
}

/// Parses a resource string into unreserved or statically reserved
/// resources (pre-refinement format: `role` is `*` or the reservation role).
/// Entries with the same name and role are added up; zero scalars vanish.
pub fn parse_resources(text: &str) -> Result<Resources, ParseError> {
    let mut resources = Resources::default();
    let mut types: Vec<(String, i32)> = Vec::new();
    for item in items(text) {
        let (head, value) = item
            .split_once(':')
            .ok_or_else(|| ParseError::MissingColon {
                item: item.to_string(),
            })?;
        let (name, role) = split_role(item, head.trim())?;
        let value = value.trim();
        let mut resource = parse_value(&name, value)?;
        if let Some((_, known)) = types.iter().find(|(n, _)| *n == name) {
            if *known != resource.r#type {
                return Err(ParseError::TypeMismatch { name });
            }
        } else {
            types.push((name.clone(), resource.r#type));
        }
        #[allow(deprecated)]
        {
            resource.role = Some(role);
        }
        resources.add(&resource);
    }
    Ok(resources)
}

/// Parses an attribute string. Order is kept, as Mesos keeps it.
pub fn parse_attributes(text: &str) -> Result<Vec<Attribute>, ParseError> {
    items(text)
        .map(|item| {
            let (name, value) = item
                .split_once(':')
                .ok_or_else(|| ParseError::MissingColon {
                    item: item.to_string(),
                })?;
            let name = name.trim();
            if name.is_empty() {
                return Err(ParseError::EmptyName {
                    item: item.to_string(),
                });
            }
            let value = value.trim();
            let mut attribute = Attribute {
                name: name.to_string(),
                ..Default::default()
            };
            if value.starts_with('[') || value.starts_with('{') {
                let parsed = parse_value(name, value)?;
                attribute.r#type = parsed.r#type;
                attribute.ranges = parsed.ranges;
                attribute.set = parsed.set;
            } else if let Some(number) = value.parse::<f64>().ok().filter(|v| v.is_finite()) {
                attribute.r#type = value::Type::Scalar as i32;
                attribute.scalar = Some(value::Scalar {
                    value: round_scalar(number),
                });
            } else {
                attribute.r#type = value::Type::Text as i32;
                attribute.text = Some(value::Text {
                    value: value.to_string(),
                });
            }
            Ok(attribute)
        })
        .collect()
}

fn items(text: &str) -> impl Iterator<Item = &str> {
    text.split(';')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

fn split_role(item: &str, head: &str) -> Result<(String, String), ParseError> {
    let invalid = |reason: &str| ParseError::InvalidRole {
        item: item.to_string(),
        reason: reason.to_string(),
    };
    let (name, role) = match head.split_once('(') {
        None => (head, "*"),
        Some((name, rest)) => {
            let role = rest
                .strip_suffix(')')
                .ok_or_else(|| invalid("missing ')'"))?;
            (name.trim(), role.trim())
        }
    };
    if name.is_empty() {
        return Err(ParseError::EmptyName {
            item: item.to_string(),
        });
    }
    if role != "*" && !is_valid_role(role) {
        return Err(invalid("not a valid Mesos role name"));
    }
    Ok((name.to_string(), role.to_string()))
}

fn parse_value(name: &str, value: &str) -> Result<Resource, ParseError> {
    let mut resource = Resource {
        name: name.to_string(),
        ..Default::default()
    };
    if let Some(body) = value.strip_prefix('[') {
        let invalid = || ParseError::InvalidRanges {
            name: name.to_string(),
            value: value.to_string(),
        };
        let body = body.strip_suffix(']').ok_or_else(invalid)?;
        let mut ranges = Vec::new();
        for part in body.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (begin, end) = part.split_once('-').ok_or_else(invalid)?;
            let begin: u64 = begin.trim().parse().map_err(|_| invalid())?;
            let end: u64 = end.trim().parse().map_err(|_| invalid())?;
            if begin > end {
                return Err(invalid());
            }
            ranges.push(value::Range { begin, end });
        }
        resource.r#type = value::Type::Ranges as i32;
        resource.ranges = Some(value::Ranges { range: ranges });
    } else if let Some(body) = value.strip_prefix('{') {
        let invalid = || ParseError::InvalidSet {
            name: name.to_string(),
            value: value.to_string(),
        };
        let body = body.strip_suffix('}').ok_or_else(invalid)?;
        let mut item = Vec::new();
        for part in body.split(',').map(str::trim) {
            if part.is_empty() {
                if body.trim().is_empty() {
                    break;
                }
                return Err(invalid());
            }
            item.push(part.to_string());
        }
        resource.r#type = value::Type::Set as i32;
        resource.set = Some(value::Set { item });
    } else {
        let number = value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| ParseError::InvalidScalar {
                name: name.to_string(),
                value: value.to_string(),
            })?;
        resource.r#type = value::Type::Scalar as i32;
        resource.scalar = Some(value::Scalar {
            value: round_scalar(number),
        });
    }
    Ok(resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_default_agent_resources() {
        let resources = parse_resources("cpus:4;mem:8192;disk:20000;ports:[31000-32000]").unwrap();
        assert_eq!(resources.scalar("cpus"), 4.0);
        assert_eq!(resources.scalar("mem"), 8192.0);
        assert_eq!(resources.scalar("disk"), 20000.0);
        let ports = resources.iter().find(|r| r.name == "ports").unwrap();
        assert_eq!(ports.r#type, value::Type::Ranges as i32);
        assert_eq!(
            ports.ranges.as_ref().unwrap().range,
            vec![value::Range {
                begin: 31000,
                end: 32000
            }]
        );
        #[allow(deprecated)]
        let role = ports.role.clone();
        assert_eq!(role.as_deref(), Some("*"));
    }

    #[test]
    fn parses_static_reservations_sets_and_merges_duplicates() {
        let resources = parse_resources(
            "cpus(batch):8; cpus:2; cpus:1.5; gpu_models:{a100, h100}; ports:[1-2,5-6]",
        )
        .unwrap();
        assert_eq!(resources.scalar("cpus"), 11.5);
        #[allow(deprecated)]
        let roles: Vec<_> = resources
            .iter()
            .filter(|r| r.name == "cpus")
            .map(|r| (r.role.clone().unwrap(), r.scalar.unwrap().value))
            .collect();
        assert_eq!(roles, vec![("batch".into(), 8.0), ("*".into(), 3.5)]);
        let set = resources.iter().find(|r| r.name == "gpu_models").unwrap();
        assert_eq!(set.set.as_ref().unwrap().item, vec!["a100", "h100"]);
    }

    #[test]
    fn rejects_bad_resources_with_a_reason() {
        let cases = [
            (
                "cpus",
                ParseError::MissingColon {
                    item: "cpus".into(),
                },
            ),
            (":4", ParseError::EmptyName { item: ":4".into() }),
            (
                "cpus:-1",
                ParseError::InvalidScalar {
                    name: "cpus".into(),
                    value: "-1".into(),
                },
            ),
            (
                "cpus:NaN",
                ParseError::InvalidScalar {
                    name: "cpus".into(),
                    value: "NaN".into(),
                },
            ),
            (
                "ports:[5-1]",
                ParseError::InvalidRanges {
                    name: "ports".into(),
                    value: "[5-1]".into(),
                },
            ),
            (
                "ports:[1-2",
                ParseError::InvalidRanges {
                    name: "ports".into(),
                    value: "[1-2".into(),
                },
            ),
            (
                "s:{a,,b}",
                ParseError::InvalidSet {
                    name: "s".into(),
                    value: "{a,,b}".into(),
                },
            ),
            (
                "cpus:1;cpus:[1-2]",
                ParseError::TypeMismatch {
                    name: "cpus".into(),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_resources(text).unwrap_err(), expected, "{text}");
        }
        assert!(matches!(
            parse_resources("cpus(a b):1"),
            Err(ParseError::InvalidRole { .. })
        ));
        assert!(matches!(
            parse_resources("cpus(batch:1"),
            Err(ParseError::InvalidRole { .. })
        ));
    }

    #[test]
    fn parses_attributes_of_every_type() {
        let attributes = parse_attributes("rack:r1; level:3; ports:[1-5]; tags:{x,y}").unwrap();
        let types: Vec<_> = attributes
            .iter()
            .map(|a| (a.name.as_str(), a.r#type))
            .collect();
        assert_eq!(
            types,
            vec![
                ("rack", value::Type::Text as i32),
                ("level", value::Type::Scalar as i32),
                ("ports", value::Type::Ranges as i32),
                ("tags", value::Type::Set as i32),
            ]
        );
        assert_eq!(attributes[0].text.as_ref().unwrap().value, "r1");
        assert_eq!(attributes[1].scalar.unwrap().value, 3.0);
        assert!(parse_attributes("").unwrap().is_empty());
        assert!(matches!(
            parse_attributes("rack"),
            Err(ParseError::MissingColon { .. })
        ));
        assert!(matches!(
            parse_attributes("rack:[1-"),
            Err(ParseError::InvalidRanges { .. })
        ));
    }
}
