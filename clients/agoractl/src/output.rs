//! What a command shows: a table, a message, or an API answer as JSON or
//! YAML in the protobuf JSON mapping (field names in lowerCamelCase, enums
//! by name, timestamps and durations as RFC 3339 strings).

use std::sync::LazyLock;

use prost::{Message, Name};
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, SerializeOptions};

use crate::cli::Format;

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(agora_proto::FILE_DESCRIPTOR_SET)
        .expect("agora-proto's descriptor set decodes")
});

/// Columns of text, aligned when printed. Columns marked wide are shown
/// only with `-o wide`.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    columns: Vec<(&'static str, bool)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these headers; `(header, wide_only)`.
    pub fn new(columns: &[(&'static str, bool)]) -> Table {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row: one cell per column, in order.
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len());
        self.rows.push(cells);
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text: headers, then rows, columns separated by at least
    /// three spaces, no trailing spaces; the wide columns only if `wide`.
    pub fn render(&self, wide: bool) -> String {
        let shown: Vec<usize> = (0..self.columns.len())
            .filter(|&i| wide || !self.columns[i].1)
            .collect();
        let header: Vec<String> = shown.iter().map(|&i| self.columns[i].0.into()).collect();
        let lines: Vec<Vec<String>> = std::iter::once(header)
            .chain(
                self.rows
                    .iter()
                    .map(|row| shown.iter().map(|&i| row[i].clone()).collect()),
            )
            .collect();
        let widths: Vec<usize> = (0..shown.len())
            .map(|c| {
                lines
                    .iter()
                    .map(|l| l[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for line in lines {
            let mut text = String::new();
            for (c, cell) in line.iter().enumerate() {
                text.push_str(cell);
                if c + 1 < line.len() {
                    let pad = widths[c] - cell.chars().count() + 3;
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// What a command shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Rows, for `-o table` and `-o wide`, and the API's answer for
    /// `-o json` and `-o yaml`.
    Listing {
        /// The rows.
        table: Table,
        /// The API's answer.
        answer: Answer,
        /// Said instead of an empty table (as kubectl's "No resources
        /// found").
        empty: &'static str,
    },
    /// Text for people, for `-o table` and `-o wide`; the answer otherwise.
    Text {
        /// The text.
        text: String,
        /// The API's answer.
        answer: Answer,
    },
}

impl Output {
    /// The output as text in `format`.
    pub fn render(&self, format: Format) -> String {
        match (self, format) {
            (Output::Listing { table, empty, .. }, Format::Table | Format::Wide) => {
                if table.is_empty() {
                    format!("{empty}\n")
                } else {
                    table.render(format == Format::Wide)
                }
            }
            (Output::Text { text, .. }, Format::Table | Format::Wide) => text.clone(),
            (Output::Listing { answer, .. } | Output::Text { answer, .. }, Format::Json) => {
                let mut text = serde_json::to_string_pretty(answer)
                    .expect("a protobuf message always serialises as JSON");
                text.push('\n');
                text
            }
            (Output::Listing { answer, .. } | Output::Text { answer, .. }, Format::Yaml) => {
                serde_norway::to_string(answer)
                    .expect("a protobuf message always serialises as YAML")
            }
        }
    }
}

/// An API answer to show as JSON or YAML: one message, or several under
/// names (for commands that make several calls). Fields keep the order of
/// the `.proto`.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// One message, in the protobuf JSON mapping; fields at their default
    /// are left out, as the mapping says.
    Message(DynamicMessage),
    /// Named parts, in this order.
    Fields(Vec<(&'static str, Answer)>),
    /// A list of parts.
    List(Vec<Answer>),
    /// Nothing (JSON `null`).
    Null,
}

impl serde::Serialize for Answer {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Answer::Message(message) => {
                let options = SerializeOptions::new().skip_default_fields(true);
                message.serialize_with_options(serializer, &options)
            }
            Answer::Fields(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (name, part) in fields {
                    map.serialize_entry(name, part)?;
                }
                map.end()
            }
            Answer::List(parts) => {
                let mut seq = serializer.serialize_seq(Some(parts.len()))?;
                for part in parts {
                    seq.serialize_element(part)?;
                }
                seq.end()
            }
            Answer::Null => serializer.serialize_unit(),
        }
    }
}

/// `message` as an [`Answer`].
pub fn json<M: Message + Name>(message: &M) -> Answer {
    let descriptor = POOL
        .get_message_by_name(&M::full_name())
        .expect("every agora.v1 message has a descriptor");
    Answer::Message(
        DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
            .expect("a message re-decodes with its own descriptor"),
    )
}

/// Reads `text` (YAML or JSON; JSON is YAML) as an `M` in the protobuf JSON
/// mapping: lowerCamelCase or the `.proto` names, enums by name or number,
/// durations as `"30s"`. Unknown fields are refused, naming them.
pub fn parse<M: Message + Name + Default>(text: &str) -> anyhow::Result<M> {
    let value: serde_json::Value =
        serde_norway::from_str(text).map_err(|e| anyhow::anyhow!("not YAML or JSON: {e}"))?;
    let descriptor = POOL
        .get_message_by_name(&M::full_name())
        .expect("every agora.v1 message has a descriptor");
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let dynamic = DynamicMessage::deserialize_with_options(descriptor, value, &options)
        .map_err(|e| anyhow::anyhow!("not a valid {}: {e}", M::NAME))?;
    Ok(dynamic.transcode_to()?)
}

#[cfg(test)]
mod tests {
    use agora_proto::agora::v1 as api;

    use super::*;

    #[test]
    fn tables_align_and_hide_wide_columns() {
        let mut table = Table::new(&[("NAME", false), ("ROLE", true), ("WEIGHT", false)]);
        table.row(vec!["default".into(), "default".into(), "1".into()]);
        table.row(vec!["batch".into(), "eng/batch".into(), "2.5".into()]);
        assert_eq!(
            table.render(false),
            "NAME      WEIGHT\ndefault   1\nbatch     2.5\n"
        );
        assert_eq!(
            table.render(true),
            "NAME      ROLE        WEIGHT\ndefault   default     1\nbatch     eng/batch   2.5\n"
        );
    }

    #[test]
    fn an_empty_listing_says_so_and_json_and_yaml_show_the_answer() {
        let answer = json(&api::ListNamespacesResponse::default());
        let output = Output::Listing {
            table: Table::new(&[("NAME", false)]),
            answer,
            empty: "No namespaces found.",
        };
        assert_eq!(output.render(Format::Table), "No namespaces found.\n");
        assert_eq!(output.render(Format::Json), "{}\n");
        assert_eq!(output.render(Format::Yaml), "{}\n");
    }

    #[test]
    fn namespaces_travel_as_protobuf_json_and_back() {
        let namespace = api::Namespace {
            name: "batch".into(),
            role: "eng/batch".into(),
            weight: 2.0,
            limit: Some(api::Resources {
                cpus: 32.0,
                mem_mb: 65536.0,
                ..Default::default()
            }),
            max_hold: Some(prost_types::Duration {
                seconds: 300,
                nanos: 0,
            }),
            ..Default::default()
        };
        let yaml = serde_norway::to_string(&json(&namespace)).unwrap();
        assert_eq!(
            yaml,
            "name: batch\nrole: eng/batch\nlimit:\n  cpus: 32.0\n  memMb: 65536.0\n\
             weight: 2.0\nmaxHold: 300s\n"
        );
        assert_eq!(parse::<api::Namespace>(&yaml).unwrap(), namespace);
        let written =
            "name: ci\nlimit: {cpus: 4}\nlending: {lend: LEND_IDLE, reclaim_grace: 30s}\n";
        let parsed: api::Namespace = parse(written).unwrap();
        assert_eq!(parsed.limit.unwrap().cpus, 4.0);
        assert_eq!(parsed.lending.unwrap().reclaim_grace.unwrap().seconds, 30);
        let error = parse::<api::Namespace>("name: ci\nlimits: {cpus: 4}\n").unwrap_err();
        assert!(error.to_string().contains("limits"), "{error}");
    }
}
