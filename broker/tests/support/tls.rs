//! TLS for tests of `mqtts` listeners: certificates made on the spot, and client settings
//! that trust them.

use std::path::PathBuf;
use std::sync::Arc;

use ferrumq_broker::config::{BrokerConfig, ListenerProtocol, TlsFiles};
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
    let mut roots = RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(cert.expect("PEM certificate")).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}
