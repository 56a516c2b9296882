//! MQTT over TLS (`mqtts` listeners): the server configuration made from the listener's PEM
//! files, and the handshake that turns an accepted TCP connection into a TLS stream.
//!
//! rustls on the `ring` provider, TLS 1.2 and 1.3 with rustls's safe defaults; no client
//! certificates. A TLS connection is served by the same connection loop as a plain one (the
//! stream is a [`Transport`](crate::connection::Transport)); it does not go to sleep when idle
//! (its TLS state lives in the stream), so it costs more memory than a plain one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;

/// Why a listener's TLS configuration could not be made. Each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certFile and keyFile: an mqtts listener needs both")]
    NoFiles,
    #[error("certFile {path}: {message}")]
    Certificates { path: PathBuf, message: String },
    #[error("certFile {path}: no PEM CERTIFICATE in the file")]
    NoCertificate { path: PathBuf },
    #[error("keyFile {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("certFile {cert} and keyFile {key} do not make a usable server identity: {source}")]
    Identity {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

/// The TLS side of an `mqtts` listener, made once at start-up.
#[derive(Clone)]
pub struct TlsListener {
    acceptor: TlsAcceptor,
}

impl TlsListener {
    /// Reads the certificate chain and private key (PEM) and checks that they belong together.
    pub fn from_files(files: &TlsFiles) -> Result<TlsListener, TlsError> {
        let certs = read_certificates(&files.cert_file)?;
        let key = PrivateKeyDer::from_pem_file(&files.key_file).map_err(|error| TlsError::Key {
            path: files.key_file.clone(),
            message: error.to_string(),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_no_client_auth().with_single_cert(certs, key))
            .map_err(|source| TlsError::Identity {
                cert: files.cert_file.clone(),
                key: files.key_file.clone(),
                source,
            })?;
        Ok(TlsListener {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Completes the server side of the handshake on `stream` (the caller bounds its time).
    pub async fn handshake(&self, stream: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        self.acceptor.accept(stream).await
    }
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let unreadable = |error: rustls_pki_types::pem::Error| TlsError::Certificates {
        path: path.to_path_buf(),
        message: error.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(unreadable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}
