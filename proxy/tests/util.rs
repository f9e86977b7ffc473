//! Test harness: configuration directories and the proxy in-process; the
//! upstream builder, client and waits come from the shared support crate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

// The upstream builder, client and waits, under the names these tests (and
// new ones) have always used; the types are in `mesh_test_support::upstream`.
#[allow(
    unused_imports,
    reason = "the types keep their old paths for tests that name them"
)]
pub use mesh_test_support::upstream::{Reply, Upstream, UpstreamBuilder};
pub use mesh_test_support::upstream::{
    WAIT, admin_get, client, closed_port, eventually, get, metric_value, require_tool, send,
    upstream,
};

/// A configuration directory for service `svc` with subsets v1 and v2.
pub struct ConfigDir {
    pub dir: tempfile::TempDir,
}

impl ConfigDir {
    /// Writes the VirtualService's `http:` list (YAML, indented by two) and
    /// endpoints for v1 and v2.
    pub fn new(http: &str, v1: &[SocketAddr], v2: &[SocketAddr]) -> Self {
        let me = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        me.write_endpoints(v1, v2);
        me.write_routes(http);
        me
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write_routes(&self, http: &str) {
        let text = format!(
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: svc}}\nspec:\n  host: svc\n  subsets:\n  - {{name: v1, labels: {{version: v1}}}}\n  - {{name: v2, labels: {{version: v2}}}}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: svc}}\nspec:\n  hosts: [svc, svc.example.com]\n  http:\n{http}"
        );
        self.write("svc.yaml", &text);
    }

    pub fn write_endpoints(&self, v1: &[SocketAddr], v2: &[SocketAddr]) {
        let mut text = String::from("services:\n  svc:\n    endpoints:\n");
        for a in v1 {
            text.push_str(&format!(
                "    - {{address: \"{a}\", labels: {{version: v1}}}}\n"
            ));
        }
        for a in v2 {
            text.push_str(&format!(
                "    - {{address: \"{a}\", labels: {{version: v2}}}}\n"
            ));
        }
        if v1.is_empty() && v2.is_empty() {
            text = "services: {}\n".into();
        }
        self.write("endpoints.yaml", &text);
    }

    /// Writes a file atomically (temp file + rename), as meshctl does.
    pub fn write(&self, name: &str, text: &str) {
        let tmp: PathBuf = self.dir.path().join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.dir.path().join(name)).unwrap();
    }
}

/// A weighted 2-way split between v1 and v2.
pub fn split(v1: u32, v2: u32) -> String {
    format!(
        "  - route:\n    - {{destination: {{host: svc, subset: v1}}, weight: {v1}}}\n    - {{destination: {{host: svc, subset: v2}}, weight: {v2}}}\n"
    )
}

/// Starts a proxy in-process with test-friendly settings.
pub async fn proxy(dir: &Path) -> meshproxy::Handle {
    proxy_with(dir, |_| {}).await
}

pub async fn proxy_with(dir: &Path, f: impl FnOnce(&mut meshproxy::Settings)) -> meshproxy::Handle {
    let mut s = meshproxy::Settings::local(dir);
    s.reload_debounce = Duration::from_millis(50);
    s.drain_timeout = Duration::from_secs(10);
    f(&mut s);
    meshproxy::start(s).await.unwrap()
}
