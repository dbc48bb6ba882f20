//! The TLS certificates gorpd presents, read for `gorpctl doctor`: when they
//! expire. They are read over a handshake of their own that accepts any
//! certificate and sends nothing, so an expired or untrusted certificate
//! (which the real connection refuses) can still be read and named.

use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, Error as TlsError, SignatureScheme};
use x509_cert::der::Decode;

/// How long reaching gorpd and the handshake may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// One certificate of the chain gorpd presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Presented {
    /// Its subject, e.g. `CN=gorp.example.org`.
    pub(crate) subject: String,
    /// The end of its validity.
    pub(crate) not_after: SystemTime,
}

/// The chain presented at `url` (`https://host[:port]`), gorpd's own certificate first.
pub(crate) async fn presented(url: &str) -> Result<Vec<Presented>, String> {
    let uri: tonic::codegen::http::Uri = url.parse().map_err(|e| format!("{url} is not a URL: {e}"))?;
    let host = uri.host().ok_or_else(|| format!("{url} names no host"))?.trim_matches(['[', ']']).to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let name = ServerName::try_from(host.clone()).map_err(|e| format!("{host} is not a server name: {e}"))?;
    let reading = async {
        let tcp = TcpStream::connect((host.as_str(), port)).await.map_err(|e| format!("cannot reach {url}: {e}"))?;
        let tls = connector().connect(name, tcp).await.map_err(|e| format!("TLS handshake with {url} failed: {e}"))?;
        let chain = tls.get_ref().1.peer_certificates().unwrap_or_default();
        chain.iter().map(|der| describe(der)).collect()
    };
    tokio::time::timeout(TIMEOUT, reading).await.map_err(|_| format!("{url} did not finish a TLS handshake in 5 s"))?
}

fn describe(der: &CertificateDer<'_>) -> Result<Presented, String> {
    let certificate = x509_cert::Certificate::from_der(der).map_err(|e| format!("unreadable certificate: {e}"))?;
    let tbs = certificate.tbs_certificate;
    Ok(Presented { subject: tbs.subject.to_string(), not_after: tbs.validity.not_after.to_system_time() })
}

fn connector() -> TlsConnector {
    let provider = Arc::new(ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ReadOnly(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// Takes any certificate: the connection only reads it and is closed unused.
#[derive(Debug)]
struct ReadOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for ReadOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        let algorithms = &self.0.signature_verification_algorithms;
        tokio_rustls::rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        let algorithms = &self.0.signature_verification_algorithms;
        tokio_rustls::rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
