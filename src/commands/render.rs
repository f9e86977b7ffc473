//! `meshctl render`: print the Gateway, VirtualService and DestinationRule
//! for a service as YAML (or a JSON `List`). Pure: no cluster, no runtime work.

use std::io::Write;

use anyhow::Context;

use crate::Outcome;
use crate::cli::{GlobalArgs, OutputFormat, RenderArgs};
use crate::render::{self, Overrides, Templates};
use crate::spec;

/// Runs `meshctl render`.
pub fn run(global: &GlobalArgs, args: &RenderArgs) -> anyhow::Result<Outcome> {
    let RenderArgs {
        spec: spec_args,
        promoted,
    } = args;
    let spec = spec::resolve(spec_args, global.kube.namespace.as_deref())?;
    let templates = Templates::load(spec_args.templates.as_deref())?;
    let overrides = if *promoted {
        Overrides::promoted(&spec)
    } else {
        Overrides::default()
    };
    let resources = render::render(&spec, &templates, &overrides)?;
    let text = match global.output {
        OutputFormat::Json => render::to_json(&resources)?,
        OutputFormat::Text | OutputFormat::Yaml => render::to_yaml(&resources)?,
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to stdout")?;
    Ok(Outcome::Success)
}
