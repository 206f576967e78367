//! wscan's built-in `tls` plugin: a TLS handshake with each service that
//! looks like TLS, a `tls-certificate` finding with the chain, and a finding
//! with its own severity for each fault: expired, expiring soon, not yet
//! valid, self-signed, unknown issuer, name mismatch, weak RSA key. The
//! certificate's other names and addresses are emitted as subjects: the
//! scan examines those in scope and reports the others.

mod time;

use wscan_sdk::prelude::*;
use wscan_sdk::serde_json::{Value, json};
use wscan_sdk::tls::{CertProblem, Certificate, HandshakeInfo, HandshakeOptions};

struct Tls;

/// Ports where TLS is the norm (HTTPS, the implicit-TLS mail, directory,
/// file and chat ports, Kubernetes, SIP over TLS, DNS over TLS).
const TLS_PORTS: &[u16] = &[
    443, 465, 563, 636, 853, 989, 990, 992, 993, 994, 995, 2376, 5061, 6443, 6697, 8443, 9443,
];
/// Service names (nmap's vocabulary) that mean TLS.
const TLS_SERVICES: &[&str] = &[
    "https",
    "ssl",
    "tls",
    "smtps",
    "imaps",
    "pop3s",
    "ldaps",
    "ftps",
    "ircs",
    "https-alt",
];
const DAY: i64 = 86_400;

impl Plugin for Tls {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "tls",
            env!("CARGO_PKG_VERSION"),
            "TLS handshake with each TLS service: the certificate chain, and a finding per fault",
        )
        .consumes(
            SubjectFilter::services()
                .ports(TLS_PORTS)
                .service_names(TLS_SERVICES),
        )
        .capability(Capability::Tls)
        .arg(
            ArgInfo::integer(
                "expiry-days",
                "report certificates that expire within this many days",
                0..=3650,
            )
            .default(30),
        )
        .arg(
            ArgInfo::integer(
                "min-rsa-bits",
                "report RSA keys shorter than this",
                0..=16384,
            )
            .default(2048),
        )
    }

    async fn scan(subject: Subject, options: ScanOptions) -> Result<(), Error> {
        let Subject::Service(service) = &subject else {
            return Err("the tls plugin consumes services only".into());
        };
        // Checked and defaulted by the host; the fallbacks serve an older one.
        let expiry_days: i64 = options.integer("expiry-days").unwrap_or(30);
        let min_rsa_bits: u32 = options.integer("min-rsa-bits").unwrap_or(2048);
        let ip = wscan_sdk::to_ip(service.address);
        let mut handshake = HandshakeOptions::new().alpn(&["h2", "http/1.1"]);
        if let Some(host) = &service.host {
            handshake = handshake.server_name(host.clone());
        }
        let info = tls::handshake(ip, service.port, &handshake)
            .await
            .map_err(|e| {
                format!(
                    "TLS handshake with {ip} port {}: {}",
                    service.port,
                    e.message()
                )
            })?;
        let Some(leaf) = info.chain.first() else {
            return Err("the server completed a handshake without a certificate".into());
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);

        let name = service.host.clone().unwrap_or_else(|| ip.to_string());
        let verdict = if info.problems.is_empty() {
            "valid".to_string()
        } else {
            info.problems
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let title = format!(
            "TLS certificate {} for {name}: {verdict}",
            common_name(&leaf.subject)
        );
        let data = certificate_data(&info, service.host.as_deref(), now);
        let finding = |kind: &str, severity: Severity, title: String, extra: Value| {
            let mut data = json!({
                "port": service.port,
                "server_name": service.host,
                "subject": leaf.subject,
                "sha256": leaf.sha256,
            });
            if let (Value::Object(base), Value::Object(more)) = (&mut data, extra) {
                base.extend(more);
            }
            report::finding(Finding::new(kind, severity, title, subject.clone()).data(data))
                .context("report")
        };
        report::finding(
            Finding::new("tls-certificate", Severity::Info, title, subject.clone()).data(data),
        )
        .context("report")?;

        let days_left = (leaf.not_after - now).div_euclid(DAY);
        for problem in &info.problems {
            let (kind, severity, title) = match problem {
                CertProblem::Expired => (
                    "tls-expired",
                    Severity::High,
                    format!(
                        "TLS certificate for {name} expired {}",
                        time::date(leaf.not_after)
                    ),
                ),
                CertProblem::NotYetValid => (
                    "tls-not-yet-valid",
                    Severity::Medium,
                    format!(
                        "TLS certificate for {name} is valid only from {}",
                        time::date(leaf.not_before)
                    ),
                ),
                CertProblem::SelfSigned => (
                    "tls-self-signed",
                    Severity::Medium,
                    format!("self-signed TLS certificate for {name}"),
                ),
                CertProblem::UnknownIssuer => (
                    "tls-unknown-issuer",
                    Severity::Medium,
                    format!(
                        "TLS certificate for {name} from an untrusted issuer: {}",
                        leaf.issuer
                    ),
                ),
                // Without a host name the certificate was judged against the
                // bare address, which few certificates name: not a fault of
                // the server.
                CertProblem::NameMismatch if service.host.is_none() => continue,
                CertProblem::NameMismatch => (
                    "tls-name-mismatch",
                    Severity::Medium,
                    format!(
                        "TLS certificate is not valid for {name} (it names {})",
                        leaf.sans.join(", ")
                    ),
                ),
                CertProblem::Invalid => (
                    "tls-invalid",
                    Severity::Medium,
                    format!("unusable TLS certificate for {name}"),
                ),
            };
            finding(kind, severity, title, json!({"problem": problem.as_str()}))?;
        }
        if (0..expiry_days).contains(&days_left) {
            finding(
                "tls-expiring",
                Severity::Medium,
                format!(
                    "TLS certificate for {name} expires in {days_left} day(s), {}",
                    time::date(leaf.not_after)
                ),
                json!({"days_left": days_left, "not_after": time::date(leaf.not_after)}),
            )?;
        }
        if leaf.key_type == "rsa" && leaf.key_bits < min_rsa_bits {
            finding(
                "tls-weak-key",
                Severity::Medium,
                format!(
                    "TLS certificate for {name} has a {}-bit RSA key",
                    leaf.key_bits
                ),
                json!({"key_type": leaf.key_type, "key_bits": leaf.key_bits}),
            )?;
        }
        emit_sans(&leaf.sans, service.host.as_deref(), ip)
    }
}

/// Hand the names and addresses the certificate vouches for to the scan:
/// in scope, other plugins look at them (a name the scan already knows is
/// not started again); outside it, the scan reports them and goes no
/// further. Wildcards name no host and are left in the finding only.
fn emit_sans(sans: &[String], host: Option<&str>, ip: std::net::IpAddr) -> Result<(), Error> {
    for san in sans {
        let subject = match san.parse::<std::net::IpAddr>() {
            Ok(addr) if addr == ip => continue,
            Ok(addr) => Subject::address(addr, None),
            Err(_) if san.starts_with("*.") => continue,
            Err(_) if host.is_some_and(|h| h.eq_ignore_ascii_case(san)) => continue,
            Err(_) => Subject::Host(san.to_ascii_lowercase()),
        };
        report::subject(subject).context(format_args!("emit {san}"))?;
    }
    Ok(())
}

/// The CN of a distinguished name, or the whole name when it has none.
fn common_name(dn: &str) -> String {
    dn.split(", ")
        .find_map(|part| part.strip_prefix("CN="))
        .unwrap_or(dn)
        .to_string()
}

fn certificate_json(cert: &Certificate) -> Value {
    json!({
        "subject": cert.subject,
        "issuer": cert.issuer,
        "sans": cert.sans,
        "not_before": time::date(cert.not_before),
        "not_after": time::date(cert.not_after),
        "serial": cert.serial,
        "key_type": cert.key_type,
        "key_bits": cert.key_bits,
        "signature_algorithm": cert.signature_algorithm,
        "sha256": cert.sha256,
        "spki_sha256": spki_sha256(&cert.der),
    })
}

/// SHA-256 of the certificate's SubjectPublicKeyInfo (DER), lowercase hex:
/// the key's own fingerprint (HPKP pins, Censys's and crt.sh's
/// `spki_sha256`), the same across the certificates a key was reissued in.
/// `None` if the DER does not parse.
fn spki_sha256(der: &[u8]) -> Option<String> {
    use sha2::Digest;
    use x509_cert::der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let spki = cert.tbs_certificate.subject_public_key_info.to_der().ok()?;
    Some(
        sha2::Sha256::digest(&spki)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

fn certificate_data(info: &HandshakeInfo, server_name: Option<&str>, now: i64) -> Value {
    let leaf = &info.chain[0];
    json!({
        "server_name": server_name,
        "version": info.version,
        "cipher_suite": info.cipher_suite,
        "alpn": info.alpn,
        "verdict": if info.problems.is_empty() { "valid" } else { "invalid" },
        "problems": info.problems.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        "days_left": (leaf.not_after - now).div_euclid(DAY),
        "chain": info.chain.iter().map(certificate_json).collect::<Vec<_>>(),
    })
}

wscan_sdk::export_plugin!(Tls);
