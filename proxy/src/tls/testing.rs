//! Test support: the workspace's one test CA (`mesh_test_support::TestCa`,
//! here as `Pki`) and rustls configurations and a TLS upstream built with the
//! proxy's own crypto provider and PEM reader.

use std::sync::Arc;

pub(crate) use mesh_test_support::ca::{Issued, TestCa as Pki, write_key};

use super::provider;

/// The CA's certificate as a root store, read by the proxy's PEM reader.
fn roots(pki: &Pki) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for ca in super::pem_certificates(pki.ca_pem().as_bytes()).unwrap() {
        roots.add(ca).unwrap();
    }
    roots
}

/// A client config trusting `pki`'s CA, presenting `cert` when given.
pub(crate) fn client_config(pki: &Pki, cert: Option<&Issued>) -> rustls::ClientConfig {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(pki));
    match cert {
        None => builder.with_no_client_auth(),
        Some(issued) => builder
            .with_client_auth_cert(vec![issued.cert_der()], issued.key_der())
            .unwrap(),
    }
}

/// A TLS server on 127.0.0.1 that answers every connection with one line:
/// the client's SPIFFE ID (or `anonymous`) and the SNI it sent (or `-`).
pub(crate) async fn upstream(config: rustls::ServerConfig) -> std::net::SocketAddr {
    use tokio::io::AsyncWriteExt;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let conn = stream.get_ref().1;
                let who = conn
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(super::spiffe_id_of)
                    .map_or("anonymous".to_string(), |id| id.to_string());
                let sni = conn.server_name().unwrap_or("-").to_string();
                let _ = stream.write_all(format!("{who} {sni}\n").as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

/// A server config presenting `cert`, requiring client certificates from
/// `client_ca` when given.
pub(crate) fn server_config(cert: &Issued, client_ca: Option<&Pki>) -> rustls::ServerConfig {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(pki) => builder.with_client_cert_verifier(
            rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots(pki)),
                provider(),
            )
            .build()
            .unwrap(),
        ),
    };
    builder
        .with_single_cert(vec![cert.cert_der()], cert.key_der())
        .unwrap()
}
