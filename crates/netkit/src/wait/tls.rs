//! TLS for `https://` targets (rustls with the ring provider): whom to trust (the system's
//! roots, a CA file, or nobody checked with `--insecure`) and how a failed handshake reads
//! (`unknown issuer`, `certificate expired`, ...).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};

use crate::endpoint::{Endpoint, Host};
use crate::error::{Error, ParseError};

/// Which server certificates an `https://` target accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Chains to the system's roots (`/etc/ssl/certs`, or `SSL_CERT_FILE`/`SSL_CERT_DIR`).
    System,
    /// Chains to a CA certificate in this PEM file, instead of the system's roots (curl's
    /// `--cacert`).
    CaFile(PathBuf),
    /// Any certificate (`--insecure`); the handshake's signatures are still checked.
    Insecure,
}

/// The client configuration for `trust`, built once per wait.
pub fn client_config(trust: &Trust) -> Result<Arc<ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::io("set up TLS", std::io::Error::other(e)))?;
    let mut config = match trust {
        Trust::System => builder
            .with_root_certificates(system_roots())
            .with_no_client_auth(),
        Trust::CaFile(path) => builder
            .with_root_certificates(file_roots(path)?)
            .with_no_client_auth(),
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn system_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for err in &found.errors {
        tracing::warn!("reading the system's root certificates: {err}");
    }
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        tracing::warn!(
            "no trusted root certificates found: install ca-certificates, set SSL_CERT_FILE \
             or pass --cacert"
        );
    }
    roots
}

fn file_roots(path: &PathBuf) -> Result<RootCertStore, Error> {
    let shown = path.display().to_string();
    let unreadable = |e: rustls::pki_types::pem::Error| {
        let why = match e {
            rustls::pki_types::pem::Error::Io(io) => crate::error::describe_io(&io),
            other => format!("not a PEM file: {other}"),
        };
        ParseError::new(&shown, format!("cannot read CA certificates: {why}"))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(unreadable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(ParseError::new(shown, "no usable CA certificate in the file").into());
    }
    Ok(roots)
}

/// The name the certificate must be valid for: the URL's host.
pub(crate) fn server_name(endpoint: &Endpoint) -> Option<ServerName<'static>> {
    match endpoint {
        Endpoint::Tcp {
            host: Host::Ip(ip), ..
        } => Some(ServerName::IpAddress((*ip).into())),
        Endpoint::Tcp {
            host: Host::Zoned(ip, _),
            ..
        } => Some(ServerName::IpAddress(std::net::IpAddr::V6(*ip).into())),
        Endpoint::Tcp {
            host: Host::Name(name),
            ..
        } => ServerName::try_from(name.trim_end_matches('.').to_string()).ok(),
        _ => None,
    }
}

/// A failed handshake in a few words that stay the same from one attempt to the next.
pub(crate) fn describe(err: &rustls::Error) -> String {
    match err {
        rustls::Error::InvalidCertificate(cert) => describe_certificate(cert),
        rustls::Error::AlertReceived(alert) => format!("the server sent alert {alert:?}"),
        rustls::Error::InvalidMessage(_) => "corrupt message from the server (not TLS?)".into(),
        other => other.to_string(),
    }
}

fn describe_certificate(err: &CertificateError) -> String {
    use CertificateError as C;
    match err {
        C::UnknownIssuer => "unknown issuer".into(),
        C::Expired | C::ExpiredContext { .. } => "certificate expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "certificate not valid yet".into(),
        C::NotValidForName => "certificate not valid for this host".into(),
        C::NotValidForNameContext { .. } => err.to_string(),
        C::BadSignature => "bad certificate signature".into(),
        C::Revoked => "certificate revoked".into(),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "certificate not meant for TLS servers".into()
        }
        other => format!("invalid certificate: {other}"),
    }
}

/// `--insecure`: accepts every certificate, but still checks that the server holds the key of
/// the one it sent.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_an_input_error() {
        let err = client_config(&Trust::CaFile("/nonexistent/ca.pem".into())).expect_err("missing");
        assert_eq!(err.class(), crate::ErrorClass::Input);
        assert!(
            err.to_string()
                .starts_with("/nonexistent/ca.pem: cannot read"),
            "{err}"
        );
        let dir = std::env::temp_dir().join(format!("netkit-empty-ca-{}", std::process::id()));
        std::fs::write(&dir, "not a certificate\n").expect("write");
        let err = client_config(&Trust::CaFile(dir.clone())).expect_err("empty");
        let _ = std::fs::remove_file(&dir);
        assert!(
            err.to_string().contains("no usable CA certificate"),
            "{err}"
        );
    }

    #[test]
    fn handshake_failures_read_the_same_every_time() {
        let expired = rustls::Error::InvalidCertificate(CertificateError::Expired);
        assert_eq!(describe(&expired), "certificate expired");
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert_eq!(describe(&unknown), "unknown issuer");
    }

    #[test]
    fn server_names_from_hosts() {
        let ip: Endpoint = "[::1]:443".parse().expect("endpoint");
        assert!(matches!(server_name(&ip), Some(ServerName::IpAddress(_))));
        let name: Endpoint = "example.test.:443".parse().expect("endpoint");
        assert_eq!(
            server_name(&name).map(|n| n.to_str().into_owned()),
            Some("example.test".into())
        );
    }
}
