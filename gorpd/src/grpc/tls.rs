//! gorpd's gRPC TLS identity: the configured certificate chain and key, and
//! what the chain's certificates say of themselves (subject, expiry) for
//! `GetServerInfo`, so `gorpctl doctor` can warn before they expire.

use super::GrpcError;
use crate::config::TlsFiles;
use gorp_proto::v1 as pb;
use tonic::transport::Identity;

/// The identity to serve with, and its chain's certificates, gorpd's own first.
pub(super) fn read(tls: &TlsFiles) -> Result<(Identity, Vec<pb::TlsCertificate>), GrpcError> {
    let read =
        |path: &std::path::Path| std::fs::read(path).map_err(|e| GrpcError::Tls(format!("{}: {e}", path.display())));
    let chain = read(&tls.cert)?;
    let certificates = describe(&chain).map_err(|e| GrpcError::Tls(format!("{}: {e}", tls.cert.display())))?;
    Ok((Identity::from_pem(&chain, read(&tls.key)?), certificates))
}

/// Subject and expiry of each certificate in the PEM `chain`.
fn describe(chain: &[u8]) -> Result<Vec<pb::TlsCertificate>, x509_cert::der::Error> {
    let certificates = x509_cert::Certificate::load_pem_chain(chain)?;
    Ok(certificates
        .into_iter()
        .map(|certificate| {
            let tbs = certificate.tbs_certificate;
            let not_after = chrono::DateTime::<chrono::Utc>::from(tbs.validity.not_after.to_system_time());
            pb::TlsCertificate { subject: tbs.subject.to_string(), not_after: not_after.to_rfc3339() }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_chain_is_described_and_a_file_without_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (files, _) = crate::testing::expired_tls_certificate(dir.path());
        let (_, certificates) = read(&files).unwrap();
        assert_eq!(certificates.len(), 1);
        assert_eq!(certificates[0].subject, "CN=localhost");
        assert_eq!(certificates[0].not_after, "2025-02-01T00:00:00+00:00");
        let error = read(&TlsFiles { cert: files.key.clone(), key: files.key }).unwrap_err();
        assert!(error.to_string().contains("old.key"), "{error}");
    }
}
