//! The one place YAML is parsed and printed.
//!
//! `serde_yaml` is deprecated upstream; keeping it behind this module means a
//! swap (e.g. to `serde-saphyr`) touches one file. Parsing keeps positions:
//! every error names the document, line, column and field path.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{DestinationRule, Gateway, Resource, VirtualService};

/// A YAML document that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    /// The text is not valid YAML, or a field has the wrong type.
    #[error("{}{field_msg}: {message}", position(*line, *column))]
    Invalid {
        /// 1-based line in the whole input, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// Dotted field path (`spec.http[0].route`), `" at field PATH"` or empty.
        field_msg: String,
        /// The field path alone, empty for the document root.
        field: String,
        /// What serde said.
        message: String,
    },
    /// A document has no `kind`, or one this project does not handle.
    #[error("line {line}: {message}")]
    Kind {
        /// 1-based line where the document starts.
        line: usize,
        /// What is wrong and what is expected.
        message: String,
    },
    /// A value could not be printed as YAML.
    #[error("printing YAML: {0}")]
    Print(#[source] serde_yaml::Error),
}

fn position(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("line {l} column {c}"),
        (Some(l), None) => format!("line {l}"),
        _ => "document".to_owned(),
    }
}

// === impl YamlError ===

impl YamlError {
    /// The 1-based line of the problem, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Invalid { line, .. } => *line,
            Self::Kind { line, .. } => Some(*line),
            Self::Print(_) => None,
        }
    }

    /// The field path of the problem (`spec.http[0].route[1].weight`), when known.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } if !field.is_empty() => Some(field),
            _ => None,
        }
    }

    fn from_serde(e: &serde_yaml::Error, path: String, line_offset: usize) -> Self {
        let loc = e.location();
        // serde_yaml appends "at line L column C" to its messages; we report
        // the position ourselves (shifted to the whole input), so drop it.
        let mut message = e.to_string();
        if let Some(i) = message.find(" at line ") {
            message.truncate(i);
        }
        // serde_yaml also prefixes its own path, which for an unknown field
        // is the enclosing mapping's (`rollout: unknown field ...`); ours is
        // longer and printed separately.
        if let Some((prefix, rest)) = message.split_once(": ")
            && !prefix.contains(' ')
            && (path.starts_with(prefix) || path == ".")
        {
            message = rest.to_owned();
        }
        // serde_path_to_error spells a not-yet-known key as `?`.
        let path = match path.trim_end_matches(".?") {
            "?" => String::new(),
            p => p.to_owned(),
        };
        let field_msg = if path.is_empty() || path == "." {
            String::new()
        } else {
            format!(" at field `{path}`")
        };
        Self::Invalid {
            line: loc.as_ref().map(|l| l.line() + line_offset),
            column: loc.as_ref().map(serde_yaml::Location::column),
            field_msg,
            field: if path == "." { String::new() } else { path },
            message,
        }
    }
}

/// Parses one YAML document into `T`, with positions and a field path on error.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    from_str_at(text, 0)
}

fn from_str_at<T: DeserializeOwned>(text: &str, line_offset: usize) -> Result<T, YamlError> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        YamlError::from_serde(e.inner(), path, line_offset)
    })
}

/// Prints a value as one YAML document (no leading `---`).
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, YamlError> {
    serde_yaml::to_string(value).map_err(YamlError::Print)
}

/// One document of a multi-document stream: its text and first line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document<'a> {
    /// The document's text, without the `---` separator.
    pub text: &'a str,
    /// 1-based line in the whole input where the document's text starts.
    pub first_line: usize,
}

/// Splits a multi-document YAML stream on `---` lines, dropping documents that
/// hold only comments and blank lines.
pub fn documents(text: &str) -> Vec<Document<'_>> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        let is_sep = trimmed == "---" || trimmed.starts_with("--- ") || trimmed == "...";
        if is_sep {
            docs.push(Document {
                text: &text[start..offset],
                first_line: start_line,
            });
            start = offset + line.len();
            start_line = i + 2;
        }
        offset += line.len();
    }
    docs.push(Document {
        text: &text[start..],
        first_line: start_line,
    });
    docs.retain(|d| {
        d.text
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    docs
}

/// Parses a multi-document YAML stream of Istio resources.
///
/// Each document must have `kind: Gateway`, `VirtualService` or
/// `DestinationRule`; errors carry the line in the whole stream.
pub fn parse_resources(text: &str) -> Result<Vec<Resource>, YamlError> {
    #[derive(serde::Deserialize)]
    struct KindOnly {
        kind: Option<String>,
    }
    let mut out = Vec::new();
    for doc in documents(text) {
        let offset = doc.first_line - 1;
        let head: KindOnly = from_str_at(doc.text, offset)?;
        let resource = match head.kind.as_deref() {
            Some("Gateway") => Resource::Gateway(from_str_at::<Gateway>(doc.text, offset)?),
            Some("VirtualService") => {
                Resource::VirtualService(from_str_at::<VirtualService>(doc.text, offset)?)
            }
            Some("DestinationRule") => {
                Resource::DestinationRule(from_str_at::<DestinationRule>(doc.text, offset)?)
            }
            Some(other) => {
                return Err(YamlError::Kind {
                    line: doc.first_line,
                    message: format!(
                        "unsupported kind {other:?}: expected Gateway, VirtualService or DestinationRule"
                    ),
                });
            }
            None => {
                return Err(YamlError::Kind {
                    line: doc.first_line,
                    message: "document has no `kind`: expected Gateway, VirtualService or DestinationRule".to_owned(),
                });
            }
        };
        out.push(resource);
    }
    Ok(out)
}

/// Prints resources as a multi-document YAML stream that `kubectl apply -f -` accepts.
pub fn print_resources(resources: &[Resource]) -> Result<String, YamlError> {
    let mut out = String::new();
    for r in resources {
        out.push_str("---\n");
        out.push_str(&to_string(r)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "\
# leading comment
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: discounts
spec:
  host: discounts
  subsets:
  - name: v1
    labels: {version: v1}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: discounts
spec:
  hosts: [discounts]
  http:
  - route:
    - destination: {host: discounts, subset: v1}
      weight: ninety
";

    #[test]
    fn splits_documents_and_skips_comment_only_ones() {
        let docs = documents(TWO);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].first_line, 3);
        assert_eq!(docs[1].first_line, 13);
    }

    #[test]
    fn errors_carry_stream_line_and_field_path() {
        let err = parse_resources(TWO).unwrap_err();
        assert_eq!(err.line(), Some(22), "{err}");
        assert_eq!(err.field(), Some("spec.http[0].route[0].weight"), "{err}");
        let msg = err.to_string();
        assert!(msg.starts_with("line 22 column"), "{msg}");
        assert!(msg.contains("invalid type"), "{msg}");
    }

    #[test]
    fn unknown_kind_is_named() {
        let err =
            parse_resources("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: unsupported kind \"Service\": expected Gateway, VirtualService or DestinationRule"
        );
    }

    #[test]
    fn round_trips_resources() {
        let fixed = TWO.replace("ninety", "100");
        let parsed = parse_resources(&fixed).unwrap();
        let printed = print_resources(&parsed).unwrap();
        assert_eq!(parse_resources(&printed).unwrap(), parsed);
        assert!(printed.contains("kind: VirtualService"));
    }
}
