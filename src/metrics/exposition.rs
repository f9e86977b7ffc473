//! A small, strict parser for the Prometheus text exposition format (0.0.4)
//! and OpenMetrics text (what prometheus-client emits).
//!
//! Only what the rollout analysis needs is kept: sample name, labels and
//! value. Comments (`# HELP`, `# TYPE`, `# UNIT`, `# EOF`), timestamps and
//! OpenMetrics exemplars are accepted and dropped. Anything else that does
//! not parse is an error naming the line, because a malformed scrape must
//! fail an analysis, never pass it.

use std::collections::BTreeMap;

/// One sample: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Metric name including suffixes (`istio_requests_total`, `..._bucket`).
    pub name: String,
    /// Label pairs.
    pub labels: BTreeMap<String, String>,
    /// The value (`+Inf`, `-Inf` and `NaN` allowed).
    pub value: f64,
}

/// A line of exposition text that is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}: {text:?}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
    /// The line (shortened).
    pub text: String,
}

// === impl Sample ===

impl Sample {
    /// A label's value, `""` when absent (Prometheus semantics).
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// Parses a whole exposition.
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |message: &str| ParseError {
            line: i + 1,
            message: message.to_owned(),
            text: line.chars().take(120).collect(),
        };
        out.push(parse_sample(line).map_err(|m| err(&m))?);
    }
    Ok(out)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let line = line.trim_start();
    let name_end = line
        .char_indices()
        .find(|&(_, c)| !is_name_char(c))
        .map_or(line.len(), |(i, _)| i);
    let name = &line[..name_end];
    if name.is_empty() || !name.starts_with(is_name_start) {
        return Err("expected a metric name".to_owned());
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    // OpenMetrics exemplar: `value [timestamp] # {labels} value [ts]`.
    let rest = rest.split(" # ").next().unwrap_or(rest);
    let mut fields = rest.split_ascii_whitespace();
    let value = fields.next().ok_or("missing sample value")?;
    let value = parse_value(value).ok_or_else(|| format!("{value:?} is not a number"))?;
    if let Some(ts) = fields.next()
        && ts.parse::<f64>().is_err()
    {
        return Err(format!("{ts:?} is not a timestamp"));
    }
    if fields.next().is_some() {
        return Err("unexpected text after the timestamp".to_owned());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parses a histogram bucket bound (`le="0.5"`, `le="+Inf"`).
pub fn parse_le(s: &str) -> Option<f64> {
    parse_value(s).filter(|v| !v.is_nan())
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Parses `k="v",k2="v2"}` and returns what follows the `}`.
fn parse_labels<'a>(
    mut s: &'a str,
    labels: &mut BTreeMap<String, String>,
) -> Result<&'a str, String> {
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok(after);
        }
        let end = s
            .char_indices()
            .find(|&(_, c)| !is_name_char(c))
            .map_or(s.len(), |(i, _)| i);
        let key = &s[..end];
        if key.is_empty() {
            return Err("expected a label name".to_owned());
        }
        s = s[end..].trim_start();
        s = s
            .strip_prefix('=')
            .ok_or_else(|| format!("expected '=' after label {key:?}"))?
            .trim_start();
        s = s
            .strip_prefix('"')
            .ok_or_else(|| format!("label {key:?} value must be quoted"))?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let close = loop {
            match chars.next() {
                None => return Err(format!("unterminated value of label {key:?}")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    _ => return Err(format!("bad escape in label {key:?}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(key.to_owned(), value).is_some() {
            return Err(format!("label {key:?} given twice"));
        }
        s = s[close + 1..].trim_start();
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err("expected ',' or '}' after a label".to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_text() {
        let text = "# HELP istio_requests_total Total requests.\n\
# TYPE istio_requests_total counter\n\
istio_requests_total{destination_version=\"v1\",response_code=\"200\"} 1027 1395066363000\n\
istio_request_duration_milliseconds_bucket{le=\"+Inf\",destination_version=\"v1\"} 3\n\
weird{path=\"a\\\"b\\\\c\\nd\",} NaN\n";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].name, "istio_requests_total");
        assert_eq!(s[0].label("destination_version"), "v1");
        assert_eq!(s[0].value, 1027.0);
        assert_eq!(s[1].label("le"), "+Inf");
        assert_eq!(s[2].label("path"), "a\"b\\c\nd");
        assert!(s[2].value.is_nan());
    }

    #[test]
    fn parses_openmetrics_with_exemplars_and_eof() {
        let text = "# TYPE istio_requests counter\n\
istio_requests_total{a=\"b\"} 5 # {trace_id=\"x\"} 1 1.5\n\
istio_request_duration_milliseconds_bucket{le=\"1.0\"} 2\n\
# EOF\n";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].value, 5.0);
        assert_eq!(s[1].label("le"), "1.0");
    }

    #[test]
    fn rejects_malformed_lines_with_line_numbers() {
        let e = parse("ok 1\nistio_requests_total{a=\"b\" 5\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("expected ',' or '}'"), "{e}");
        let e = parse("x{a=b} 1").unwrap_err();
        assert!(e.to_string().contains("must be quoted"), "{e}");
        let e = parse("x 1 2 3").unwrap_err();
        assert!(e.to_string().contains("after the timestamp"), "{e}");
        let e = parse("<html>").unwrap_err();
        assert!(e.to_string().contains("expected a metric name"), "{e}");
        let e = parse("x abc").unwrap_err();
        assert!(e.to_string().contains("is not a number"), "{e}");
        let e = parse("x{a=\"1\",a=\"2\"} 1").unwrap_err();
        assert!(e.to_string().contains("given twice"), "{e}");
    }
}
