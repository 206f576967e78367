//! Glue: the generated `http` host traits over [`crate::primitives::http`].

use super::pending::{Pending, take};
use crate::engine::bindings::ErrorCode;
use crate::engine::bindings::wscan::plugin::http as wit;
use crate::engine::convert::{from_ip, to_ip};
use crate::engine::state::HostState;
use crate::engine::tape;
use crate::model::Capability;
use crate::primitives::dns::{Chain, Kind};
use crate::primitives::http::core::{HttpError, HttpRequest, HttpResponse, MAX_BODY_BYTES};
use std::net::IpAddr;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynPollable, subscribe};

/// The `future-response` resource.
pub type FutureResponse = Pending<Result<HttpResponse, ErrorCode>>;

impl From<HttpError> for ErrorCode {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Net(net) => net.into(),
            HttpError::Tls(why) => ErrorCode::TlsFailure(why),
            HttpError::Protocol(why) => ErrorCode::HttpProtocol(why),
            HttpError::InvalidArgument(why) => ErrorCode::InvalidArgument(why),
        }
    }
}

impl From<HttpResponse> for wit::Response {
    fn from(r: HttpResponse) -> Self {
        wit::Response {
            status: r.status,
            headers: r.headers,
            body: r.body,
            body_truncated: r.truncated,
            remote: (from_ip(r.remote.ip()), r.remote.port()),
            elapsed_ms: u32::try_from(r.elapsed.as_millis()).unwrap_or(u32::MAX),
        }
    }
}

/// Where a request goes when the plugin names no address.
enum Destination {
    Address(IpAddr),
    /// A name to resolve through the scan's resolver (and cache).
    Name(String),
}

impl wit::Host for HostState {
    async fn send(&mut self, req: wit::Request) -> wasmtime::Result<Resource<FutureResponse>> {
        let invalid = |why: String| Pending::ready(Err(ErrorCode::InvalidArgument(why)));
        let method = reqwest::Method::from_bytes(req.method.as_bytes());
        let url = reqwest::Url::parse(&req.url);
        let pending = match (method, url) {
            (Err(_), _) => invalid(format!("bad method {:?}", req.method)),
            (_, Err(e)) => invalid(format!("bad URL {:?}: {e}", req.url)),
            (_, Ok(url)) if !matches!(url.scheme(), "http" | "https") => {
                invalid(format!("URL {:?} is not http or https", req.url))
            }
            (Ok(method), Ok(url)) => {
                let host = url
                    .host_str()
                    .unwrap_or("")
                    .trim_matches(['[', ']'])
                    .to_string();
                let destination = match req.connect_to {
                    Some(ip) => Destination::Address(to_ip(ip)),
                    None => match host.parse::<IpAddr>() {
                        // Canonical, as every address a plugin names: the
                        // scope and the per-host limits see one form.
                        Ok(ip) => Destination::Address(ip.to_canonical()),
                        Err(_) => Destination::Name(host.clone()),
                    },
                };
                let authorized = match &destination {
                    Destination::Address(ip) => self.call.authorize(Capability::Http, *ip),
                    Destination::Name(name) => self.call.authorize_name(Capability::Http, name),
                };
                match authorized {
                    Err(code) => Pending::ready(Err(code)),
                    Ok(scan) => {
                        let (http, tcp, dns, scope) = (
                            scan.http.clone(),
                            scan.tcp.clone(),
                            scan.dns.clone(),
                            scan.scope.clone(),
                        );
                        let timeout = self.call.timeout(req.timeout_ms);
                        let max_body = req
                            .max_body_bytes
                            .map_or(MAX_BODY_BYTES, |n| (n as usize).min(MAX_BODY_BYTES));
                        // In a recording: the method, URL and destination
                        // name the call; a body is what it sent.
                        let to = match &destination {
                            Destination::Address(ip) => ip.to_string(),
                            Destination::Name(name) => name.clone(),
                        };
                        let call = format!("http.send {method} {url} via {to}");
                        let sent = scan
                            .tape
                            .as_ref()
                            .and(req.body.as_deref())
                            .map(tape::bytes_json);
                        Pending::spawn(tape::wrap(
                            scan.tape.as_ref(),
                            move || call,
                            sent,
                            async move {
                                let connect_to = match destination {
                                    Destination::Address(ip) => ip,
                                    Destination::Name(name) => {
                                        let records = dns.lookup(&name, Kind::A).await?;
                                        let chain = Chain::of(&name, Kind::A, &records);
                                        scope.learn(&name, &chain.aliases, &chain.addresses);
                                        chain
                                            .addresses
                                            .into_iter()
                                            .find(|ip| scope.contains(*ip))
                                            .ok_or_else(|| {
                                            ErrorCode::AccessDenied(format!(
                                                "no address of {name} is in the scan's scope"
                                            ))
                                        })?
                                    }
                                };
                                let request = HttpRequest {
                                    method,
                                    url,
                                    headers: req.headers,
                                    body: req.body,
                                    connect_to,
                                    max_body,
                                    timeout,
                                    verify_tls: req.verify_tls,
                                };
                                http.send(&tcp, request).await.map_err(ErrorCode::from)
                            },
                        ))
                    }
                }
            }
        };
        self.push(pending)
    }
}

impl wit::HostFutureResponse for HostState {
    async fn subscribe(
        &mut self,
        this: Resource<FutureResponse>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        subscribe(&mut self.table, this)
    }

    async fn get(
        &mut self,
        this: Resource<FutureResponse>,
    ) -> wasmtime::Result<Option<Result<wit::Response, ErrorCode>>> {
        Ok(take(self.table.get_mut(&this)?).map(|r| r.map(Into::into)))
    }

    async fn drop(&mut self, this: Resource<FutureResponse>) -> wasmtime::Result<()> {
        self.delete(this)?;
        Ok(())
    }
}
