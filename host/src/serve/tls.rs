//! HTTPS for `wscan serve` (`--tls-cert`, `--tls-key`), on rustls: a
//! listener that completes each TLS handshake in a task of its own, so a
//! client that connects and stalls holds up no other; handshakes in
//! progress are capped overall and per peer address.

use axum::serve::Listener;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client has to complete its handshake.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// Handshakes in progress at once; more connections wait to be accepted.
const HANDSHAKES: usize = 256;

/// Handshakes in progress from one address; more from it are closed at
/// once, so that one source cannot hold every handshake slot.
const HANDSHAKES_PER_PEER: usize = 16;

/// Handshakes in progress by peer address.
#[derive(Default)]
struct Peers(std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>);

impl Peers {
    /// Count one more handshake from `ip`, unless it has its fill.
    fn enter(self: &Arc<Self>, ip: std::net::IpAddr) -> Option<PeerSlot> {
        let mut peers = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = peers.entry(ip).or_default();
        if *count >= HANDSHAKES_PER_PEER {
            return None;
        }
        *count += 1;
        Some(PeerSlot(self.clone(), ip))
    }
}

/// One handshake counted for its peer until dropped.
struct PeerSlot(Arc<Peers>, std::net::IpAddr);

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut peers = self.0.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = peers.get_mut(&self.1) {
            *count -= 1;
            if *count == 0 {
                peers.remove(&self.1);
            }
        }
    }
}

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The certificate file holds no usable certificate.
    #[error("--tls-cert {path}: {reason} (give a PEM file: the certificate first, then its chain)")]
    Cert {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key file holds no usable private key.
    #[error("--tls-key {path}: {reason} (give the certificate's private key as a PEM file)")]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key does not go with the certificate, or rustls refused them.
    #[error("--tls-cert and --tls-key: {0}")]
    Pair(rustls::Error),
}

/// The server's TLS settings from a PEM certificate chain and its key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let cert_error = |reason: String| TlsSetupError::Cert {
        path: cert.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error("no certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsSetupError::Key {
        path: key.to_path_buf(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Pair)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsSetupError::Pair)?;
    // The API speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TCP listener whose connections come out TLS-terminated.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl TlsListener {
    /// Accept on `listener`, handshaking with `config`.
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        let accepting = tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(HANDSHAKES));
            let peers = Arc::new(Peers::default());
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors, most likely: wait, as axum's
                        // own TCP listener does.
                        tracing::warn!("cannot accept a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Some(peer_slot) = peers.enter(peer.ip()) else {
                    tracing::debug!("{peer}: too many handshakes from it at once; closed");
                    continue;
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let _slots = (slot, peer_slot);
                    match tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!("TLS handshake with {peer} failed: {e}"),
                        Err(_) => tracing::debug!("TLS handshake with {peer} timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            ready,
            local,
            accepting,
        })
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task ended: nothing will come again.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
