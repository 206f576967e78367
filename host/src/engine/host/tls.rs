//! Glue: the generated `tls` host traits over [`crate::primitives::tls`].

use super::pending::{Pending, take};
use crate::engine::bindings::ErrorCode;
use crate::engine::bindings::wscan::plugin::tls as wit;
use crate::engine::bindings::wscan::plugin::types::IpAddress;
use crate::engine::convert::to_ip;
use crate::engine::state::HostState;
use crate::engine::tape;
use crate::model::Capability;
use crate::primitives::tls::core::{CertInfo, Handshake, HandshakeRequest, Problem, TlsError};
use std::net::SocketAddr;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynPollable, subscribe};

/// The `future-handshake` resource.
pub type FutureHandshake = Pending<Result<Handshake, ErrorCode>>;

impl From<TlsError> for ErrorCode {
    fn from(e: TlsError) -> Self {
        match e {
            TlsError::Net(net) => net.into(),
            TlsError::Handshake(why) => ErrorCode::TlsFailure(why),
            TlsError::InvalidName(why) => ErrorCode::InvalidArgument(why),
        }
    }
}

impl From<Problem> for wit::CertProblem {
    fn from(p: Problem) -> Self {
        match p {
            Problem::Expired => wit::CertProblem::Expired,
            Problem::NotYetValid => wit::CertProblem::NotYetValid,
            Problem::SelfSigned => wit::CertProblem::SelfSigned,
            Problem::UnknownIssuer => wit::CertProblem::UnknownIssuer,
            Problem::NameMismatch => wit::CertProblem::NameMismatch,
            Problem::Invalid => wit::CertProblem::Invalid,
        }
    }
}

impl From<CertInfo> for wit::Certificate {
    fn from(c: CertInfo) -> Self {
        wit::Certificate {
            subject: c.subject,
            issuer: c.issuer,
            sans: c.sans,
            not_before: c.not_before,
            not_after: c.not_after,
            serial: c.serial,
            key_type: c.key_type,
            key_bits: c.key_bits,
            signature_algorithm: c.signature_algorithm,
            sha256: c.sha256,
            der: c.der,
        }
    }
}

impl From<Handshake> for wit::HandshakeInfo {
    fn from(h: Handshake) -> Self {
        wit::HandshakeInfo {
            version: h.version,
            cipher_suite: h.cipher_suite,
            alpn: h.alpn,
            chain: h.chain.into_iter().map(Into::into).collect(),
            problems: h.problems.into_iter().map(Into::into).collect(),
        }
    }
}

impl wit::Host for HostState {
    async fn handshake(
        &mut self,
        address: IpAddress,
        port: u16,
        options: wit::HandshakeOptions,
    ) -> wasmtime::Result<Resource<FutureHandshake>> {
        let addr = SocketAddr::new(to_ip(address), port);
        let timeout = self.call.timeout(options.timeout_ms);
        let pending = if port == 0 {
            Pending::ready(Err(ErrorCode::InvalidArgument("port 0".into())))
        } else {
            match self.call.authorize(Capability::Tls, addr.ip()) {
                Err(code) => Pending::ready(Err(code)),
                Ok(scan) => {
                    let (tls, tcp) = (scan.tls.clone(), scan.tcp.clone());
                    let request = HandshakeRequest {
                        addr,
                        server_name: options.server_name,
                        alpn: options.alpn,
                        timeout,
                    };
                    let sni = request.server_name.as_deref().unwrap_or("-");
                    let call = format!(
                        "tls.handshake {addr} sni={sni} alpn={}",
                        request.alpn.join(",")
                    );
                    Pending::spawn(tape::wrap(
                        scan.tape.as_ref(),
                        move || call,
                        None,
                        async move { tls.handshake(&tcp, request).await.map_err(ErrorCode::from) },
                    ))
                }
            }
        };
        self.push(pending)
    }
}

impl wit::HostFutureHandshake for HostState {
    async fn subscribe(
        &mut self,
        this: Resource<FutureHandshake>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        subscribe(&mut self.table, this)
    }

    async fn get(
        &mut self,
        this: Resource<FutureHandshake>,
    ) -> wasmtime::Result<Option<Result<wit::HandshakeInfo, ErrorCode>>> {
        Ok(take(self.table.get_mut(&this)?).map(|r| r.map(Into::into)))
    }

    async fn drop(&mut self, this: Resource<FutureHandshake>) -> wasmtime::Result<()> {
        self.delete(this)?;
        Ok(())
    }
}
