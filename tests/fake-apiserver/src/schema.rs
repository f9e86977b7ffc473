//! Structural-schema validation of custom resources, as a Kubernetes API
//! server does it for CRDs.
//!
//! [`CrdSchemas::load`] reads `CustomResourceDefinition`s (a multi-document
//! YAML file such as Istio's `networking.istio.io.yaml`) and
//! [`CrdSchemas::validate`] checks an object against the `openAPIV3Schema` of
//! its group, version and kind, with the API server's rules and messages:
//!
//! - `type` (`object`, `array`, `string`, `integer`, `number`, `boolean`),
//!   `x-kubernetes-int-or-string`, `nullable` (a `null` in a non-nullable
//!   field is pruned, as the server does, so it counts as absent);
//! - `properties`, `additionalProperties` (schema or bool), `items`,
//!   `required`, `enum`, `format` `int32`/`int64` ranges, `minimum`/`maximum`
//!   (and their exclusive forms), `minLength`/`maxLength`, `minItems`/`maxItems`,
//!   `pattern`;
//! - `oneOf`, `anyOf`, `allOf`, `not` (Istio uses `oneOf` of `required`
//!   lists for mutually exclusive fields);
//! - unknown fields, as strict field validation reports them
//!   (`unknown field "spec.http[0].route[1].wieght"`), except under
//!   `x-kubernetes-preserve-unknown-fields`;
//! - at the root, `apiVersion`, `kind` and `metadata` (ObjectMeta's fields,
//!   and `metadata.name` as a DNS-1123 subdomain) are implied.
//!
//! Not evaluated: `x-kubernetes-validations` (CEL rules), string `format`s
//! other than integer ranges, defaults.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// A CRD file that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The file could not be read.
    #[error("reading {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A document is not a valid CustomResourceDefinition.
    #[error("{}: document {index}: not a valid CustomResourceDefinition", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 0-based document index.
        index: usize,
        /// What the parser said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A `pattern` is not a regular expression this validator can run.
    #[error("{}: pattern {pattern:?} of {kind}: {source}", path.display())]
    Pattern {
        /// The file.
        path: PathBuf,
        /// The resource kind whose schema holds it.
        kind: String,
        /// The pattern.
        pattern: String,
        /// The regex error.
        #[source]
        source: regex::Error,
    },
}

/// Whether a resource lives in a namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Scope {
    /// Namespaced (`/apis/G/V/namespaces/NS/PLURAL`).
    Namespaced,
    /// Cluster-scoped (`/apis/G/V/PLURAL`).
    Cluster,
}

/// One version of a CRD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrdVersion {
    /// `v1`.
    pub name: String,
    /// Served by the API server.
    pub served: bool,
    /// The version objects are stored in (exactly one per CRD).
    pub storage: bool,
}

/// What a CRD declares about its resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrdInfo {
    /// API group (`networking.istio.io`).
    pub group: String,
    /// Versions, in the CRD's order.
    pub versions: Vec<CrdVersion>,
    /// Kind (`VirtualService`).
    pub kind: String,
    /// Kind of the list (`VirtualServiceList`).
    pub list_kind: String,
    /// Plural resource name used in paths (`virtualservices`).
    pub plural: String,
    /// Singular name (`virtualservice`).
    pub singular: String,
    /// Short names (`vs`).
    pub short_names: Vec<String>,
    /// Namespaced or cluster-scoped.
    pub scope: Scope,
}

// === impl CrdInfo ===

impl CrdInfo {
    /// The storage version's name.
    pub fn storage_version(&self) -> Option<&str> {
        self.versions
            .iter()
            .find(|v| v.storage)
            .map(|v| v.name.as_str())
    }

    /// Is `version` served?
    pub fn serves(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v.served && v.name == version)
    }
}

/// What kind of rule a field broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// Wrong JSON type (`must be of type integer`).
    Type,
    /// A field the schema does not declare (strict field validation).
    Unknown,
    /// A required field is missing.
    Required,
    /// A value outside `enum`.
    Enum,
    /// A number outside `minimum`/`maximum` or its `format`'s range.
    Range,
    /// A string outside `minLength`/`maxLength`, or not matching `pattern`.
    String,
    /// An array outside `minItems`/`maxItems`.
    Items,
    /// `oneOf`/`anyOf`/`not` not satisfied (e.g. two mutually exclusive fields).
    Combinator,
    /// ObjectMeta rules (`metadata.name` not a DNS-1123 subdomain).
    Invalid,
    /// The group/version/kind is not defined, or the version is not served.
    NotServed,
}

/// One problem, as the API server reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field: `spec.http[0].route[1].weight`; map keys in
    /// brackets (`metadata.labels[app]`); empty for the whole object.
    pub field: String,
    /// The rule broken.
    pub kind: FieldErrorKind,
    /// The server's detail message, e.g.
    /// `spec.http[0].route[1].weight in body must be of type integer: "string"`,
    /// `unknown field "spec.http[0].route[1].wieght"`, `Required value`,
    /// `supported values: "SIMPLE", "MUTUAL"`.
    pub message: String,
    /// The value the server echoes after `Invalid value:` / `Unsupported
    /// value:` (JSON text, e.g. `"string"` for a type error), if any.
    pub value: Option<String>,
}

// === impl FieldError ===

impl FieldError {
    fn new(field: &str, kind: FieldErrorKind, message: String, value: Option<String>) -> Self {
        Self {
            field: field.to_owned(),
            kind,
            message,
            value,
        }
    }
}

/// The `field.Error` form the API server puts in a 422's message and
/// `details.causes`: `spec.x: Invalid value: "string": spec.x in body must
/// be of type integer: "string"`, `spec.y: Required value`,
/// `unknown field "spec.z"`.
impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, &self.value) {
            (FieldErrorKind::Unknown | FieldErrorKind::NotServed, _) => f.write_str(&self.message),
            (FieldErrorKind::Required, _) => write!(f, "{}: {}", self.field, self.message),
            (FieldErrorKind::Enum, Some(v)) => {
                write!(
                    f,
                    "{}: Unsupported value: {v}: {}",
                    self.field, self.message
                )
            }
            (_, Some(v)) => write!(f, "{}: Invalid value: {v}: {}", self.field, self.message),
            (_, None) => write!(f, "{}: Invalid value: {}", self.field, self.message),
        }
    }
}

/// The schemas of a set of CRDs.
#[derive(Debug, Default)]
pub struct CrdSchemas {
    crds: Vec<Crd>,
}

#[derive(Debug)]
struct Crd {
    info: CrdInfo,
    /// Version name → root schema.
    schemas: BTreeMap<String, Schema>,
}

// The CRD as YAML, only the parts this module reads.
#[derive(Deserialize)]
struct CrdDoc {
    spec: CrdSpec,
}

#[derive(Deserialize)]
struct CrdSpec {
    group: String,
    names: CrdNames,
    scope: Scope,
    versions: Vec<CrdVersionDoc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CrdNames {
    kind: String,
    #[serde(default)]
    list_kind: Option<String>,
    plural: String,
    #[serde(default)]
    singular: Option<String>,
    #[serde(default)]
    short_names: Vec<String>,
}

#[derive(Deserialize)]
struct CrdVersionDoc {
    name: String,
    served: bool,
    storage: bool,
    #[serde(default)]
    schema: Option<CrdValidation>,
}

#[derive(Deserialize)]
struct CrdValidation {
    #[serde(rename = "openAPIV3Schema")]
    open_api_v3_schema: Schema,
}

/// A JSON schema node, the subset of `JSONSchemaProps` CRDs use for
/// validation. Fields not listed (descriptions, defaults, CEL) are ignored.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Schema {
    #[serde(rename = "type")]
    ty: Option<String>,
    format: Option<String>,
    #[serde(default)]
    properties: BTreeMap<String, Schema>,
    additional_properties: Option<AdditionalProperties>,
    items: Option<Box<Schema>>,
    #[serde(default)]
    required: Vec<String>,
    #[serde(rename = "enum")]
    enumeration: Option<Vec<Value>>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    #[serde(default)]
    exclusive_minimum: bool,
    #[serde(default)]
    exclusive_maximum: bool,
    min_length: Option<u64>,
    max_length: Option<u64>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    pattern: Option<String>,
    #[serde(skip)]
    compiled_pattern: Option<regex::Regex>,
    #[serde(default)]
    one_of: Vec<Schema>,
    #[serde(default)]
    any_of: Vec<Schema>,
    #[serde(default)]
    all_of: Vec<Schema>,
    not: Option<Box<Schema>>,
    #[serde(default)]
    nullable: bool,
    #[serde(rename = "x-kubernetes-preserve-unknown-fields", default)]
    preserve_unknown_fields: bool,
    #[serde(rename = "x-kubernetes-int-or-string", default)]
    int_or_string: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum AdditionalProperties {
    Allowed(bool),
    Schema(Box<Schema>),
}

// === impl Schema ===

impl Schema {
    /// Compiles every `pattern` once, at load time.
    fn compile(&mut self) -> Result<(), (String, regex::Error)> {
        if let Some(p) = &self.pattern {
            // Kubernetes patterns are unanchored, like Go's regexp.MatchString.
            self.compiled_pattern = Some(regex::Regex::new(p).map_err(|e| (p.clone(), e))?);
        }
        for s in self.properties.values_mut() {
            s.compile()?;
        }
        if let Some(AdditionalProperties::Schema(s)) = &mut self.additional_properties {
            s.compile()?;
        }
        if let Some(s) = &mut self.items {
            s.compile()?;
        }
        if let Some(s) = &mut self.not {
            s.compile()?;
        }
        for s in self
            .one_of
            .iter_mut()
            .chain(&mut self.any_of)
            .chain(&mut self.all_of)
        {
            s.compile()?;
        }
        Ok(())
    }
}

// === impl CrdSchemas ===

impl CrdSchemas {
    /// Istio's CRD schemas from `MESHCTL_ISTIO_CRDS`, else from
    /// `shared/istio-crds/networking.istio.io.yaml` beside the checkout; `None`
    /// (after saying so on stderr) when the file is missing.
    ///
    /// # Panics
    /// When the file is missing and `MESHCTL_REQUIRE_CRDS=1` (as `.ci/run`
    /// sets), or when it does not load.
    #[must_use]
    pub fn istio() -> Option<Self> {
        let path = std::env::var_os("MESHCTL_ISTIO_CRDS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../../shared/istio-crds/networking.istio.io.yaml")
            });
        if !path.is_file() {
            assert!(
                std::env::var_os("MESHCTL_REQUIRE_CRDS").is_none_or(|v| v != "1"),
                "MESHCTL_REQUIRE_CRDS=1 but Istio's CRDs are not at {} (set MESHCTL_ISTIO_CRDS)",
                path.display()
            );
            eprintln!(
                "skipped: Istio's CRDs not found at {} (set MESHCTL_ISTIO_CRDS)",
                path.display()
            );
            return None;
        }
        match Self::load(&path) {
            Ok(crds) => Some(crds),
            Err(e) => panic!("Istio's CRDs at {} do not load: {e}", path.display()),
        }
    }

    /// Reads every `CustomResourceDefinition` in a multi-document YAML file;
    /// other documents are skipped.
    pub fn load(path: &Path) -> Result<Self, SchemaError> {
        let text = std::fs::read_to_string(path).map_err(|source| SchemaError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text, path)
    }

    /// Like [`load`](Self::load), from text; `path` names it in errors.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Self, SchemaError> {
        let mut crds = Vec::new();
        for (index, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let value = Value::deserialize(doc).map_err(|source| SchemaError::Parse {
                path: path.to_owned(),
                index,
                source: source.into(),
            })?;
            if value.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
                continue;
            }
            let doc: CrdDoc =
                serde_json::from_value(value).map_err(|source| SchemaError::Parse {
                    path: path.to_owned(),
                    index,
                    source: source.into(),
                })?;
            let CrdSpec {
                group,
                names,
                scope,
                versions,
            } = doc.spec;
            let mut schemas = BTreeMap::new();
            let mut infos = Vec::new();
            for v in versions {
                infos.push(CrdVersion {
                    name: v.name.clone(),
                    served: v.served,
                    storage: v.storage,
                });
                let mut schema = v.schema.map(|s| s.open_api_v3_schema).unwrap_or_else(|| {
                    // No schema: anything goes, as with preserve-unknown-fields.
                    Schema {
                        ty: Some("object".into()),
                        preserve_unknown_fields: true,
                        ..Schema::default()
                    }
                });
                schema
                    .compile()
                    .map_err(|(pattern, source)| SchemaError::Pattern {
                        path: path.to_owned(),
                        kind: names.kind.clone(),
                        pattern,
                        source,
                    })?;
                schemas.insert(v.name, schema);
            }
            crds.push(Crd {
                info: CrdInfo {
                    group,
                    versions: infos,
                    list_kind: names
                        .list_kind
                        .unwrap_or_else(|| format!("{}List", names.kind)),
                    singular: names
                        .singular
                        .unwrap_or_else(|| names.kind.to_ascii_lowercase()),
                    kind: names.kind,
                    plural: names.plural,
                    short_names: names.short_names,
                    scope,
                },
                schemas,
            });
        }
        Ok(Self { crds })
    }

    /// The resources the CRDs define.
    pub fn kinds(&self) -> impl Iterator<Item = &CrdInfo> {
        self.crds.iter().map(|c| &c.info)
    }

    /// The CRD for `group` and `kind`, if loaded.
    pub fn find(&self, group: &str, kind: &str) -> Option<&CrdInfo> {
        self.kinds().find(|c| c.group == group && c.kind == kind)
    }

    /// The CRD for `group` and `plural` (`virtualservices`), if loaded.
    pub fn find_plural(&self, group: &str, plural: &str) -> Option<&CrdInfo> {
        self.kinds()
            .find(|c| c.group == group && c.plural == plural)
    }

    /// Validates `obj` (a whole object: `apiVersion`, `kind`, `metadata`,
    /// `spec`, ...) against the schema of `group/version` `kind`. Returns
    /// every problem, unknown fields included; empty when valid.
    pub fn validate(&self, group: &str, version: &str, kind: &str, obj: &Value) -> Vec<FieldError> {
        let schema = self
            .crds
            .iter()
            .find(|c| c.info.group == group && c.info.kind == kind && c.info.serves(version))
            .and_then(|c| c.schemas.get(version));
        let Some(schema) = schema else {
            return vec![FieldError::new(
                "",
                FieldErrorKind::NotServed,
                format!("no matches for kind {kind:?} in version \"{group}/{version}\""),
                None,
            )];
        };
        let mut out = Vec::new();
        let Some(map) = obj.as_object() else {
            out.push(type_error("", "object", obj));
            return out;
        };
        // The API server handles the envelope itself; the CRD schema
        // describes the rest.
        let mut rest = serde_json::Map::new();
        for (k, v) in map {
            match k.as_str() {
                "apiVersion" | "kind" => {
                    if !v.is_string() {
                        out.push(type_error(k, "string", v));
                    }
                }
                "metadata" => check_metadata(v, &mut out),
                _ => {
                    rest.insert(k.clone(), v.clone());
                }
            }
        }
        check(schema, &Value::Object(rest), "", true, &mut out);
        out
    }
}

/// The JSON type name the API server uses in messages.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_error(path: &str, want: &str, v: &Value) -> FieldError {
    let actual = type_name(v);
    FieldError::new(
        path,
        FieldErrorKind::Type,
        format!(
            "{} in body must be of type {want}: \"{actual}\"",
            display_path(path)
        ),
        Some(format!("\"{actual}\"")),
    )
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "body" } else { path }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn has_type(want: &str, v: &Value) -> bool {
    match want {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        _ => true,
    }
}

/// Validates `v` at `path` against `s`. `structural` is false inside
/// `oneOf`/`anyOf`/`allOf`/`not`, whose branches only add value rules and
/// never declare fields, so they must not report unknown ones.
fn check(s: &Schema, v: &Value, path: &str, structural: bool, out: &mut Vec<FieldError>) {
    if v.is_null() {
        // Non-nullable nulls are pruned by the server before validation.
        return;
    }
    if s.int_or_string {
        if !(v.is_string() || v.is_i64() || v.is_u64()) {
            out.push(type_error(path, "integer,string", v));
            return;
        }
    } else if let Some(ty) = &s.ty
        && !has_type(ty, v)
    {
        out.push(type_error(path, ty, v));
        return;
    }
    if let Some(allowed) = &s.enumeration
        && !allowed.contains(v)
    {
        let values = allowed
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        out.push(FieldError::new(
            path,
            FieldErrorKind::Enum,
            format!("supported values: {values}"),
            Some(v.to_string()),
        ));
    }
    match v {
        Value::Number(n) => check_number(s, n, path, out),
        Value::String(text) => check_string(s, text, path, out),
        Value::Array(items) => {
            let n = items.len() as u64;
            let p = display_path(path);
            let count = |message: String| {
                FieldError::new(path, FieldErrorKind::Items, message, Some(n.to_string()))
            };
            let bounds = (s.min_items, s.max_items);
            for message in out_of_bounds(p, n, bounds, "have", "items") {
                out.push(count(message));
            }
            if let Some(item) = &s.items {
                for (i, x) in items.iter().enumerate() {
                    check(item, x, &format!("{path}[{i}]"), structural, out);
                }
            }
        }
        Value::Object(map) => check_object(s, map, path, structural, out),
        Value::Bool(_) | Value::Null => {}
    }
    check_combinators(s, v, path, out);
}

fn check_object(
    s: &Schema,
    map: &serde_json::Map<String, Value>,
    path: &str,
    structural: bool,
    out: &mut Vec<FieldError>,
) {
    for (k, x) in map {
        if let Some(p) = s.properties.get(k) {
            check(p, x, &join(path, k), structural, out);
        } else {
            match &s.additional_properties {
                Some(AdditionalProperties::Schema(ap)) => {
                    check(ap, x, &format!("{path}[{k}]"), structural, out);
                }
                Some(AdditionalProperties::Allowed(true)) => {}
                _ if s.preserve_unknown_fields || !structural => {}
                _ => {
                    let field = join(path, k);
                    out.push(FieldError::new(
                        &field,
                        FieldErrorKind::Unknown,
                        format!("unknown field {field:?}"),
                        None,
                    ));
                }
            }
        }
    }
    for r in &s.required {
        let present = map
            .get(r)
            .is_some_and(|x| !x.is_null() || s.properties.get(r).is_some_and(|p| p.nullable));
        if !present {
            out.push(FieldError::new(
                &join(path, r),
                FieldErrorKind::Required,
                "Required value".to_owned(),
                None,
            ));
        }
    }
}

fn check_number(s: &Schema, n: &serde_json::Number, path: &str, out: &mut Vec<FieldError>) {
    let p = display_path(path);
    let x = n.as_f64().unwrap_or(f64::NAN);
    let range = |message: String| {
        FieldError::new(path, FieldErrorKind::Range, message, Some(n.to_string()))
    };
    let bounds = match s.format.as_deref() {
        Some("int32") => Some((f64::from(i32::MIN), f64::from(i32::MAX))),
        Some("int64") => Some((i64::MIN as f64, i64::MAX as f64)),
        _ => None,
    };
    if let Some((lo, hi)) = bounds
        && !(lo..=hi).contains(&x)
    {
        out.push(range(format!(
            "{p} in body must be of type {}: \"{n}\"",
            s.format.as_deref().unwrap_or_default()
        )));
        return;
    }
    if let Some(max) = s.maximum {
        if s.exclusive_maximum && x >= max {
            out.push(range(format!("{p} in body should be less than {max}")));
        } else if x > max {
            out.push(range(format!(
                "{p} in body should be less than or equal to {max}"
            )));
        }
    }
    if let Some(min) = s.minimum {
        if s.exclusive_minimum && x <= min {
            out.push(range(format!("{p} in body should be greater than {min}")));
        } else if x < min {
            out.push(range(format!(
                "{p} in body should be greater than or equal to {min}"
            )));
        }
    }
}

/// The API server's messages for a count `n` outside `(min, max)`, the upper
/// bound first: `{p} in body should {verb} at most {max} {unit}`.
fn out_of_bounds(
    p: &str,
    n: u64,
    (min, max): (Option<u64>, Option<u64>),
    verb: &str,
    unit: &str,
) -> Vec<String> {
    let over = max.filter(|&max| n > max);
    let under = min.filter(|&min| n < min);
    let over = over.map(|max| format!("{p} in body should {verb} at most {max} {unit}"));
    let under = under.map(|min| format!("{p} in body should {verb} at least {min} {unit}"));
    over.into_iter().chain(under).collect()
}

fn check_string(s: &Schema, text: &str, path: &str, out: &mut Vec<FieldError>) {
    let p = display_path(path);
    let len = text.chars().count() as u64;
    let invalid = |message: String| {
        let value = Some(Value::from(text).to_string());
        FieldError::new(path, FieldErrorKind::String, message, value)
    };
    let bounds = (s.min_length, s.max_length);
    for message in out_of_bounds(p, len, bounds, "be", "chars long") {
        out.push(invalid(message));
    }
    if let Some(re) = &s.compiled_pattern
        && !re.is_match(text)
    {
        out.push(invalid(format!(
            "{p} in body should match '{}'",
            re.as_str()
        )));
    }
}

fn check_combinators(s: &Schema, v: &Value, path: &str, out: &mut Vec<FieldError>) {
    let valid = |sub: &Schema| {
        let mut errs = Vec::new();
        check(sub, v, path, false, &mut errs);
        errs.is_empty()
    };
    let p = display_path(path);
    let combinator = |message: String| {
        FieldError::new(
            path,
            FieldErrorKind::Combinator,
            message,
            Some(format!("\"{}\"", type_name(v))),
        )
    };
    for sub in &s.all_of {
        check(sub, v, path, false, out);
    }
    if !s.one_of.is_empty() {
        let n = s.one_of.iter().filter(|sub| valid(sub)).count();
        if n != 1 {
            out.push(combinator(format!(
                "{p} in body must validate one and only one schema (oneOf). Found {n} valid alternatives"
            )));
        }
    }
    if !s.any_of.is_empty() && !s.any_of.iter().any(valid) {
        out.push(combinator(format!(
            "{p} in body must validate at least one schema (anyOf)"
        )));
    }
    if let Some(not) = &s.not
        && valid(not)
    {
        out.push(combinator(format!(
            "{p} in body must not validate the schema (not)"
        )));
    }
}

/// ObjectMeta as a client may send it: known fields with their types,
/// `name` a DNS-1123 subdomain.
fn check_metadata(v: &Value, out: &mut Vec<FieldError>) {
    let Some(map) = v.as_object() else {
        out.push(type_error("metadata", "object", v));
        return;
    };
    for (k, x) in map {
        let path = join("metadata", k);
        if x.is_null() {
            continue;
        }
        let want = match k.as_str() {
            "name" | "generateName" | "namespace" | "uid" | "resourceVersion"
            | "creationTimestamp" | "deletionTimestamp" | "selfLink" => "string",
            "generation" | "deletionGracePeriodSeconds" => "integer",
            "labels" | "annotations" => "map",
            "finalizers" => "strings",
            "ownerReferences" | "managedFields" => "array",
            _ => {
                out.push(FieldError::new(
                    &path,
                    FieldErrorKind::Unknown,
                    format!("unknown field {path:?}"),
                    None,
                ));
                continue;
            }
        };
        match want {
            "map" => match x.as_object() {
                Some(m) => {
                    for (mk, mv) in m {
                        if !mv.is_string() {
                            out.push(type_error(&format!("{path}[{mk}]"), "string", mv));
                        }
                    }
                }
                None => out.push(type_error(&path, "object", x)),
            },
            "strings" => match x.as_array() {
                Some(a) => {
                    for (i, item) in a.iter().enumerate() {
                        if !item.is_string() {
                            out.push(type_error(&format!("{path}[{i}]"), "string", item));
                        }
                    }
                }
                None => out.push(type_error(&path, "array", x)),
            },
            ty => {
                if !has_type(ty, x) {
                    out.push(type_error(&path, ty, x));
                }
            }
        }
    }
    if let Some(name) = map.get("name").and_then(Value::as_str)
        && !is_dns1123_subdomain(name)
    {
        out.push(FieldError::new(
            "metadata.name",
            FieldErrorKind::Invalid,
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_owned(),
            Some(Value::from(name).to_string()),
        ));
    }
}

fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.io
spec:
  group: example.io
  names: {kind: Widget, plural: widgets, singular: widget, shortNames: [wd]}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        required: [spec]
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, format: int32, minimum: 0, maximum: 100}
              mode: {type: string, enum: [FAST, SLOW]}
              code: {type: string, pattern: '^W[0-9]{2}$', minLength: 2, maxLength: 3}
              port: {x-kubernetes-int-or-string: true}
              labels: {type: object, additionalProperties: {type: string}}
              tags: {type: array, minItems: 1, maxItems: 2, items: {type: string}}
              note: {type: string, nullable: true}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
              body:
                type: object
                properties:
                  string: {type: string}
                  bytes: {type: string, format: byte}
                oneOf:
                - not:
                    anyOf:
                    - required: [string]
                    - required: [bytes]
                - required: [string]
                - required: [bytes]
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
  - name: v1beta1
    served: false
    storage: false
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
"#;

    fn schemas() -> CrdSchemas {
        CrdSchemas::from_yaml(CRD, Path::new("widgets.yaml")).unwrap()
    }

    fn errors(spec: Value) -> Vec<String> {
        let obj = json!({"apiVersion": "example.io/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec});
        schemas()
            .validate("example.io", "v1", "Widget", &obj)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn reads_crd_names_and_versions() {
        let s = schemas();
        let infos: Vec<_> = s.kinds().collect();
        assert_eq!(infos.len(), 1);
        let w = infos[0];
        assert_eq!(
            (w.group.as_str(), w.kind.as_str()),
            ("example.io", "Widget")
        );
        assert_eq!(
            (w.plural.as_str(), w.singular.as_str()),
            ("widgets", "widget")
        );
        assert_eq!(w.list_kind, "WidgetList");
        assert_eq!(w.short_names, ["wd"]);
        assert_eq!(w.scope, Scope::Namespaced);
        assert_eq!(w.storage_version(), Some("v1"));
        assert!(w.serves("v1") && !w.serves("v1beta1"));
        assert_eq!(
            s.find_plural("example.io", "widgets").unwrap().kind,
            "Widget"
        );
    }

    #[test]
    fn accepts_a_valid_object() {
        let spec = json!({
            "size": 5, "mode": "FAST", "code": "W12", "port": "http",
            "labels": {"a": "b"}, "tags": ["x"], "note": null,
            "extra": {"anything": {"goes": 1}}, "body": {"string": "hi"}
        });
        assert_eq!(errors(spec), Vec::<String>::new());
    }

    #[test]
    fn type_errors_read_like_the_api_server() {
        let e = errors(json!({"size": "five"}));
        assert_eq!(
            e,
            [
                "spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\""
            ]
        );
        let raw = schemas().validate(
            "example.io",
            "v1",
            "Widget",
            &json!({"spec": {"size": "five"}}),
        );
        assert_eq!(raw[0].field, "spec.size");
        assert_eq!(raw[0].kind, FieldErrorKind::Type);
        assert_eq!(
            raw[0].message,
            "spec.size in body must be of type integer: \"string\""
        );
        assert_eq!(
            errors(json!({"size": 1.5})),
            [
                "spec.size: Invalid value: \"number\": spec.size in body must be of type integer: \"number\""
            ]
        );
    }

    #[test]
    fn unknown_fields_are_named_by_path() {
        assert_eq!(
            errors(json!({"size": 1, "sise": 2, "labels": {"ok": "yes"}})),
            ["unknown field \"spec.sise\""]
        );
        let obj = json!({"apiVersion": "example.io/v1", "kind": "Widget", "metadata": {"name": "w", "lables": {}}, "spec": {"size": 1}, "extra": 1});
        let e: Vec<_> = schemas()
            .validate("example.io", "v1", "Widget", &obj)
            .into_iter()
            .map(|e| (e.kind, e.field))
            .collect();
        assert_eq!(
            e,
            [
                (FieldErrorKind::Unknown, "metadata.lables".to_owned()),
                (FieldErrorKind::Unknown, "extra".to_owned()),
            ]
        );
    }

    #[test]
    fn required_enum_range_string_and_items() {
        assert_eq!(errors(json!({})), ["spec.size: Required value"]);
        assert_eq!(
            errors(json!({"size": 101, "mode": "MEDIUM"})),
            [
                "spec.mode: Unsupported value: \"MEDIUM\": supported values: \"FAST\", \"SLOW\"",
                "spec.size: Invalid value: 101: spec.size in body should be less than or equal to 100",
            ]
        );
        assert_eq!(
            errors(json!({"size": 3_000_000_000u64})),
            [
                "spec.size: Invalid value: 3000000000: spec.size in body must be of type int32: \"3000000000\""
            ]
        );
        assert_eq!(
            errors(json!({"size": 1, "code": "X1"})),
            ["spec.code: Invalid value: \"X1\": spec.code in body should match '^W[0-9]{2}$'"]
        );
        assert_eq!(
            errors(json!({"size": 1, "tags": ["a", "b", "c"], "labels": {"n": 1}})),
            [
                "spec.labels[n]: Invalid value: \"integer\": spec.labels[n] in body must be of type string: \"integer\"",
                "spec.tags: Invalid value: 3: spec.tags in body should have at most 2 items",
            ]
        );
        assert_eq!(
            errors(json!({"size": 1, "port": true})),
            [
                "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\""
            ]
        );
    }

    #[test]
    fn lengths_and_item_counts_on_both_bounds() {
        assert_eq!(
            errors(json!({"size": 1, "code": "W1234", "tags": []})),
            [
                "spec.code: Invalid value: \"W1234\": spec.code in body should be at most 3 chars long",
                "spec.code: Invalid value: \"W1234\": spec.code in body should match '^W[0-9]{2}$'",
                "spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items",
            ]
        );
        assert_eq!(
            errors(json!({"size": 1, "code": "W"})),
            [
                "spec.code: Invalid value: \"W\": spec.code in body should be at least 2 chars long",
                "spec.code: Invalid value: \"W\": spec.code in body should match '^W[0-9]{2}$'",
            ]
        );
        assert!(errors(json!({"size": 1, "code": "W12", "tags": ["a"]})).is_empty());
    }

    #[test]
    fn one_of_rejects_two_exclusive_fields() {
        assert_eq!(errors(json!({"size": 1, "body": {}})), Vec::<String>::new());
        assert_eq!(
            errors(json!({"size": 1, "body": {"string": "a", "bytes": "Yg=="}})),
            [
                "spec.body: Invalid value: \"object\": spec.body in body must validate one and only one schema (oneOf). Found 2 valid alternatives"
            ]
        );
    }

    #[test]
    fn nulls_are_pruned_unless_nullable() {
        assert_eq!(
            errors(json!({"size": null, "mode": null})),
            ["spec.size: Required value"]
        );
    }

    #[test]
    fn metadata_name_and_unserved_versions() {
        let obj = json!({"metadata": {"name": "Bad_Name"}, "spec": {"size": 1}});
        let e = schemas().validate("example.io", "v1", "Widget", &obj);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].kind, FieldErrorKind::Invalid);
        assert!(
            e[0].to_string().starts_with(
                "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
            ),
            "{}",
            e[0]
        );
        let e = schemas().validate("example.io", "v1beta1", "Widget", &obj);
        assert_eq!(
            e[0].to_string(),
            "no matches for kind \"Widget\" in version \"example.io/v1beta1\""
        );
    }

    #[test]
    fn load_names_the_file() {
        let err = CrdSchemas::load(Path::new("/nonexistent/crds.yaml")).unwrap_err();
        assert_eq!(err.to_string(), "reading /nonexistent/crds.yaml");
        let err = CrdSchemas::from_yaml(
            "kind: CustomResourceDefinition\nspec: 1\n",
            Path::new("x.yaml"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.yaml: document 0: not a valid CustomResourceDefinition"
        );
    }
}
