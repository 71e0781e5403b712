//! TLS (rustls, ring provider) as a [`Stream`] the channel runs over, for
//! both ends: a [`TlsConnector`] turns a connected stream into a verified
//! client session, a [`TlsAcceptor`] turns an accepted one into a server
//! session that may require a client certificate.
//!
//! It interoperates with Python's `ssl` as rpyc uses it: `rpyc.ssl_connect`,
//! `SSLAuthenticator` and `rpyc_classic --ssl-*`. What it hands on is an
//! ordinary [`Stream`]: the channel reads plaintext from it exactly as from a
//! socket, and the stream keeps the socket's own behaviour underneath (one
//! `recv` per read under `SO_RCVTIMEO`, `TCP_NODELAY`, the quick-ACK rule),
//! because the ciphertext moves through the plain socket halves.
//!
//! Verification is on by default: the server's chain against a CA file or
//! the system's roots, and its name against the host connected to. Turning
//! it off takes [`TlsOptions::danger_accept_invalid_certs`], named so it
//! cannot be mistaken for anything else.
//!
//! A failed handshake is a [`TlsError`] naming the reason: expired,
//! untrusted, wrong host, a client certificate missing or refused.
//!
//! This file holds the options, the errors and the two session factories;
//! `session.rs` is the stream itself, `x509.rs` reads names from
//! certificates.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use rustls::{ServerConfig, SignatureScheme};

use super::Stream;

mod session;
mod x509;

use session::handshake;

/// How a client verifies the server and proves who it is.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    server_name: Option<String>,
    accept_invalid: bool,
}

impl TlsOptions {
    /// Verifies the server against the system's CA roots, and its name
    /// against the host connected to.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts the CAs in this PEM file instead of the system's roots
    /// (rpyc's `ca_certs`).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Presents this certificate chain and key (PEM files) to a server that
    /// asks for one (rpyc's `certfile` and `keyfile`).
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.cert_file = Some(cert.into());
        self.key_file = Some(key.into());
        self
    }

    /// Checks the server's certificate against this name rather than the
    /// host connected to (for a server reached by IP whose certificate
    /// names a host).
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// **Turns verification off**: any certificate from anyone is accepted,
    /// so the connection is encrypted but the server is not authenticated
    /// and a man in the middle goes unnoticed. For tests and first setup.
    pub fn danger_accept_invalid_certs(mut self, on: bool) -> Self {
        self.accept_invalid = on;
        self
    }

    /// True when verification was turned off.
    pub fn accepts_invalid_certs(&self) -> bool {
        self.accept_invalid
    }
}

/// Whether a server asks its clients for certificates (Python's
/// `ssl.CERT_NONE`, `CERT_OPTIONAL`, `CERT_REQUIRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// Asks for none.
    #[default]
    None,
    /// Asks, and verifies one if sent; a client without one is let in.
    Optional,
    /// Refuses a client without a certificate from the CA file.
    Required,
}

/// A server's certificate, key, and what it asks of its clients.
#[derive(Debug, Clone)]
pub struct TlsServerOptions {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
    client_auth: ClientAuth,
}

impl TlsServerOptions {
    /// Serves with this certificate chain and key (PEM files), asking
    /// clients for nothing.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        TlsServerOptions {
            cert_file: cert.into(),
            key_file: key.into(),
            client_ca_file: None,
            client_auth: ClientAuth::None,
        }
    }

    /// Verifies client certificates against the CAs in this PEM file and
    /// requires one (rpyc's `SSLAuthenticator(..., ca_certs=...)`, whose
    /// default then is `CERT_REQUIRED`); [`Self::client_auth`] relaxes it.
    pub fn client_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.client_ca_file = Some(path.into());
        self.client_auth = ClientAuth::Required;
        self
    }

    /// Sets whether client certificates are asked for and required.
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = auth;
        self
    }
}

/// Why a TLS session could not be set up or went wrong. Each variant's
/// message names the reason in words a person can act on.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate, key or CA file is missing or unusable.
    Setup(String),
    /// The peer's certificate has expired or is not valid yet.
    Expired(String),
    /// The peer's certificate is not signed by a CA we trust.
    Untrusted(String),
    /// The server's certificate does not name the host we connected to.
    WrongHost(String),
    /// A client certificate was required and none was presented.
    ClientCertificateMissing(String),
    /// The peer refused our certificate or the handshake (a fatal alert).
    Rejected(String),
    /// Any other handshake or record failure.
    Protocol(String),
    /// The handshake did not finish in time.
    Timeout,
    /// The peer closed the connection during the handshake.
    Closed,
    /// The socket failed.
    Io(io::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Setup(m) => write!(f, "TLS setup: {m}"),
            TlsError::Expired(m)
            | TlsError::Untrusted(m)
            | TlsError::WrongHost(m)
            | TlsError::ClientCertificateMissing(m)
            | TlsError::Rejected(m)
            | TlsError::Protocol(m) => write!(f, "TLS: {m}"),
            TlsError::Timeout => {
                write!(
                    f,
                    "TLS: the handshake did not finish in time (does the peer speak TLS? see --timeout)"
                )
            }
            TlsError::Closed => {
                write!(f, "TLS: the peer closed the connection during the handshake (does it speak TLS?)")
            }
            TlsError::Io(e) => write!(f, "TLS: {e}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl TlsError {
    /// Names the reason of a rustls error; `peer` is "server" or "client".
    fn classify(e: &rustls::Error, peer: &str) -> TlsError {
        use rustls::Error as E;
        match e {
            E::InvalidCertificate(c) => match c {
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    TlsError::Expired(format!("the {peer}'s certificate has expired ({e})"))
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    TlsError::Expired(format!("the {peer}'s certificate is not valid yet ({e})"))
                }
                CertificateError::UnknownIssuer | CertificateError::BadSignature => TlsError::Untrusted(
                    format!("the {peer}'s certificate is not signed by a trusted CA ({e}; see --ca)"),
                ),
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                    TlsError::WrongHost(format!(
                        "the {peer}'s certificate is not valid for the host connected to ({e})"
                    ))
                }
                // webpki reports it only as an "other" error: a certificate
                // with CA:TRUE presented as the peer's own, which is what
                // `openssl req -x509` makes and Python's ssl accepts.
                other if format!("{other:?}").contains("CaUsedAsEndEntity") => TlsError::Untrusted(format!(
                    "the {peer}'s certificate is a CA certificate (a self-signed `openssl req -x509` one?); \
                     rustls accepts only a certificate signed by a CA, so sign one with the CA and give \
                     the CA with --ca ({e})"
                )),
                _ => TlsError::Untrusted(format!("the {peer}'s certificate was refused ({e})")),
            },
            E::NoCertificatesPresented => TlsError::ClientCertificateMissing(
                "the client presented no certificate, and this server requires one".into(),
            ),
            E::AlertReceived(AlertDescription::CertificateRequired) => {
                TlsError::ClientCertificateMissing(format!(
                    "the {peer} requires a client certificate, and none was presented (see --cert/--key)"
                ))
            }
            E::AlertReceived(a) => {
                let what = match a {
                    AlertDescription::UnknownCA => "it does not trust the CA of our certificate",
                    AlertDescription::CertificateExpired => "our certificate has expired",
                    AlertDescription::BadCertificate
                    | AlertDescription::CertificateUnknown
                    | AlertDescription::UnsupportedCertificate => "it refused our certificate",
                    AlertDescription::HandshakeFailure => {
                        "handshake failure (a missing client certificate, or no common cipher)"
                    }
                    AlertDescription::AccessDenied => "access denied",
                    _ => "fatal alert",
                };
                TlsError::Rejected(format!("the {peer} ended the handshake: {what} ({a:?})"))
            }
            other => TlsError::Protocol(other.to_string()),
        }
    }

    /// As an I/O error for the stream halves (which speak `io::Result`).
    fn to_io(&self) -> io::Error {
        io::Error::new(io::ErrorKind::ConnectionAborted, self.to_string())
    }
}

impl From<io::Error> for TlsError {
    fn from(e: io::Error) -> Self {
        TlsError::Io(e)
    }
}

/// The peer certificate a TLS server saw, as rpyc's `SSLAuthenticator`
/// hands it to the service (`ssl.getpeercert()`): attribute names are
/// Python's (`commonName`, `organizationName`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The subject's `(attribute, value)` pairs, in certificate order.
    pub subject: Vec<(String, String)>,
    /// The issuer's `(attribute, value)` pairs.
    pub issuer: Vec<(String, String)>,
    /// The certificate itself (DER).
    pub der: Vec<u8>,
}

impl PeerCertificate {
    fn from_der(der: &[u8]) -> PeerCertificate {
        let (subject, issuer) = x509::names(der).unwrap_or_default();
        PeerCertificate { subject, issuer, der: der.to_vec() }
    }

    /// The subject's `commonName`, if it has one.
    pub fn common_name(&self) -> Option<&str> {
        self.subject.iter().find(|(k, _)| k == "commonName").map(|(_, v)| v.as_str())
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Setup(format!("cannot read the {what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError::Setup(format!("the {what} {} holds no PEM certificate", path.display())));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| TlsError::Setup(format!("cannot read the private key {}: {e}", path.display())))
}

fn roots_from(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path, "CA file")? {
        roots
            .add(cert)
            .map_err(|e| TlsError::Setup(format!("a certificate in {} is unusable: {e}", path.display())))?;
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(TlsError::Setup(
            "no system CA certificates found (give a CA file with --ca, or install ca-certificates)".into(),
        ));
    }
    Ok(roots)
}

/// Makes client sessions. Cheap to clone; build once, connect many times.
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
    server_name: Option<String>,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

impl TlsConnector {
    /// Loads the CA roots and the client certificate the options name.
    pub fn new(opts: &TlsOptions) -> Result<TlsConnector, TlsError> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?;
        let builder = if opts.accept_invalid {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider)))
        } else {
            let roots = match &opts.ca_file {
                Some(p) => roots_from(p)?,
                None => system_roots()?,
            };
            builder.with_root_certificates(roots)
        };
        let config = match (&opts.cert_file, &opts.key_file) {
            (Some(c), Some(k)) => builder
                .with_client_auth_cert(load_certs(c, "certificate")?, load_key(k)?)
                .map_err(|e| TlsError::Setup(format!("the client certificate and key do not fit: {e}")))?,
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(TlsError::Setup("a client certificate needs both a cert and a key file".into())),
        };
        Ok(TlsConnector { config: Arc::new(config), server_name: opts.server_name.clone() })
    }

    /// Runs the handshake over `stream` (connected to `host`) and returns
    /// the encrypted stream, verified as the options say. Waits at most
    /// `timeout` for the handshake.
    pub fn connect(&self, stream: Stream, host: &str, timeout: Option<Duration>) -> Result<Stream, TlsError> {
        self.connect_verified(stream, host, timeout).map(|(s, _)| s)
    }

    /// As [`TlsConnector::connect`], also returning the certificate the
    /// server presented.
    pub fn connect_verified(
        &self,
        stream: Stream,
        host: &str,
        timeout: Option<Duration>,
    ) -> Result<(Stream, Option<PeerCertificate>), TlsError> {
        let name = self.server_name.as_deref().unwrap_or(host);
        let name = name.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|_| TlsError::Setup(format!("{name:?} is not a valid server name for TLS")))?;
        let conn = rustls::ClientConnection::new(self.config.clone(), server_name)
            .map_err(|e| TlsError::Setup(e.to_string()))?;
        handshake(stream, conn.into(), "server", timeout, &|| false)
    }
}

/// Makes server sessions. Cheap to clone.
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<ServerConfig>,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor").finish_non_exhaustive()
    }
}

impl TlsAcceptor {
    /// Loads the server's certificate and key and the client CA file.
    pub fn new(opts: &TlsServerOptions) -> Result<TlsAcceptor, TlsError> {
        let provider = provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?;
        let verifier = match (&opts.client_ca_file, opts.client_auth) {
            (_, ClientAuth::None) => WebPkiClientVerifier::no_client_auth(),
            (None, _) => {
                return Err(TlsError::Setup("asking for client certificates needs a client CA file".into()))
            }
            (Some(ca), auth) => {
                let b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots_from(ca)?), provider);
                let b = if auth == ClientAuth::Optional { b.allow_unauthenticated() } else { b };
                b.build().map_err(|e| TlsError::Setup(format!("client verification: {e}")))?
            }
        };
        let config = builder
            .with_client_cert_verifier(verifier)
            .with_single_cert(load_certs(&opts.cert_file, "certificate")?, load_key(&opts.key_file)?)
            .map_err(|e| TlsError::Setup(format!("the certificate and key do not fit: {e}")))?;
        Ok(TlsAcceptor { config: Arc::new(config) })
    }

    /// Runs the server side of the handshake over an accepted stream.
    /// Returns the encrypted stream and the client's certificate, if it
    /// presented one. `cancel` is asked between waits of at most 100 ms, so
    /// a stopping server does not wait out a silent client.
    pub fn accept(
        &self,
        stream: Stream,
        timeout: Option<Duration>,
        cancel: &dyn Fn() -> bool,
    ) -> Result<(Stream, Option<PeerCertificate>), TlsError> {
        let conn =
            rustls::ServerConnection::new(self.config.clone()).map_err(|e| TlsError::Setup(e.to_string()))?;
        handshake(stream, conn.into(), "client", timeout, cancel)
    }
}

/// Accepts any server certificate (still checking the handshake
/// signatures, so the session keys belong to whoever holds the key).
#[derive(Debug)]
struct AcceptAnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServer {
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
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
