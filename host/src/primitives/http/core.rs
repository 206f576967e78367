//! HTTP on reqwest: requests pinned to the address the scan chose, with
//! the URL's name in `Host` and SNI, no redirects followed, the body capped.
//! Nothing here knows about wasmtime.

use crate::primitives::tcp::{NetError, TcpCore};
use crate::primitives::tls::TlsCore;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Responses bodies are cut here unless the request asks for less.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// One request, resolved: where it goes is fixed.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// `GET`, `HEAD`...
    pub method: reqwest::Method,
    /// Absolute http or https URL.
    pub url: reqwest::Url,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Option<Vec<u8>>,
    /// The address to connect to, whatever the URL's host.
    pub connect_to: IpAddr,
    /// Body bytes kept.
    pub max_body: usize,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Check the server's certificate.
    pub verify_tls: bool,
}

/// What came back.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Lowercase names, in order.
    pub headers: Vec<(String, String)>,
    /// Up to the cap.
    #[serde(with = "crate::primitives::bytes")]
    pub body: Vec<u8>,
    /// Whether the body went past the cap, or was cut short (timeout,
    /// broken connection) after the head arrived.
    pub truncated: bool,
    /// The address and port reached.
    pub remote: SocketAddr,
    /// Time to the end of the kept body.
    pub elapsed: Duration,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connecting failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The TLS handshake failed (with `verify_tls`, a bad certificate).
    #[error("TLS: {0}")]
    Tls(String),
    /// The peer did not speak HTTP.
    #[error("HTTP protocol: {0}")]
    Protocol(String),
    /// A malformed method, URL or header.
    #[error("{0}")]
    InvalidArgument(String),
}

/// Clients are kept per (URL host, address, verification): reqwest pins a
/// name to an address per client, and each keeps its own connection pool.
type ClientKey = (String, IpAddr, bool);

/// The scan's HTTP engine. Cheap to clone.
#[derive(Clone)]
pub struct HttpCore {
    tls: TlsCore,
    clients: Arc<Mutex<HashMap<ClientKey, reqwest::Client>>>,
}

impl std::fmt::Debug for HttpCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCore").finish_non_exhaustive()
    }
}

impl HttpCore {
    /// An HTTP engine whose TLS uses `tls`'s roots.
    pub fn new(tls: TlsCore) -> Self {
        HttpCore {
            tls,
            clients: Arc::default(),
        }
    }

    fn client(&self, host: &str, ip: IpAddr, verify: bool) -> Result<reqwest::Client, HttpError> {
        let key = (host.to_ascii_lowercase(), ip, verify);
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment would send the scan elsewhere.
            .no_proxy()
            .pool_max_idle_per_host(4)
            .tls_backend_preconfigured(self.tls.client_config(verify));
        if host.parse::<IpAddr>().is_err() {
            // The port is taken from the URL; only the address is pinned.
            builder = builder.resolve(host, SocketAddr::new(ip, 0));
        }
        let client = builder
            .build()
            .map_err(|e| HttpError::InvalidArgument(format!("HTTP client: {e}")))?;
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// Send `request`, within the scan's budget of operations in flight.
    pub async fn send(
        &self,
        tcp: &TcpCore,
        request: HttpRequest,
    ) -> Result<HttpResponse, HttpError> {
        let host = request
            .url
            .host_str()
            .ok_or_else(|| HttpError::InvalidArgument(format!("URL {} has no host", request.url)))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if let Ok(ip) = host.parse::<IpAddr>()
            && ip.to_canonical() != request.connect_to.to_canonical()
        {
            return Err(HttpError::InvalidArgument(format!(
                "URL {} names address {ip}, but the request is to {}",
                request.url, request.connect_to
            )));
        }
        let client = self.client(&host, request.connect_to, request.verify_tls)?;
        let _permit = tcp.permit(request.connect_to).await;
        let started = Instant::now();
        let mut builder = client
            .request(request.method.clone(), request.url.clone())
            .timeout(request.timeout);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let mut response = builder.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let remote = response.remote_addr().unwrap_or_else(|| {
            SocketAddr::new(
                request.connect_to,
                request.url.port_or_known_default().unwrap_or(0),
            )
        });
        let mut body = Vec::new();
        let mut truncated = false;
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                // The head arrived: a body cut short by the timeout or a
                // broken connection (a slow 100 MB body, a tarpit) keeps
                // what came, marked truncated, instead of losing the
                // status, headers and title with it.
                Err(e) => {
                    tracing::debug!("{}: body cut short: {}", request.url, classify(e));
                    truncated = true;
                    break;
                }
            };
            let room = request.max_body.saturating_sub(body.len());
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
            truncated,
            remote,
            elapsed: started.elapsed(),
        })
    }
}

/// The remote outcome behind a reqwest error, found by walking its causes.
fn classify(e: reqwest::Error) -> HttpError {
    if e.is_timeout() {
        return HttpError::Net(NetError::Timeout);
    }
    if e.is_builder() {
        return HttpError::InvalidArgument(e.to_string());
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    let mut words = e.to_string();
    while let Some(cause) = source {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return HttpError::Tls(tls.to_string());
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                return HttpError::Tls(tls.to_string());
            }
            let net = NetError::from(std::io::Error::new(io.kind(), io.to_string()));
            if !matches!(net, NetError::Other(_)) {
                return HttpError::Net(net);
            }
        }
        words = format!("{words}: {cause}");
        source = cause.source();
    }
    if e.is_connect() {
        HttpError::Net(NetError::Other(words))
    } else {
        HttpError::Protocol(words)
    }
}
