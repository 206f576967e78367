//! Service identification for silent ports on unknown numbers, as
//! `nmap -sV` and httpx do it: a TLS handshake first (TLS servers wait for
//! the client), then a plain HTTP request.

use std::net::IpAddr;
use wscan_sdk::prelude::*;
use wscan_sdk::tls::HandshakeOptions;

/// The service name learned, and whether it speaks TLS.
pub async fn probe(ip: IpAddr, port: u16, host: Option<&str>) -> (Option<&'static str>, bool) {
    let mut options = HandshakeOptions::new().alpn(&["h2", "http/1.1"]);
    if let Some(host) = host {
        options = options.server_name(host);
    }
    match tls::handshake(ip, port, &options).await {
        // A server that picked an HTTP protocol, or none (most HTTPS servers
        // that do not do ALPN), is taken for HTTPS: the http plugin finds
        // out for sure.
        Ok(info) => match info.alpn.as_deref() {
            Some("h2") | Some("http/1.1") | None => return (Some("https"), true),
            Some(_) => return (Some("ssl"), true),
        },
        Err(e) => log::debug(&format!("{ip}:{port}: not TLS: {}", e.message())),
    }
    (http(ip, port, host).await.then_some("http"), false)
}

/// Whether the port answers an HTTP request like an HTTP server.
async fn http(ip: IpAddr, port: u16, host: Option<&str>) -> bool {
    let Ok(connection) = tcp::connect(ip, port, None).await else {
        return false;
    };
    let host = match (host, ip) {
        (Some(name), _) => format!("{name}:{port}"),
        (None, IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
        (None, IpAddr::V4(v4)) => format!("{v4}:{port}"),
    };
    let request = format!("HEAD / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if connection.write(request.as_bytes(), None).await.is_err() {
        return false;
    }
    matches!(connection.read(16, None).await, Ok(bytes) if bytes.starts_with(b"HTTP/"))
}
