//! An in-process web site for the HTTP tests (axum), on its own tokio
//! runtime in a background thread, as `dns_server` does.
//!
//! Pages: `/` (a titled page with server and framework headers), `/old`
//! (301 to `/`), `/away` (302 to a name outside the test zone's scope),
//! `/away-ip` (302 to 127.0.0.2 on the same port, outside the scope),
//! `/favicon.ico` ([`favicon`]).

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use tokio::sync::oneshot;

/// The title of `/`.
pub const TITLE: &str = "wscan test site";

/// The bytes of `/favicon.ico`: 0 to 255, three times.
pub fn favicon() -> Vec<u8> {
    (0..3).flat_map(|_| 0..=255u8).collect()
}

/// Requests seen: (Host header, path).
type Log = Arc<Mutex<Vec<(String, String)>>>;

/// A web site on 127.0.0.1 (ephemeral port) that serves until dropped.
pub struct HttpServer {
    addr: SocketAddr,
    log: Log,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Start the site; it is listening when this returns.
    pub fn start() -> HttpServer {
        let log: Log = Arc::default();
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready, bound) = std::sync::mpsc::channel();
        let state = log.clone();
        let thread = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                // A large backlog: a scanner connects many times at once.
                let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                socket.set_reuseaddr(true).expect("reuseaddr");
                socket.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
                let listener = socket.listen(4096).expect("listen");
                let addr = listener.local_addr().expect("addr");
                ready.send(addr).expect("report address");
                let app = Router::new()
                    .fallback(page)
                    .with_state((state, addr.port()));
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("serve");
            });
        });
        let addr = bound.recv().expect("server address");
        HttpServer {
            addr,
            log,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request so far: (Host header, path).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn page(State((log, port)): State<(Log, u16)>, request: Request) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let path = request.uri().path().to_string();
    log.lock().unwrap().push((host, path.clone()));
    let redirect = |status: StatusCode, to: String| {
        let mut headers = HeaderMap::new();
        headers.insert(header::LOCATION, HeaderValue::from_str(&to).unwrap());
        (status, headers, "").into_response()
    };
    match path.as_str() {
        "/" => {
            let mut headers = HeaderMap::new();
            headers.insert(header::SERVER, HeaderValue::from_static("nginx/1.25.3"));
            headers.insert("x-powered-by", HeaderValue::from_static("PHP/8.3.0"));
            headers.insert(
                header::SET_COOKIE,
                HeaderValue::from_static("PHPSESSID=abc123; path=/"),
            );
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            let body = format!(
                "<!doctype html><html><head><title>{TITLE}</title></head><body>hi</body></html>"
            );
            (StatusCode::OK, headers, body).into_response()
        }
        "/favicon.ico" => {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("image/x-icon"),
            );
            (StatusCode::OK, headers, favicon()).into_response()
        }
        "/old" => redirect(StatusCode::MOVED_PERMANENTLY, "/".into()),
        "/away" => redirect(StatusCode::FOUND, "http://outside.wscan.test/".into()),
        "/away-ip" => redirect(StatusCode::FOUND, format!("http://127.0.0.2:{port}/")),
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
