//! MQTT over TLS (`mqtts` listeners): the server configuration made from the listener's PEM
//! files, and the handshake that turns an accepted TCP connection into a TLS stream.
//!
//! rustls on the `ring` provider, TLS 1.2 and 1.3 with rustls's safe defaults. With
//! `clientCaFile`, clients must present a certificate that chains to one of its authorities
//! (mutual TLS), and with `useIdentityAsUsername` the certificate's subject Common Name is the
//! client's username ([`TlsListener::identity`]). A TLS connection is served by the same
//! connection loop as a plain one (the stream is a [`Transport`](crate::connection::Transport));
//! it does not go to sleep when idle (its TLS state lives in the stream), so it costs more
//! memory than a plain one.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::codec::ByteString;
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
    #[error("clientCaFile {path}: {message}")]
    ClientCa { path: PathBuf, message: String },
    #[error("certFile {cert} and keyFile {key} do not make a usable server identity: {source}")]
    Identity {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
}

/// The TLS side of an `mqtts` or `wss` listener: its server configuration, made from the
/// listener's files at start-up and made again when they change ([`TlsListener::reload`]).
/// Clones share it.
#[derive(Clone)]
pub struct TlsListener {
    state: Arc<TlsState>,
}

struct TlsState {
    files: TlsFiles,
    /// Made from the files as last read; a handshake takes the one in force when it starts.
    acceptor: RwLock<TlsAcceptor>,
    /// Hash of the files' bytes as last loaded: unchanged files are not parsed again.
    digest: Mutex<u64>,
}

impl TlsListener {
    /// Reads the certificate chain and private key (PEM) and checks that they belong together.
    pub fn from_files(files: &TlsFiles) -> Result<TlsListener, TlsError> {
        let digest = files_digest(files)?;
        let acceptor = acceptor(files)?;
        Ok(TlsListener {
            state: Arc::new(TlsState {
                files: files.clone(),
                acceptor: RwLock::new(acceptor),
                digest: Mutex::new(digest),
            }),
        })
    }

    /// Loads the files again if they changed (a renewed certificate); true if they did.
    /// Connections from then on use them; established ones keep their session. Files that
    /// do not make a usable configuration leave the previous one in force.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let mut digest = self.state.digest.lock();
        let now = files_digest(&self.state.files)?;
        if now == *digest {
            return Ok(false);
        }
        *self.state.acceptor.write() = acceptor(&self.state.files)?;
        *digest = now;
        Ok(true)
    }

    /// How often [`TlsListener::reload`] should look (`tls.reloadIntervalSecs`; zero: never).
    pub fn reload_interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.state.files.reload_interval_secs))
    }

    /// Completes the server side of the handshake on `stream` (the caller bounds its time).
    pub async fn handshake(&self, stream: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        let acceptor = self.state.acceptor.read().clone();
        acceptor.accept(stream).await
    }

    /// The username a verified client certificate gives the connection: its subject's
    /// Common Name, with `useIdentityAsUsername`; `None` without. A certificate without a
    /// Common Name fails the connection: it cannot name a user.
    pub fn identity(&self, stream: &TlsStream<TcpStream>) -> std::io::Result<Option<ByteString>> {
        if !self.state.files.use_identity_as_username {
            return Ok(None);
        }
        let leaf = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first());
        match leaf.and_then(common_name) {
            Some(name) => Ok(Some(ByteString::from(name))),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the client certificate has no subject Common Name to use as username",
            )),
        }
    }
}

/// The server configuration `files` describe: certificate chain and key, and the client
/// certificate verifier with `clientCaFile`.
fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let certs = read_certificates(&files.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&files.key_file).map_err(|error| TlsError::Key {
        path: files.key_file.clone(),
        message: error.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let identity_error = |source| TlsError::Identity {
        cert: files.cert_file.clone(),
        key: files.key_file.clone(),
        source,
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(identity_error)?;
    let builder = match &files.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(path) => builder.with_client_cert_verifier(client_verifier(path, provider)?),
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(identity_error)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Hash of the bytes of every file of `files`.
fn files_digest(files: &TlsFiles) -> Result<u64, TlsError> {
    let mut hasher = DefaultHasher::new();
    let read = |path: &Path| std::fs::read(path).map_err(|e| e.to_string());
    read(&files.cert_file)
        .map_err(|message| TlsError::Certificates {
            path: files.cert_file.clone(),
            message,
        })?
        .hash(&mut hasher);
    read(&files.key_file)
        .map_err(|message| TlsError::Key {
            path: files.key_file.clone(),
            message,
        })?
        .hash(&mut hasher);
    if let Some(path) = &files.client_ca_file {
        read(path)
            .map_err(|message| TlsError::ClientCa {
                path: path.clone(),
                message,
            })?
            .hash(&mut hasher);
    }
    Ok(hasher.finish())
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

/// A verifier accepting client certificates that chain to the authorities in `path`.
fn client_verifier(
    path: &Path,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let invalid = |message: String| TlsError::ClientCa {
        path: path.to_path_buf(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    if certs.is_empty() {
        return Err(invalid("no PEM CERTIFICATE in the file".into()));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| invalid(e.to_string()))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| invalid(e.to_string()))
}

/// The first Common Name of the certificate's subject, if it has one that is UTF-8.
fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let name = parsed.subject().iter_common_name().next()?;
    name.as_str().ok().map(str::to_owned)
}
