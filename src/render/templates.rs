//! The three templates: embedded in the binary, each replaceable by a file
//! of the same name in a `--templates DIR`.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use super::RenderError;

/// Which resource a template produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateKind {
    /// `gateway.yaml.j2`, rendered only when the spec has external hosts.
    Gateway,
    /// `destinationrule.yaml.j2`.
    DestinationRule,
    /// `virtualservice.yaml.j2`.
    VirtualService,
}

// === impl TemplateKind ===

impl TemplateKind {
    /// All kinds, in output order (subsets exist before routes name them).
    pub const ALL: [Self; 3] = [Self::Gateway, Self::DestinationRule, Self::VirtualService];

    /// The template's file name.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::Gateway => "gateway.yaml.j2",
            Self::DestinationRule => "destinationrule.yaml.j2",
            Self::VirtualService => "virtualservice.yaml.j2",
        }
    }

    fn embedded(self) -> &'static str {
        match self {
            Self::Gateway => include_str!("../../templates/gateway.yaml.j2"),
            Self::DestinationRule => include_str!("../../templates/destinationrule.yaml.j2"),
            Self::VirtualService => include_str!("../../templates/virtualservice.yaml.j2"),
        }
    }
}

/// Where a template's text came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateOrigin {
    /// Compiled into the binary from `templates/`.
    Embedded(&'static str),
    /// A file from `--templates DIR`.
    File(PathBuf),
}

impl fmt::Display for TemplateOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Embedded(name) => write!(f, "templates/{name} (embedded)"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// One template's text and origin.
#[derive(Clone, Debug)]
pub struct Template {
    /// Which resource it produces.
    pub kind: TemplateKind,
    /// Where it came from.
    pub origin: TemplateOrigin,
    /// The minijinja source.
    pub source: Cow<'static, str>,
}

/// The set of templates `render` uses.
#[derive(Clone, Debug)]
pub struct Templates {
    templates: Vec<Template>,
}

// === impl Templates ===

impl Templates {
    /// The templates compiled into the binary.
    pub fn embedded() -> Self {
        Self {
            templates: TemplateKind::ALL
                .into_iter()
                .map(|kind| Template {
                    kind,
                    origin: TemplateOrigin::Embedded(kind.file_name()),
                    source: Cow::Borrowed(kind.embedded()),
                })
                .collect(),
        }
    }

    /// The embedded templates, with those found in `dir` replacing them.
    ///
    /// `dir` may hold any of `gateway.yaml.j2`, `destinationrule.yaml.j2`
    /// and `virtualservice.yaml.j2`; another `*.j2` file is an error (most
    /// likely a misspelt name), other files are ignored.
    pub fn from_dir(dir: &Path) -> Result<Self, RenderError> {
        let read_dir = |source| RenderError::ReadTemplates {
            path: dir.to_owned(),
            source,
        };
        let mut out = Self::embedded();
        let mut entries = std::fs::read_dir(dir)
            .map_err(read_dir)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(read_dir)?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.ends_with(".j2") {
                continue;
            }
            let path = entry.path();
            let Some(kind) = TemplateKind::ALL
                .into_iter()
                .find(|k| k.file_name() == name)
            else {
                return Err(RenderError::UnknownTemplate { path });
            };
            let source =
                std::fs::read_to_string(&path).map_err(|source| RenderError::ReadTemplates {
                    path: path.clone(),
                    source,
                })?;
            let slot = out
                .templates
                .iter_mut()
                .find(|t| t.kind == kind)
                .expect("every kind has an embedded template");
            *slot = Template {
                kind,
                origin: TemplateOrigin::File(path),
                source: Cow::Owned(source),
            };
        }
        Ok(out)
    }

    /// `from_dir(dir)` when a directory is given, else the embedded set.
    pub fn load(dir: Option<&Path>) -> Result<Self, RenderError> {
        dir.map_or_else(|| Ok(Self::embedded()), Self::from_dir)
    }

    /// The templates, in output order.
    pub fn iter(&self) -> impl Iterator<Item = &Template> {
        self.templates.iter()
    }
}
