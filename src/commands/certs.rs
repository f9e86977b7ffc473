//! `meshctl certs`: a development CA and workload certificates for mTLS.

use std::io::Write;

use anyhow::Context;

use crate::Outcome;
use crate::certs::{self, CaOrigin, IdentityNamespace, WorkloadName};
use crate::cli::{CertsArgs, GlobalArgs, OutputFormat};

/// Validates the arguments, writes the files and prints what was written.
pub fn run(args: CertsArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let CertsArgs {
        out,
        names,
        identity_namespace,
    } = args;
    let names = names
        .iter()
        .map(|name| WorkloadName::new(name))
        .collect::<Result<Vec<_>, _>>()?;
    let namespace = IdentityNamespace::new(&identity_namespace)?;
    let issued = certs::issue(&out, &names, &namespace)
        .with_context(|| format!("meshctl certs --out {}", out.display()))?;

    let mut stdout = std::io::stdout().lock();
    match global.output {
        _ if global.quiet => {}
        OutputFormat::Json => {
            let doc = serde_json::json!({
                "ca": {
                    "cert": issued.ca_cert,
                    "key": issued.ca_key,
                    "created": issued.ca == CaOrigin::Created,
                },
                "workloads": issued.workloads.iter().map(|w| serde_json::json!({
                    "name": w.name,
                    "identity": w.identity,
                    "cert": w.cert,
                    "key": w.key,
                })).collect::<Vec<_>>(),
            });
            writeln!(stdout, "{doc}")?;
        }
        OutputFormat::Text | OutputFormat::Yaml => {
            let verb = match issued.ca {
                CaOrigin::Created => "created",
                CaOrigin::Reused => "reused ",
            };
            writeln!(
                stdout,
                "{verb} CA {} (key {})",
                issued.ca_cert.display(),
                issued.ca_key.display()
            )?;
            for w in &issued.workloads {
                writeln!(
                    stdout,
                    "issued  {} {} (key {})",
                    w.identity,
                    w.cert.display(),
                    w.key.display()
                )?;
            }
        }
    }
    Ok(Outcome::Success)
}
