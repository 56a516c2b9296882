//! TLS for tests of `mqtts` listeners: certificates made on the spot, and client settings
//! that trust them.

use std::path::PathBuf;
use std::sync::Arc;

use ferrumq_broker::config::{BrokerConfig, ListenerProtocol, TlsFiles};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, RootCertStore};
use tokio_rustls::TlsConnector;

use super::test_config;

/// A self-signed certificate for `localhost` and 127.0.0.1 with its key, written as PEM files
/// (`tls.crt`, `tls.key`) to a temporary directory, and the certificate for clients to trust.
pub struct Identity {
    dir: tempfile::TempDir,
    pub cert_pem: String,
}

impl Identity {
    pub fn new() -> Identity {
        let made = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])
        .expect("a self-signed certificate");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let cert_pem = made.cert.pem();
        std::fs::write(dir.path().join("tls.crt"), &cert_pem).unwrap();
        std::fs::write(dir.path().join("tls.key"), made.signing_key.serialize_pem()).unwrap();
        Identity { dir, cert_pem }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn files(&self) -> TlsFiles {
        TlsFiles {
            cert_file: self.path("tls.crt"),
            key_file: self.path("tls.key"),
            ..TlsFiles::default()
        }
    }
}

/// The test configuration with its one listener made `mqtts` (named so) with `files`.
pub fn tls_config(files: TlsFiles) -> BrokerConfig {
    let mut config = test_config();
    config.listeners[0].name = "mqtts".into();
    config.listeners[0].protocol = ListenerProtocol::Mqtts;
    config.listeners[0].tls = Some(files);
    config
}

/// A TLS client configuration that trusts exactly `cert_pem`.
pub fn trusting(cert_pem: &str) -> TlsConnector {
    let config = client_builder(cert_pem).with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// A TLS client configuration that trusts exactly `cert_pem` and presents `client`'s
/// certificate.
pub fn trusting_as(cert_pem: &str, client: &ClientCertificate) -> TlsConnector {
    let cert = CertificateDer::from_pem_slice(client.cert_pem.as_bytes()).expect("PEM certificate");
    let key = PrivateKeyDer::from_pem_slice(client.key_pem.as_bytes()).expect("PEM key");
    let config = client_builder(cert_pem)
        .with_client_auth_cert(vec![cert], key)
        .expect("a usable client certificate");
    TlsConnector::from(Arc::new(config))
}

fn client_builder(
    cert_pem: &str,
) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(cert.expect("PEM certificate")).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
}

/// A client certificate and its key, as PEM.
pub struct ClientCertificate {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A certificate authority that issues client certificates; its certificate is written to
/// `ca.crt` in a temporary directory, for a listener's `clientCaFile`.
pub struct Authority {
    dir: tempfile::TempDir,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Authority {
    pub fn new(name: &str) -> Authority {
        let key = rcgen::KeyPair::generate().expect("a CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("a CA certificate");
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("ca.crt"), cert.pem()).unwrap();
        Authority {
            dir,
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    pub fn cert_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// A client certificate whose subject Common Name is `common_name` (none if `None`).
    pub fn issue(&self, common_name: Option<&str>) -> ClientCertificate {
        let key = rcgen::KeyPair::generate().expect("a client key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(name) = common_name {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
        } else {
            params
                .distinguished_name
                .push(rcgen::DnType::OrganizationName, "no common name");
        }
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("a client certificate");
        ClientCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}
