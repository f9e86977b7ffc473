//! A fake Kubernetes API server for tests, held to a real API server's
//! semantics (see `../shared/istio-crds/REAL-APISERVER.md`).

pub mod schema;
