//! `meshctl certs`: the development CA and workload certificates, checked
//! through the real binary, meshproxy's certificate reader and `openssl`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use meshproxy::tls::{CertKeyPair, cert_names, pem_certificates};

use crate::util::meshctl;

fn run_ok(args: &[&str]) -> Output {
    meshctl().args(args).output_ok()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `openssl`, or `None` (with the reason printed) when it is missing and
/// not required.
fn openssl() -> Option<Command> {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(Command::new("openssl"));
    }
    assert!(
        std::env::var_os("MESHCTL_REQUIRE_TOOLS").is_none(),
        "openssl is required (MESHCTL_REQUIRE_TOOLS is set) but not installed"
    );
    eprintln!("skipping the openssl checks: openssl is not installed");
    None
}

/// `openssl x509 -noout -text -in PATH`: the certificate as text.
fn x509_text(path: &std::path::Path) -> String {
    let out = openssl()
        .expect("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(path)
        .output()
        .expect("running openssl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn issues_a_ca_and_workload_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pki");
    let stdout = run_ok(&[
        "certs",
        "--out",
        out.to_str().unwrap(),
        "--name",
        "web",
        "--name",
        "db",
        "--identity-namespace",
        "shop",
    ])
    .stdout;
    let stdout = String::from_utf8(stdout).unwrap();
    assert!(stdout.contains("created CA"), "{stdout}");
    assert!(
        stdout.contains("spiffe://cluster.local/ns/shop/sa/web"),
        "{stdout}"
    );

    for file in ["ca.crt", "web.crt", "db.crt"] {
        assert_eq!(mode(&out.join(file)), 0o644, "{file}");
    }
    for file in ["ca.key", "web.key", "db.key"] {
        assert_eq!(mode(&out.join(file)), 0o600, "{file} must be owner-only");
    }
    // No temp files left behind.
    let mut names: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["ca.crt", "ca.key", "db.crt", "db.key", "web.crt", "web.key"]
    );

    // SANs, through meshproxy's reader (the one that extracts identities).
    let pem = std::fs::read(out.join("web.crt")).unwrap();
    let certs = pem_certificates(&pem).unwrap();
    assert_eq!(certs.len(), 1);
    let names = cert_names(&certs[0]).unwrap();
    assert_eq!(names.uris, ["spiffe://cluster.local/ns/shop/sa/web"]);
    assert_eq!(names.dns, ["web", "localhost"]);
    assert_eq!(names.ips, [std::net::IpAddr::from([127, 0, 0, 1])]);
    // Key and certificate belong together, and meshproxy accepts them.
    CertKeyPair::load(&out.join("web.crt"), &out.join("web.key")).unwrap();

    let Some(_) = openssl() else { return };
    let verify = openssl()
        .unwrap()
        .args(["verify", "-CAfile"])
        .arg(out.join("ca.crt"))
        .arg(out.join("web.crt"))
        .arg(out.join("db.crt"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "openssl verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let text = x509_text(&out.join("db.crt"));
    assert!(
        text.contains("URI:spiffe://cluster.local/ns/shop/sa/db"),
        "{text}"
    );
    assert!(text.contains("DNS:db"), "{text}");
    assert!(text.contains("ASN1 OID: prime256v1"), "{text}");
    assert!(
        text.contains("TLS Web Server Authentication, TLS Web Client Authentication"),
        "{text}"
    );
    let ca = x509_text(&out.join("ca.crt"));
    assert!(ca.contains("CA:TRUE, pathlen:0"), "{ca}");
}

#[test]
fn a_second_run_reuses_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    run_ok(&["certs", "--out", out, "--name", "web"]);
    let ca_before = std::fs::read(dir.path().join("ca.crt")).unwrap();
    let web_before = std::fs::read(dir.path().join("web.crt")).unwrap();

    let json = run_ok(&[
        "certs", "--out", out, "--name", "web", "--name", "api", "-o", "json",
    ])
    .stdout;
    let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(doc["ca"]["created"], false);
    assert_eq!(doc["workloads"][1]["name"], "api");
    assert_eq!(
        doc["workloads"][1]["identity"],
        "spiffe://cluster.local/ns/default/sa/api"
    );
    assert_eq!(std::fs::read(dir.path().join("ca.crt")).unwrap(), ca_before);
    assert_ne!(
        std::fs::read(dir.path().join("web.crt")).unwrap(),
        web_before
    );

    let Some(mut openssl) = openssl() else { return };
    let verify = openssl
        .args(["verify", "-CAfile"])
        .arg(dir.path().join("ca.crt"))
        .arg(dir.path().join("web.crt"))
        .arg(dir.path().join("api.crt"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn bad_input_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--name", "Web"],
            "--name \"Web\": contains a character other than a-z",
        ),
        (&["--name", "ca"], "`ca` is reserved"),
        (&["--name", "../x"], "use a Kubernetes service account name"),
        (
            &["--identity-namespace", "a.b"],
            "--identity-namespace \"a.b\": not a Kubernetes namespace name",
        ),
    ];
    for (args, expected) in cases {
        let output = meshctl()
            .args(["certs", "--out", out])
            .args(*args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    // Nothing was written for refused input.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    // Half a CA is neither reused nor silently replaced.
    std::fs::write(dir.path().join("ca.crt"), "x").unwrap();
    let output = meshctl().args(["certs", "--out", out]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ca.crt exists but"), "{stderr}");
    assert!(stderr.contains("ca.key does not"), "{stderr}");
    assert!(stderr.contains("remove"), "{stderr}");

    // A CA key that does not match the CA certificate is refused.
    let mixed = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    run_ok(&["certs", "--out", mixed.path().to_str().unwrap()]);
    run_ok(&["certs", "--out", other.path().to_str().unwrap()]);
    std::fs::copy(other.path().join("ca.key"), mixed.path().join("ca.key")).unwrap();
    let output = meshctl()
        .args([
            "certs",
            "--out",
            mixed.path().to_str().unwrap(),
            "--name",
            "web",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the CA in the output directory is unusable"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ca.key is not the private key of the certificate in"),
        "{stderr}"
    );
    assert!(!mixed.path().join("web.crt").exists());
}
