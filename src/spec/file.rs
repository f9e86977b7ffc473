//! Stage one: `meshctl.yaml` as written. Raw serde structs that reject
//! unknown fields (a typo such as `wieght` is an error naming its line,
//! column and the valid field names), built from the self-validating
//! [`super::values`]; and where an error in the file is (line and column of
//! a key path) for the cross-field errors of stage two.

use super::*;

pub(super) fn parse_raw(text: &str, path: &Path) -> Result<RawSpec, SpecError> {
    let blank = text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    if blank {
        return Ok(RawSpec::default());
    }
    yaml::from_str(text).map_err(|source| SpecError::Parse {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

/// The file a spec came from, for positions of cross-field errors.
#[derive(Clone, Copy)]
pub(super) struct FileCtx<'a> {
    pub(super) path: Option<&'a Path>,
    pub(super) text: &'a str,
}

impl FileCtx<'_> {
    /// An error about the file field at `keys` (`["weights", "v3"]`).
    pub(super) fn invalid(&self, keys: &[&str], message: impl Into<String>) -> SpecError {
        let field = keys.join(".");
        let file = self
            .path
            .map_or_else(|| DEFAULT_FILE.to_owned(), |p| p.display().to_string());
        let at = match locate(self.text, keys) {
            Some((line, column)) => {
                format!("{file}: line {line} column {column} at field `{field}`")
            }
            None if field.is_empty() => file,
            None => format!("{file}: field `{field}`"),
        };
        SpecError::Invalid {
            at,
            field,
            message: message.into(),
        }
    }
}

pub(super) fn flag_error(flag: &str, value: &str, message: impl fmt::Display) -> SpecError {
    SpecError::Invalid {
        at: if value.is_empty() {
            flag.to_owned()
        } else {
            format!("{flag} {value:?}")
        },
        field: flag.to_owned(),
        message: message.to_string(),
    }
}

/// Finds the line and column of a key path in block-style YAML, such as
/// `["weights", "v3"]`. Flow style (`{v3: 10}`) is not searched; the error
/// then names the field without a position.
pub(super) fn locate(text: &str, keys: &[&str]) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let content = |l: &str| {
        let t = l.trim_start();
        !t.is_empty() && !t.starts_with('#') && t != "---"
    };
    let indent = |l: &str| l.len() - l.trim_start().len();
    let (mut start, mut end) = (0, lines.len());
    let mut found = None;
    for key in keys {
        let child = (start..end).find(|&i| content(lines[i]))?;
        let level = indent(lines[child]);
        let hit = (child..end).find(|&i| {
            let l = lines[i];
            if !content(l) || indent(l) != level {
                return false;
            }
            let t = l.trim_start();
            let t = t
                .strip_prefix('"')
                .and_then(|r| r.strip_prefix(*key))
                .and_then(|r| r.strip_prefix('"'))
                .or_else(|| t.strip_prefix(*key));
            t.is_some_and(|r| r.trim_start().starts_with(':'))
        })?;
        found = Some((hit + 1, level + 1));
        start = hit + 1;
        end = (start..end)
            .find(|&i| content(lines[i]) && indent(lines[i]) <= level)
            .unwrap_or(end);
    }
    found
}

/// `meshctl.yaml` as written. Unknown fields are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawSpec {
    pub(super) service: Option<Label>,
    pub(super) namespace: Option<Label>,
    #[serde(default)]
    pub(super) hosts: Vec<Host>,
    pub(super) gateway: Option<RawGateway>,
    pub(super) port: Option<Port>,
    pub(super) versions: Option<RawVersions>,
    pub(super) weights: Option<RawWeights>,
    pub(super) istio_api: Option<IstioApi>,
    pub(super) rollout: Option<RawRollout>,
    pub(super) metrics: Option<RawMetrics>,
    #[serde(default)]
    pub(super) webhooks: Vec<RawWebhook>,
    pub(super) sticky_cookie: Option<CookieValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawGateway {
    pub(super) name: Option<Subdomain>,
    pub(super) port: Option<Port>,
    pub(super) tls: Option<RawTls>,
    pub(super) selector: Option<Labels>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawTls {
    pub(super) credential_name: Subdomain,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawRollout {
    pub(super) steps: Option<Vec<WeightValue>>,
    pub(super) step_weight: Option<WeightValue>,
    pub(super) max_weight: Option<WeightValue>,
    pub(super) interval: Option<IntervalValue>,
    pub(super) threshold: Option<u32>,
    pub(super) success_rate: Option<Percent>,
    pub(super) max_p99: Option<DurationValue>,
    pub(super) min_requests: Option<u64>,
    pub(super) analysis: Option<crate::rollout::analysis::Analysis>,
    pub(super) confidence: Option<Percent>,
    pub(super) timeout: Option<DurationValue>,
    pub(super) manual_promotion: Option<bool>,
    pub(super) on_interrupt: Option<OnInterrupt>,
    pub(super) grpc_error_codes: Option<GrpcCodesValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub(super) proxy: Option<HttpUrl>,
    pub(super) prometheus: Option<HttpUrl>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    pub(super) name: Label,
    #[serde(rename = "type")]
    pub(super) kind: WebhookType,
    pub(super) url: HttpUrl,
    pub(super) timeout: Option<DurationValue>,
}

/// `istioApi`: which `networking.istio.io` version to emit.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum IstioApi {
    V1,
    V1beta1,
}

impl From<IstioApi> for ApiVersion {
    fn from(v: IstioApi) -> Self {
        match v {
            IstioApi::V1 => ApiVersion::V1,
            IstioApi::V1beta1 => ApiVersion::V1beta1,
        }
    }
}

pub(super) fn parse_istio_api(s: &str) -> Result<ApiVersion, String> {
    match s.strip_prefix("networking.istio.io/").unwrap_or(s) {
        "v1" => Ok(ApiVersion::V1),
        "v1beta1" => Ok(ApiVersion::V1beta1),
        _ => Err("unsupported Istio API version: use v1 (Istio 1.22 and later) or v1beta1".into()),
    }
}
