//! A service-name guess from the port number and the banner, in nmap's
//! vocabulary. The banner wins when it is conclusive.

/// Guess the service on `port` from what it sent first.
pub fn guess(port: u16, banner: Option<&str>) -> Option<&'static str> {
    banner.and_then(from_banner).or_else(|| from_port(port))
}

fn from_banner(banner: &str) -> Option<&'static str> {
    let b = banner.trim_start();
    let lower = b.to_ascii_lowercase();
    if b.starts_with("SSH-") {
        Some("ssh")
    } else if b.starts_with("HTTP/") {
        Some("http")
    } else if b.starts_with("+OK") {
        Some("pop3")
    } else if b.starts_with("* OK") || b.starts_with("* PREAUTH") {
        Some("imap")
    } else if b.starts_with("220") && (lower.contains("smtp") || lower.contains("esmtp")) {
        Some("smtp")
    } else if b.starts_with("220") && lower.contains("ftp") {
        Some("ftp")
    } else if lower.starts_with("-err") && lower.contains("redis") || b.starts_with("-NOAUTH") {
        Some("redis")
    } else if lower.contains("mysql") || lower.contains("mariadb") {
        Some("mysql")
    } else if b.starts_with("RFB ") {
        Some("vnc")
    } else {
        None
    }
}

/// The well-known ports, as nmap names them.
fn from_port(port: u16) -> Option<&'static str> {
    Some(match port {
        21 => "ftp",
        22 => "ssh",
        23 => "telnet",
        25 | 587 => "smtp",
        53 => "domain",
        80 | 8000 | 8008 | 8080 | 8081 | 8888 => "http",
        110 => "pop3",
        111 => "rpcbind",
        135 => "msrpc",
        139 => "netbios-ssn",
        143 => "imap",
        389 => "ldap",
        443 | 8443 => "https",
        445 => "microsoft-ds",
        465 => "smtps",
        993 => "imaps",
        995 => "pop3s",
        1433 => "ms-sql-s",
        1521 => "oracle",
        2049 => "nfs",
        3306 => "mysql",
        3389 => "ms-wbt-server",
        5432 => "postgresql",
        5900 => "vnc",
        6379 => "redis",
        9200 => "elasticsearch",
        11211 => "memcache",
        27017 => "mongodb",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::guess;

    #[test]
    fn banner_beats_port_number() {
        assert_eq!(guess(80, Some("SSH-2.0-OpenSSH_9.2")), Some("ssh"));
        assert_eq!(
            guess(2121, Some("220 ProFTPD Server (ftp) ready")),
            Some("ftp")
        );
    }

    #[test]
    fn port_number_when_banner_says_nothing() {
        assert_eq!(guess(443, None), Some("https"));
        assert_eq!(guess(22, Some("garbage")), Some("ssh"));
        assert_eq!(guess(40000, None), None);
    }
}
