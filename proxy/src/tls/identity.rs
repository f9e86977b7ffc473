//! Workload identities: SPIFFE IDs and the names a certificate carries.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use rustls::pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::TlsError;

/// A SPIFFE ID, `spiffe://TRUST_DOMAIN/PATH` (Istio: `.../ns/NS/sa/SA`),
/// as found in a certificate's URI SAN.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId(String);

// === impl SpiffeId ===

impl SpiffeId {
    /// The ID as a string (`spiffe://...`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn is_valid(s: &str) -> bool {
        let Some(rest) = s.strip_prefix("spiffe://") else {
            return false;
        };
        let Some((domain, path)) = rest.split_once('/') else {
            return false;
        };
        !domain.is_empty()
            && domain
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
            && !path.is_empty()
            && path.split('/').all(|segment| {
                !segment.is_empty()
                    && segment != "."
                    && segment != ".."
                    && segment
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
            })
    }
}

impl FromStr for SpiffeId {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if Self::is_valid(s) {
            Ok(Self(s.to_string()))
        } else {
            Err(TlsError::InvalidIdentity {
                value: s.to_string(),
            })
        }
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The subject alternative names of a certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertNames {
    /// URI SANs (SPIFFE IDs among them).
    pub uris: Vec<String>,
    /// DNS SANs.
    pub dns: Vec<String>,
    /// IP address SANs.
    pub ips: Vec<IpAddr>,
}

// === impl CertNames ===

impl CertNames {
    /// Does any SAN equal `name`? URIs and DNS names compare as strings (DNS
    /// case-insensitively), IPs by address, so `127.0.0.1` matches an IP SAN.
    pub fn contains(&self, name: &str) -> bool {
        self.uris.iter().any(|u| u == name)
            || self.dns.iter().any(|d| d.eq_ignore_ascii_case(name))
            || name
                .parse::<IpAddr>()
                .is_ok_and(|ip| self.ips.contains(&ip))
    }

    /// Every SAN as a string, for error messages.
    pub fn all(&self) -> Vec<String> {
        let mut out = self.uris.clone();
        out.extend(self.dns.iter().cloned());
        out.extend(self.ips.iter().map(IpAddr::to_string));
        out
    }
}

pub(crate) fn parse<'a>(der: &'a CertificateDer<'_>) -> Option<X509Certificate<'a>> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Some(cert),
        _ => None,
    }
}

/// The SANs of `der`; `None` if it is not a parseable certificate.
pub fn cert_names(der: &CertificateDer<'_>) -> Option<CertNames> {
    let cert = parse(der)?;
    let mut names = CertNames::default();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::URI(uri) => names.uris.push((*uri).to_string()),
                GeneralName::DNSName(dns) => names.dns.push((*dns).to_string()),
                GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => names
                        .ips
                        .push(IpAddr::from(<[u8; 4]>::try_from(*bytes).ok()?)),
                    16 => names
                        .ips
                        .push(IpAddr::from(<[u8; 16]>::try_from(*bytes).ok()?)),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Some(names)
}

/// The first SPIFFE URI SAN of `der`, the workload's identity.
pub fn spiffe_id_of(der: &CertificateDer<'_>) -> Option<SpiffeId> {
    cert_names(der)?
        .uris
        .into_iter()
        .find_map(|uri| uri.parse::<SpiffeId>().ok())
}

/// `notBefore` and `notAfter` of `der` in UNIX seconds.
pub(crate) fn validity(der: &CertificateDer<'_>) -> Option<(i64, i64)> {
    let cert = parse(der)?;
    let validity = cert.validity();
    Some((
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testing::Pki;
    use super::*;

    #[test]
    fn spiffe_ids_are_validated() {
        for ok in [
            "spiffe://cluster.local/ns/default/sa/web",
            "spiffe://example.org/workload",
        ] {
            assert_eq!(ok.parse::<SpiffeId>().unwrap().as_str(), ok);
        }
        for bad in [
            "web",
            "spiffe://",
            "spiffe://cluster.local",
            "spiffe://cluster.local/",
            "spiffe://Cluster.local/ns/a",
            "spiffe://cluster.local/ns//sa",
            "spiffe://cluster.local/ns/../sa",
            "https://cluster.local/ns/a/sa/b",
        ] {
            let err = bad.parse::<SpiffeId>().unwrap_err().to_string();
            assert!(err.contains("--tls-allow-identity"), "{err}");
            assert!(
                err.contains("spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/"),
                "{err}"
            );
        }
    }

    #[test]
    fn reads_sans_and_identity() {
        let pki = Pki::new();
        let cert = pki.workload("reviews").cert_der();
        let names = cert_names(&cert).unwrap();
        assert_eq!(names.uris, ["spiffe://cluster.local/ns/default/sa/reviews"]);
        assert!(names.contains("reviews"));
        assert!(names.contains("REVIEWS"));
        assert!(names.contains("127.0.0.1"));
        assert!(names.contains("spiffe://cluster.local/ns/default/sa/reviews"));
        assert!(!names.contains("ratings"));
        assert_eq!(
            spiffe_id_of(&cert).unwrap().as_str(),
            "spiffe://cluster.local/ns/default/sa/reviews"
        );
        assert!(cert_names(&CertificateDer::from(vec![1, 2, 3])).is_none());
    }
}
