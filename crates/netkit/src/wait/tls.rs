//! TLS for `https://` targets (rustls with the ring provider): whom to trust (the system's
//! roots, a CA file, or nobody checked with `--insecure`) and how a failed handshake reads
//! (`self-signed certificate`, `certificate expired`, ...).

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
            .dangerous()
            .with_custom_certificate_verifier(Given::new(system_roots(), Vec::new(), &provider)?)
            .with_no_client_auth(),
        Trust::CaFile(path) => {
            let (roots, given) = file_roots(path)?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Given::new(roots, given, &provider)?)
                .with_no_client_auth()
        }
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

/// The CAs of the file, and its certificates as given (a server may present one of them).
fn file_roots(path: &PathBuf) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), Error> {
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
    let (added, _) = roots.add_parsable_certificates(certs.iter().cloned());
    if added == 0 {
        return Err(ParseError::new(shown, "no usable CA certificate in the file").into());
    }
    Ok((roots, certs))
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
        rustls::Error::AlertReceived(alert) => {
            format!("the server sent alert \"{}\"", words(&format!("{alert:?}")))
        }
        rustls::Error::InvalidMessage(_) => "corrupt message from the server (not TLS?)".into(),
        other => other.to_string(),
    }
}

fn describe_certificate(err: &CertificateError) -> String {
    use CertificateError as C;
    match err {
        C::UnknownIssuer => {
            "certificate signed by an unknown authority (use --cacert FILE or --insecure)".into()
        }
        C::Other(other) if other.0.is::<SelfSigned>() => "self-signed certificate".into(),
        C::Other(other) if is_ca_used_as_end_entity(other) => {
            "CA certificate used as the server's certificate".into()
        }
        C::Expired | C::ExpiredContext { .. } => "certificate expired".into(),
        C::NotValidYet | C::NotValidYetContext { .. } => "certificate not valid yet".into(),
        C::NotValidForName => "certificate not valid for this host".into(),
        C::NotValidForNameContext {
            expected,
            presented,
        } => {
            let names: Vec<&str> = presented.iter().filter_map(|p| presented_name(p)).collect();
            match names.is_empty() {
                true => format!("certificate has no name, not {}", expected.to_str()),
                false => format!(
                    "certificate is for {}, not {}",
                    names.join(", "),
                    expected.to_str()
                ),
            }
        }
        C::BadSignature => "bad certificate signature".into(),
        C::Revoked => "certificate revoked".into(),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "certificate not meant for TLS servers".into()
        }
        _ => "invalid certificate".into(),
    }
}

/// `handshake failure` from rustls's `HandshakeFailure`.
fn words(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() && !out.is_empty() {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// `other.test` from webpki's `DnsName("other.test")`, `127.0.0.1` from
/// `IpAddress(127.0.0.1)`; none for other kinds of names.
fn presented_name(presented: &str) -> Option<&str> {
    let dns = presented
        .strip_prefix("DnsName(\"")
        .and_then(|n| n.strip_suffix("\")"));
    let ip = || {
        presented
            .strip_prefix("IpAddress(")
            .and_then(|n| n.strip_suffix(')'))
    };
    dns.or_else(ip)
}

/// webpki's `CaUsedAsEndEntity`, which rustls passes on as an [`rustls::OtherError`] whose
/// text is the variant's name.
fn is_ca_used_as_end_entity(other: &rustls::OtherError) -> bool {
    other.to_string() == "CaUsedAsEndEntity"
}

/// The error of a server certificate that signed itself and is not trusted.
#[derive(Debug, thiserror::Error)]
#[error("self-signed certificate")]
struct SelfSigned;

/// The system's roots or `--cacert`'s CAs (webpki), and a server certificate byte-identical to
/// one of `--cacert`'s trusted as given, as curl's partial chains trust it: only its names and
/// dates are checked. An untrusted certificate that signed itself is said to be
/// ([`SelfSigned`]).
#[derive(Debug)]
struct Given {
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
    given: Vec<CertificateDer<'static>>,
}

impl Given {
    fn new(
        roots: RootCertStore,
        given: Vec<CertificateDer<'static>>,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Arc<Given>, Error> {
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| Error::io("set up TLS", std::io::Error::other(e)))?;
        Ok(Arc::new(Given { webpki, given }))
    }
}

impl ServerCertVerifier for Given {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let err = match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return Ok(verified),
            Err(err) => err,
        };
        let judged_past_dates = match &err {
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => true,
            rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
                is_ca_used_as_end_entity(other)
            }
            _ => false,
        };
        if !judged_past_dates {
            return Err(err);
        }
        // webpki checks the certificate's own dates before its basic constraints and its
        // issuer: with these errors, its dates are right.
        if self.given.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_name(&cert, server_name)?;
            return Ok(ServerCertVerified::assertion());
        }
        if der::self_issued(end_entity.as_ref()) {
            let other = rustls::OtherError(Arc::new(SelfSigned));
            return Err(CertificateError::Other(other).into());
        }
        Err(err)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Just enough DER to compare a certificate's issuer with its subject.
mod der {
    /// One TLV: its tag, its whole encoding, its content, and the input after it.
    type Tlv<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

    /// The TLV at the start of `input`.
    fn tlv(input: &[u8]) -> Option<Tlv<'_>> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = match first {
            n if n < 0x80 => (usize::from(n), rest),
            n => {
                let bytes = usize::from(n & 0x7f);
                if bytes == 0 || bytes > 4 || rest.len() < bytes {
                    return None;
                }
                let len = rest[..bytes]
                    .iter()
                    .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
                (len, &rest[bytes..])
            }
        };
        if rest.len() < len {
            return None;
        }
        let header = input.len() - rest.len();
        Some((tag, &input[..header + len], &rest[..len], &rest[len..]))
    }

    /// Whether the certificate names itself as its issuer.
    pub(super) fn self_issued(cert: &[u8]) -> bool {
        let fields = || {
            let (_, _, certificate, _) = tlv(cert)?;
            let (_, _, tbs, _) = tlv(certificate)?;
            let (tag, _, _, mut rest) = tlv(tbs)?;
            if tag != 0xa0 {
                rest = tbs; // no version: a v1 certificate
            }
            let (_, _, _, rest) = tlv(rest)?; // serial number
            let (_, _, _, rest) = tlv(rest)?; // signature algorithm
            let (_, issuer, _, rest) = tlv(rest)?;
            let (_, _, _, rest) = tlv(rest)?; // validity
            let (_, subject, _, _) = tlv(rest)?;
            Some(issuer == subject)
        };
        fields().unwrap_or(false)
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
        assert_eq!(
            describe(&unknown),
            "certificate signed by an unknown authority (use --cacert FILE or --insecure)"
        );
        assert_eq!(
            presented_name("DnsName(\"other.test\")"),
            Some("other.test")
        );
        assert_eq!(presented_name("IpAddress(::1)"), Some("::1"));
        assert_eq!(presented_name("DirectoryName"), None);
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
