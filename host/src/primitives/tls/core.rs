//! TLS handshakes on tokio-rustls, and the verdict on what the server
//! presented. The handshake itself accepts any certificate (a scanner must
//! see the chain of a broken server, not abort on it); the chain is judged
//! afterwards against the trust roots, each fault on its own. Nothing here
//! knows about wasmtime.

use crate::primitives::tcp::{NetError, TcpCore};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use x509_parser::public_key::PublicKey;

/// One certificate of a chain, as the contract describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CertInfo {
    /// Distinguished name, RFC 4514 style.
    pub subject: String,
    /// The issuer's distinguished name.
    pub issuer: String,
    /// DNS names and IP addresses, as text.
    pub sans: Vec<String>,
    /// Seconds since the Unix epoch.
    pub not_before: i64,
    /// Seconds since the Unix epoch.
    pub not_after: i64,
    /// Lowercase hex.
    pub serial: String,
    /// `rsa`, `ecdsa`, `ed25519`, `dsa`, or the algorithm's OID.
    pub key_type: String,
    /// Key size in bits (0 when unknown).
    pub key_bits: u32,
    /// `sha256WithRSAEncryption`, `ecdsa-with-SHA256`...
    pub signature_algorithm: String,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256: String,
    /// The certificate itself.
    #[serde(with = "crate::primitives::bytes")]
    pub der: Vec<u8>,
}

/// A fault of the presented chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Problem {
    /// The leaf's validity ended.
    Expired,
    /// The leaf's validity has not begun.
    NotYetValid,
    /// The leaf is its own issuer and not a trusted root.
    SelfSigned,
    /// No trusted root issued the chain.
    UnknownIssuer,
    /// The leaf is not valid for the name (or address) asked for.
    NameMismatch,
    /// Malformed, or unusable for another reason.
    Invalid,
}

/// What a handshake learned.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Handshake {
    /// `TLSv1.2` or `TLSv1.3`.
    pub version: String,
    /// The IANA name of the suite.
    pub cipher_suite: String,
    /// The protocol the server chose from those offered.
    pub alpn: Option<String>,
    /// Leaf first.
    pub chain: Vec<CertInfo>,
    /// Empty when the chain is valid for the name.
    pub problems: Vec<Problem>,
}

/// Why a handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The TCP connection failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The TLS exchange failed: no common version or suite, not TLS at all.
    #[error("{0}")]
    Handshake(String),
    /// The server name is not a valid DNS name.
    #[error("invalid server name: {0}")]
    InvalidName(String),
}

/// Why the trust roots could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A `--ca-file` could not be read or holds no certificate.
    #[error("cannot use CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// What one handshake asks for.
#[derive(Debug, Clone)]
pub struct HandshakeRequest {
    /// Where.
    pub addr: SocketAddr,
    /// SNI, and the name the certificate is judged against; without one,
    /// no SNI is sent and the certificate is judged against the address.
    pub server_name: Option<String>,
    /// ALPN protocols to offer.
    pub alpn: Vec<String>,
    /// For the connect and for the handshake, each.
    pub timeout: Duration,
}

/// The scan's TLS engine: the crypto provider, the trust roots and the
/// verifier that judges chains. Cheap to clone.
#[derive(Clone)]
pub struct TlsCore {
    provider: Arc<CryptoProvider>,
    roots: Arc<RootCertStore>,
    judge: Arc<WebPkiServerVerifier>,
}

impl std::fmt::Debug for TlsCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsCore").finish_non_exhaustive()
    }
}

/// Read every certificate of a PEM file.
fn load_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let fail = |reason: String| TlsSetupError::CaFile {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("no PEM certificate in it".into()));
    }
    Ok(certs)
}

impl TlsCore {
    /// Trust the webpki (Mozilla) roots and every certificate in `ca_files`.
    pub fn new(ca_files: &[PathBuf]) -> Result<Self, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for path in ca_files {
            for cert in load_pem(path)? {
                roots.add(cert).map_err(|e| TlsSetupError::CaFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            }
        }
        let roots = Arc::new(roots);
        let judge = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .expect("a verifier over a non-empty root store builds");
        Ok(TlsCore {
            provider,
            roots,
            judge,
        })
    }

    /// A client configuration for other primitives (HTTP): with `verify`,
    /// certificates are checked against the scan's roots and a bad one
    /// fails the connection; without, any certificate is accepted.
    pub fn client_config(&self, verify: bool) -> ClientConfig {
        let builder = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default versions");
        if verify {
            builder
                .with_root_certificates(self.roots.clone())
                .with_no_client_auth()
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny {
                    algorithms: self.provider.signature_verification_algorithms,
                    signature_failed: Arc::default(),
                }))
                .with_no_client_auth()
        }
    }

    /// Connect (within the scan's connect budget) and shake hands.
    pub async fn handshake(
        &self,
        tcp: &TcpCore,
        request: HandshakeRequest,
    ) -> Result<Handshake, TlsError> {
        let name: ServerName<'static> = match &request.server_name {
            Some(name) => ServerName::try_from(name.clone())
                .map_err(|e| TlsError::InvalidName(format!("{name:?}: {e}")))?,
            // rustls sends no SNI for an address.
            None => ServerName::IpAddress(request.addr.ip().into()),
        };
        let signature_failed = Arc::new(AtomicBool::new(false));
        let mut config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Handshake(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny {
                algorithms: self.provider.signature_verification_algorithms,
                signature_failed: signature_failed.clone(),
            }))
            .with_no_client_auth();
        config.alpn_protocols = request.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));

        let stream = tcp.connect_stream(request.addr, request.timeout).await?;
        let tls = tokio::time::timeout(request.timeout, connector.connect(name.clone(), stream))
            .await
            .map_err(|_| TlsError::Net(NetError::Timeout))?
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::ConnectionReset => TlsError::Net(NetError::Reset),
                _ => TlsError::Handshake(e.to_string()),
            })?;
        let (_, session) = tls.get_ref();
        let version = match session.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
            Some(other) => format!("{other:?}"),
            None => String::new(),
        };
        let cipher_suite = session
            .negotiated_cipher_suite()
            .map(|s| s.suite().as_str().unwrap_or("unknown").to_string())
            .unwrap_or_default();
        let alpn = session
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let ders: Vec<CertificateDer<'static>> = session
            .peer_certificates()
            .unwrap_or_default()
            .iter()
            .map(|c| c.clone().into_owned())
            .collect();
        let chain: Vec<CertInfo> = ders.iter().map(|d| describe(d)).collect();
        let mut problems = self.judge(&ders, &chain, &name, unix_now());
        // A key too weak for webpki to check is reported by its size (the
        // plugin's weak-key finding); any other failed proof is a fault.
        let weak_rsa = chain
            .first()
            .is_some_and(|leaf| leaf.key_type == "rsa" && leaf.key_bits < 2048);
        if signature_failed.load(Ordering::Relaxed)
            && !weak_rsa
            && !problems.contains(&Problem::Invalid)
        {
            problems.push(Problem::Invalid);
        }
        Ok(Handshake {
            version,
            cipher_suite,
            alpn,
            chain,
            problems,
        })
    }

    /// Every fault of `ders` for `name` at time `now`, each on its own: the
    /// dates, then the issuer (judged at a time inside the validity, so an
    /// expired certificate from a trusted CA is not also "unknown issuer"),
    /// then the name.
    fn judge(
        &self,
        ders: &[CertificateDer<'static>],
        chain: &[CertInfo],
        name: &ServerName<'static>,
        now: i64,
    ) -> Vec<Problem> {
        let (Some(leaf_der), Some(leaf)) = (ders.first(), chain.first()) else {
            return vec![Problem::Invalid];
        };
        let mut problems = Vec::new();
        if now > leaf.not_after {
            problems.push(Problem::Expired);
        }
        if now < leaf.not_before {
            problems.push(Problem::NotYetValid);
        }
        let at = now.clamp(leaf.not_before, leaf.not_after.max(leaf.not_before));
        let at = UnixTime::since_unix_epoch(Duration::from_secs(at.max(0) as u64));
        match self
            .judge
            .verify_server_cert(leaf_der, &ders[1..], name, &[], at)
        {
            Ok(_) => {}
            Err(rustls::Error::InvalidCertificate(e)) => match e {
                CertificateError::UnknownIssuer if leaf.subject == leaf.issuer => {
                    problems.push(Problem::SelfSigned)
                }
                CertificateError::UnknownIssuer => problems.push(Problem::UnknownIssuer),
                // Judged separately below, for every chain.
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {}
                // An intermediate's dates (the leaf's are judged above).
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    if !problems.contains(&Problem::Expired) {
                        problems.push(Problem::Expired)
                    }
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    if !problems.contains(&Problem::NotYetValid) {
                        problems.push(Problem::NotYetValid)
                    }
                }
                _ => problems.push(Problem::Invalid),
            },
            Err(_) => problems.push(Problem::Invalid),
        }
        let name_ok = ParsedCertificate::try_from(leaf_der)
            .is_ok_and(|parsed| rustls::client::verify_server_name(&parsed, name).is_ok());
        if !name_ok {
            problems.push(Problem::NameMismatch);
        }
        problems
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The handshake's verifier: every chain is accepted (it is judged after
/// the handshake). The server's proof that it holds the key is checked, but
/// a failure only marks the result: webpki refuses RSA keys under 2048 bits
/// outright, and a scanner must still see such a server's certificate.
#[derive(Debug)]
struct AcceptAny {
    algorithms: WebPkiSupportedAlgorithms,
    signature_failed: Arc<AtomicBool>,
}

impl AcceptAny {
    fn check(
        &self,
        verified: Result<HandshakeSignatureValid, rustls::Error>,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if verified.is_err() {
            self.signature_failed.store(true, Ordering::Relaxed);
        }
        Ok(HandshakeSignatureValid::assertion())
    }
}

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        self.check(rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.algorithms,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check(rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.algorithms,
        ))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parse what the contract reports of one certificate. A certificate that
/// does not parse is still reported, by its fingerprint.
pub fn describe(der: &CertificateDer<'_>) -> CertInfo {
    let sha256 = hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref());
    let mut info = CertInfo {
        subject: String::new(),
        issuer: String::new(),
        sans: Vec::new(),
        not_before: 0,
        not_after: 0,
        serial: String::new(),
        key_type: String::new(),
        key_bits: 0,
        signature_algorithm: String::new(),
        sha256,
        der: der.to_vec(),
    };
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return info;
    };
    info.subject = cert.subject().to_string();
    info.issuer = cert.issuer().to_string();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => info.sans.push(dns.to_string()),
                GeneralName::IPAddress(bytes) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        info.sans.push(std::net::Ipv4Addr::from(v4).to_string());
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        info.sans.push(std::net::Ipv6Addr::from(v6).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    info.not_before = cert.validity().not_before.timestamp();
    info.not_after = cert.validity().not_after.timestamp();
    info.serial = hex(cert.raw_serial());
    let spki = cert.public_key();
    let registry = x509_parser::objects::oid_registry();
    let oid_name = |oid: &x509_parser::der_parser::oid::Oid<'_>| {
        x509_parser::objects::oid2sn(oid, registry)
            .map(str::to_string)
            .unwrap_or_else(|_| oid.to_id_string())
    };
    (info.key_type, info.key_bits) = match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => ("rsa".into(), rsa.key_size() as u32),
        Ok(PublicKey::EC(ec)) => ("ecdsa".into(), ec.key_size() as u32),
        Ok(PublicKey::DSA(y)) => ("dsa".into(), (y.len() * 8) as u32),
        _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => ("ed25519".into(), 256),
        _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.113" => ("ed448".into(), 456),
        _ => (oid_name(&spki.algorithm.algorithm), 0),
    };
    info.signature_algorithm = oid_name(&cert.signature_algorithm.algorithm);
    info
}
