//! In-process TLS servers for the TLS tests, with certificates from a test CA.
//!
//! Every certificate is generated at start with rcgen (ECDSA P-256), so the
//! dates are always relative to now. The test crate is synchronous, so each
//! server runs on its own tokio runtime in a background thread (as
//! `dns_server` does) and [`TlsServer`] only exposes blocking accessors.
//!
//! [`Cert::WeakRsa`] is the odd one: ring (under both rustls and rcgen)
//! neither generates RSA keys nor loads RSA private keys under 2048 bits, so
//! that server signs its handshakes with the `rsa` crate (PKCS#1 v1.5 with
//! SHA-256, hence TLS 1.2 only). Clients built on ring's default algorithms
//! cannot verify that signature either; see `WeakRsa`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_RSA_SHA256, PublicKeyData, SignatureAlgorithm,
};
use rustls::crypto::ring::{default_provider, sign::any_ecdsa_type};
use rustls::pki_types::CertificateDer;
use rustls::sign::{CertifiedKey, Signer, SigningKey, SingleCertAndKey};
use rustls::{ServerConfig, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

/// The fixed key of [`Cert::WeakRsa`] (PKCS#8, from `openssl genpkey
/// -algorithm RSA -pkeyopt rsa_keygen_bits:1024`): ring cannot generate one.
const WEAK_RSA_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIICdQIBADANBgkqhkiG9w0BAQEFAASCAl8wggJbAgEAAoGBANAjauQl33Xx71MM
qdo78hEp2FJZldzGTa1ZXP/9rv0yckNPyDopBAwD9W4ePEl5MSp5lBi3cNoy8023
vfGCWwCAP2adHyK/olIZd9M28MbQBi/NMRy4rbLGiuUfFP8OtMV1edlo5OMjQGCu
W/bkXx2+Xn2faOA5PYWtwuKNe2vVAgMBAAECgYBBfxOw7ZYPGG3WNYLxkLGQ4xkW
eOhmy+Q/q4JPb/Xz6T75nY6Fdsi2OzytRUh1WnS1SALpcDhMAYJ8r1hPOlUGFwq8
3QGt5dHp8g8HED7jHBBBU9NI/9qWyLaQ1zIPDUp0peQSA4djNFHjRPOce31SYcMU
YJuv0jOTslL9X3kzNQJBAOoTIKuJxjF07NcUNmHcGV++pavBjkWiGFLeTOUC46OG
nxCRSbyYnbxVvAuGnzJjRc2xlvrk2Z8j5nsZWKlLisMCQQDjolzDNoM0S3apxIJw
L5XN4kEgeOsTbjtP+BkXr+PKTBqlmQe9XHx4nei2dddqKaZ41NhlYXljrNUvRv41
+9WHAkB2ZXhn68c46tiFLa8YLpkTCb6Ist2AsS22dMTWLXDxHL3GRobSgyt9wKvd
9Jj/hqEfGs2wWCMPULxa1YY4E4K7AkBVXI1spwSMl7/n6ckASNfkXPQPOUjuAGg9
lMvUFiFVuzRC5SAB4qzKjmy1/3rIVNYYebisS+E5f5ZyJC0wEUABAkBB59KajFHf
nuv6bOFh/0H1JOei/Cc9nc1Nz4vDNR+ifGo31aszK9Lb3Z2UrBhpIWReyEIKLCtH
bj7/GQ26x8YA
-----END PRIVATE KEY-----
";

/// The page every server answers with.
const BODY: &str = "<html><head><title>TLS test page</title></head><body>hello</body></html>";

/// How long a client may take over the handshake, and then over its request.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A test certificate authority: "wscan test CA", generated once per process
/// (std::sync::OnceLock), ECDSA P-256.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem_path: PathBuf,
    /// Held only so the directory of `pem_path` outlives every test.
    _dir: tempfile::TempDir,
}

impl TestCa {
    /// The process's CA, made on first use.
    pub fn get() -> &'static TestCa {
        static CA: OnceLock<TestCa> = OnceLock::new();
        CA.get_or_init(|| {
            let mut params = CertificateParams::default();
            params.distinguished_name = name("wscan test CA");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            set_validity(&mut params, -1, 3650);
            let key = KeyPair::generate().expect("CA key");
            let cert = params.self_signed(&key).expect("CA certificate");
            let dir = tempfile::tempdir().expect("temp dir for the CA");
            let pem_path = dir.path().join("wscan-test-ca.pem");
            std::fs::write(&pem_path, cert.pem()).expect("write the CA PEM");
            TestCa {
                issuer: Issuer::new(params, key),
                pem_path,
                _dir: dir,
            }
        })
    }

    /// Path of a PEM file holding the CA certificate (for `--ca-file`),
    /// written once to a temp dir that lives for the whole process.
    pub fn pem_path(&self) -> &Path {
        &self.pem_path
    }
}

/// Which certificate a server presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cert {
    /// Signed by the test CA, valid now (not_before = now - 1 day, not_after
    /// = now + 364.5 days: `days_left` reads 364), SANs: DNS `www.wscan.test` and IP 127.0.0.1.
    /// Subject CN "www.wscan.test", O "wscan tests".
    Valid,
    /// Signed by the test CA, SANs as Valid, but not_after = now - 1.5 days
    /// (not_before now - 30 days).
    Expired,
    /// Signed by the test CA, valid, not_after = now + 9.5 days (for
    /// "expiring within 30 days"; `days_left` reads 9).
    ExpiringSoon,
    /// Self-signed (its own issuer), valid dates, SAN DNS www.wscan.test, IP
    /// 127.0.0.1, CN "self.wscan.test".
    SelfSigned,
    /// Signed by the test CA, valid dates, SAN DNS `other.example.test` only
    /// (no IP SAN), CN the same: a name mismatch for www.wscan.test and 127.0.0.1.
    WrongName,
    /// Signed by the test CA, valid, SANs as Valid, but a fixed RSA 1024-bit
    /// key. The server then speaks TLS 1.2 only and signs with
    /// rsa_pkcs1_sha256 (TLS 1.3 would need RSA-PSS, which ring cannot
    /// verify for a key this small).
    WeakRsa,
    /// Signed by the test CA, valid, SANs as Valid plus
    /// [`MANY_NAMES`] DNS names `n0.other.test`, `n1.other.test`...
    ManyNames,
}

/// How many foreign names a [`Cert::ManyNames`] certificate carries.
pub const MANY_NAMES: usize = 1000;

/// Connections and handshakes seen; written by the server, read by the test.
#[derive(Default)]
struct Counts {
    connections: AtomicUsize,
    handshakes: AtomicUsize,
}

/// A TLS server on 127.0.0.1 (ephemeral port) presenting `cert`, TLS 1.2
/// and 1.3 (1.2 only for [`Cert::WeakRsa`]), ALPN ["h2", "http/1.1"].
/// After the handshake it reads until "\r\n\r\n" or EOF (5 s at most), then
/// answers `HTTP/1.1 200 OK` with `Content-Type: text/html`, `Server:
/// wscan-test-tls`, `Content-Length`, `Connection: close` and the page
/// [`BODY`], and closes. It counts accepted TCP connections and completed
/// handshakes. Dropping it stops the server and releases the port.
pub struct TlsServer {
    addr: SocketAddr,
    leaf: CertificateDer<'static>,
    counts: Arc<Counts>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TlsServer {
    /// Start on 127.0.0.1 with a fresh certificate of the kind `cert`.
    ///
    /// The socket listens before this returns, so connections made right
    /// away wait in the backlog instead of racing the server thread.
    pub fn start(cert: Cert) -> TlsServer {
        let (leaf, key) = leaf(cert);
        let versions: &[_] = match cert {
            Cert::WeakRsa => &[&rustls::version::TLS12],
            _ => rustls::ALL_VERSIONS,
        };
        let certified = CertifiedKey::new(vec![leaf.clone()], key);
        let mut config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
            .with_protocol_versions(versions)
            .expect("TLS versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("TLS server runtime");
        let listener = {
            // listen() registers the socket with the runtime's reactor.
            let _context = rt.enter();
            let socket = TcpSocket::new_v4().expect("TLS server socket");
            // As tokio's TcpListener::bind does: connections left in
            // TIME_WAIT must not keep the port from being bound again.
            socket.set_reuseaddr(true).expect("SO_REUSEADDR");
            socket
                .bind((Ipv4Addr::LOCALHOST, 0).into())
                .expect("bind TLS server");
            // A scanner connects many times at once; 128 (the usual
            // default) drops connects.
            socket.listen(4096).expect("listen")
        };
        let addr = listener.local_addr().expect("TLS server address");
        let counts = Arc::new(Counts::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = serve(listener, acceptor, counts.clone(), stopped);
        let thread = thread::Builder::new()
            .name(format!("tls-server-{}", addr.port()))
            // Dropping the runtime at the end drops every connection task
            // and the listener, so the port is free once the thread is joined.
            .spawn(move || rt.block_on(serving))
            .expect("spawn TLS server thread");
        TlsServer {
            addr,
            leaf,
            counts,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.counts.connections.load(Ordering::SeqCst)
    }

    /// Handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.counts.handshakes.load(Ordering::SeqCst)
    }

    /// The DER of the leaf certificate presented (tests compare its SHA-256,
    /// serial, etc.).
    pub fn leaf_der(&self) -> Vec<u8> {
        self.leaf.to_vec()
    }
}

impl Drop for TlsServer {
    /// Stop the server and wait for its thread, so the port is free afterwards.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accept until told to stop; each connection is answered in its own task.
async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    counts: Arc<Counts>,
    mut stopped: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            // A stop, or the TlsServer gone without one: stop all the same.
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    counts.connections.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(answer(acceptor.clone(), tcp, counts.clone()));
                }
                // Out of descriptors under a burst, say: wait, don't spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

/// Shake hands, read the request, send the page, close. A failed handshake
/// (a port probe, a client that gives up after the certificate, not TLS at
/// all) is normal for a scanner's target, so it just ends the task.
async fn answer(acceptor: TlsAcceptor, tcp: TcpStream, counts: Arc<Counts>) {
    let Ok(Ok(mut tls)) = tokio::time::timeout(IO_TIMEOUT, acceptor.accept(tcp)).await else {
        return;
    };
    counts.handshakes.fetch_add(1, Ordering::SeqCst);
    let mut request = Vec::new();
    let mut buf = [0u8; 2048];
    let _ = tokio::time::timeout(IO_TIMEOUT, async {
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nServer: wscan-test-tls\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tls.write_all(response.as_bytes()).await;
    // close_notify, then FIN: the client sees a clean end of the page.
    let _ = tls.shutdown().await;
}

/// The leaf certificate of kind `cert` and the key the server signs with.
/// A fresh certificate of the kind `cert` signed as [`TlsServer`]'s are, and
/// its key, both PEM: for a server outside this process (in a network
/// namespace). Not for [`Cert::WeakRsa`] (ring cannot make its key).
pub fn leaf_pem(cert: Cert) -> (String, String) {
    assert_ne!(cert, Cert::WeakRsa, "no PEM key for WeakRsa");
    let params = leaf_params(cert);
    let key = KeyPair::generate().expect("leaf key");
    let issued = match cert {
        Cert::SelfSigned => params.self_signed(&key),
        _ => params.signed_by(&key, &TestCa::get().issuer),
    };
    (issued.expect("leaf certificate").pem(), key.serialize_pem())
}

fn leaf(cert: Cert) -> (CertificateDer<'static>, Arc<dyn SigningKey>) {
    let params = leaf_params(cert);
    let ca = &TestCa::get().issuer;
    if cert == Cert::WeakRsa {
        let key = WeakRsa::new();
        let issued = params.signed_by(&key, ca).expect("weak RSA leaf");
        return (issued.into(), Arc::new(key));
    }
    let key = KeyPair::generate().expect("leaf key");
    let issued = match cert {
        Cert::SelfSigned => params.self_signed(&key),
        _ => params.signed_by(&key, ca),
    };
    let signer = any_ecdsa_type(&key.into()).expect("rustls signing key");
    (issued.expect("leaf certificate").into(), signer)
}

/// A client certificate (CN `cn`, client authentication only) signed by
/// the test CA, and its key, both PEM: for a server that asks clients for
/// one (a Redis with `tls-auth-clients yes`).
pub fn client_pem(cn: &str) -> (String, String) {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(cn);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, -1, 365);
    let key = KeyPair::generate().expect("client key");
    let issued = params
        .signed_by(&key, &TestCa::get().issuer)
        .expect("client certificate");
    (issued.pem(), key.serialize_pem())
}

/// The names, dates and uses of a certificate of the kind `cert`.
fn leaf_params(cert: Cert) -> CertificateParams {
    let (cn, sans) = match cert {
        Cert::SelfSigned => ("self.wscan.test", vec!["www.wscan.test", "127.0.0.1"]),
        Cert::WrongName => (
            "other.example.test",
            vec!["other.example.test", "*.example.test", "127.0.0.7"],
        ),
        _ => ("www.wscan.test", vec!["www.wscan.test", "127.0.0.1"]),
    };
    let mut sans: Vec<String> = sans.into_iter().map(String::from).collect();
    if cert == Cert::ManyNames {
        sans.extend((0..MANY_NAMES).map(|i| format!("n{i}.other.test")));
    }
    let mut params = CertificateParams::new(sans).expect("SANs");
    params.distinguished_name = name(cn);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = cert != Cert::SelfSigned;
    match cert {
        Cert::Expired => set_validity(&mut params, -30, -1),
        Cert::ExpiringSoon => set_validity(&mut params, -1, 10),
        _ => set_validity(&mut params, -1, 365),
    }
    params
}

/// CN `cn`, then O "wscan tests": in this order, x509-parser prints
/// "CN=..., O=wscan tests".
fn name(cn: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, cn);
    name.push(DnType::OrganizationName, "wscan tests");
    name
}

/// Valid from `from` days from now to half a day before `to` days from now.
/// The half day keeps a plugin's `days_left` (whole days until not_after)
/// at `to - 1` however many seconds pass between making the certificate and
/// reading it: with not_after exactly `to` days ahead, it read `to` within
/// the same second and `to - 1` after, and a recording and its replay a
/// second apart disagreed. rcgen's dates are `time::OffsetDateTime`;
/// starting from its own epoch avoids depending on `time`.
fn set_validity(params: &mut CertificateParams, from: i64, to: i64) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock");
    let at = |days: i64, shift: i64| {
        let secs = now.as_secs() as i64 + days * 86_400 + shift;
        rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(secs as u64)
    };
    (params.not_before, params.not_after) = (at(from, 0), at(to, -43_200));
}

/// The RSA-1024 key of [`Cert::WeakRsa`], as rcgen's public key and as
/// rustls's signing key (the `rsa` crate signs: ring refuses keys this small).
#[derive(Clone, Debug)]
struct WeakRsa {
    /// RSAPublicKey DER, the SubjectPublicKeyInfo's bit string.
    public: Vec<u8>,
    key: rsa::pkcs1v15::SigningKey<rsa::sha2::Sha256>,
}

impl WeakRsa {
    fn new() -> WeakRsa {
        use rsa::pkcs1::EncodeRsaPublicKey;
        use rsa::pkcs8::DecodePrivateKey;
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(WEAK_RSA_KEY).expect("RSA key PEM");
        let public = key
            .to_public_key()
            .to_pkcs1_der()
            .expect("RSA public key DER")
            .as_bytes()
            .to_vec();
        WeakRsa {
            public,
            key: rsa::pkcs1v15::SigningKey::new(key),
        }
    }
}

impl PublicKeyData for WeakRsa {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_RSA_SHA256
    }
}

impl SigningKey for WeakRsa {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let ok = offered.contains(&SignatureScheme::RSA_PKCS1_SHA256);
        ok.then(|| Box::new(self.clone()) as Box<dyn Signer>)
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::RSA
    }
}

impl Signer for WeakRsa {
    /// RSASSA-PKCS1-v1_5 with SHA-256: the only RSA scheme TLS 1.2 allows
    /// without PSS, which is why this server speaks TLS 1.2 only.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        use rsa::signature::{SignatureEncoding, Signer as _};
        Ok(self.key.sign(message).to_vec())
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::RSA_PKCS1_SHA256
    }
}
