//! The http primitive and plugin, and the whole pipeline (dns, port, http,
//! tls) from one host name, against servers the test starts on loopback.

use crate::dns_server::DnsServer;
use crate::http_server::{HttpServer, TITLE};
use crate::support::*;
use crate::tls_server::{Cert, TestCa, TlsServer};
use serde_json::Value;
use std::process::Output;
use std::time::Duration;

fn on_port<'a>(records: &'a [Value], kind: &str, port: u16) -> Vec<&'a Value> {
    findings(records, kind)
        .into_iter()
        .filter(|f| f["subject"]["port"] == port)
        .collect()
}

/// `wscan scan www.wscan.test` against `dns`, on `ports`, plus `extra`.
fn scan(dns: &DnsServer, ports: &[u16], extra: &[&str]) -> Output {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let mut cmd = wscan();
    cmd.args(["scan", "www.wscan.test", "--format", "jsonl"]);
    cmd.args([
        "--resolver",
        &dns.addr().to_string(),
        "-p",
        &ports.join(","),
    ]);
    cmd.args(extra);
    run(cmd, Duration::from_secs(90))
}

#[test]
fn one_name_yields_records_ports_pages_and_certificates() {
    let dns = DnsServer::start();
    let web = HttpServer::start();
    let tls = TlsServer::start(Cert::Valid);
    let ca = TestCa::get().pem_path().to_str().unwrap().to_string();
    let out = scan(&dns, &[web.port(), tls.port()], &["--ca-file", &ca]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = records(&out);
    assert!(errors(&records).is_empty(), "{records:#?}");

    let dns_records = findings(&records, "dns-record");
    assert!(
        dns_records
            .iter()
            .any(|f| f["data"]["type"] == "A" && f["data"]["value"] == "127.0.0.1"),
        "{records:#?}"
    );
    // Both ports found open on 127.0.0.1, identified by probing.
    assert_eq!(on_port(&records, "open-port", web.port()).len(), 1);
    assert_eq!(
        on_port(&records, "service", web.port())[0]["subject"]["service"],
        "http"
    );
    assert_eq!(
        on_port(&records, "service", tls.port())[0]["subject"]["service"],
        "https"
    );

    let page = on_port(&records, "http-response", web.port());
    assert_eq!(page.len(), 1, "{records:#?}");
    let page = page[0];
    let url = format!("http://www.wscan.test:{}/", web.port());
    assert_eq!(page["title"], format!("200 {url} [{TITLE}]"));
    assert_eq!(page["subject"]["host"], "www.wscan.test");
    let data = &page["data"];
    assert_eq!(data["url"], url);
    assert_eq!(data["final_url"], url);
    assert_eq!(data["status"], 200);
    assert_eq!(data["title"], TITLE);
    assert_eq!(data["server"], "nginx/1.25.3");
    assert_eq!(data["content_type"], "text/html; charset=utf-8");
    assert_eq!(data["content_length"], 86);
    assert_eq!(data["redirects"], 0);
    assert_eq!(data["remote"]["address"], "127.0.0.1");
    assert_eq!(data["remote"]["port"], web.port());
    assert_eq!(
        data["technologies"],
        serde_json::json!(["nginx 1.25.3", "PHP 8.3.0", "PHP"])
    );
    // The request went to the resolved address with the name in Host.
    assert!(
        web.requests()
            .contains(&(format!("www.wscan.test:{}", web.port()), "/".to_string())),
        "{:?}",
        web.requests()
    );

    // The TLS port: its page over https, and its certificate.
    let secure = on_port(&records, "http-response", tls.port());
    assert_eq!(secure.len(), 1, "{records:#?}");
    assert_eq!(secure[0]["data"]["title"], "TLS test page");
    assert_eq!(
        secure[0]["data"]["url"],
        format!("https://www.wscan.test:{}/", tls.port())
    );
    let cert = on_port(&records, "tls-certificate", tls.port());
    assert_eq!(cert.len(), 1, "{records:#?}");
    assert_eq!(cert[0]["data"]["verdict"], "valid");
    assert_eq!(
        cert[0]["data"]["chain"][0]["sans"],
        serde_json::json!(["www.wscan.test", "127.0.0.1"])
    );
}

#[test]
fn redirects_are_followed_in_scope() {
    let dns = DnsServer::start();
    let web = HttpServer::start();
    let out = scan(
        &dns,
        &[web.port()],
        &[
            "--plugins",
            "dns,port,http",
            "--plugin-arg",
            "http.path=/old",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = records(&out);
    let page = &on_port(&records, "http-response", web.port())[0]["data"];
    let base = format!("http://www.wscan.test:{}", web.port());
    assert_eq!(page["url"], format!("{base}/old"));
    assert_eq!(page["final_url"], format!("{base}/"));
    assert_eq!(page["status"], 200);
    assert_eq!(page["location"], "/");
    assert_eq!(page["redirects"], 1);
    assert_eq!(page["chain"][0]["status"], 301);
    assert_eq!(page["title"], TITLE);
}

#[test]
fn pages_and_favicons_carry_the_hashes_other_tools_key_on() {
    // The reference values are Python's: hashlib.sha256 of the page, and
    // mmh3.hash(codecs.encode(icon, "base64")) of the icon, as Shodan's
    // http.favicon.hash and httpx compute it.
    let dns = DnsServer::start();
    let web = HttpServer::start();
    let out = scan(
        &dns,
        &[web.port()],
        &[
            "--plugins",
            "dns,port,http",
            "--plugin-arg",
            "http.favicon=true",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let found = records(&out);
    let page = &on_port(&found, "http-response", web.port())[0]["data"];
    assert_eq!(
        page["body_sha256"],
        "0a3e104c750283a8dfc7156f5bf36add697285992692ff3aefc425f5b0fe28dd"
    );
    let icon = &page["favicon"];
    let base = format!("http://www.wscan.test:{}", web.port());
    assert_eq!(icon["url"], format!("{base}/favicon.ico"));
    assert_eq!(icon["size"], 768);
    assert_eq!(icon["mmh3"], 1_836_528_006);
    assert_eq!(
        icon["sha256"],
        "f3a25aa93aa2fbba28d79260535bbd6a5eb0fc1c24a8b0f04e12b484c1dfe363"
    );

    // Not asked for, no icon is fetched.
    let web = HttpServer::start();
    let out = scan(&dns, &[web.port()], &["--plugins", "dns,port,http"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plain = records(&out);
    let page = &on_port(&plain, "http-response", web.port())[0]["data"];
    assert!(page["favicon"].is_null(), "{page:#?}");
    assert!(
        web.requests()
            .iter()
            .all(|(_, path)| path != "/favicon.ico"),
        "{:?}",
        web.requests()
    );
}

#[test]
fn redirects_out_of_scope_are_reported_and_not_followed() {
    let dns = DnsServer::start();
    let web = HttpServer::start();
    // Something listens on 127.0.0.2 at the same port; nothing may reach it.
    let outside = std::net::TcpListener::bind(("127.0.0.2", web.port())).expect("bind 127.0.0.2");
    outside.set_nonblocking(true).unwrap();
    for path in ["/away", "/away-ip"] {
        let out = scan(
            &dns,
            &[web.port()],
            &[
                "--plugins",
                "dns,port,http",
                "--plugin-arg",
                &format!("http.path={path}"),
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let records = records(&out);
        let away = on_port(&records, "http-redirect-out-of-scope", web.port());
        assert_eq!(away.len(), 1, "{path}: {records:#?}");
        let page = &on_port(&records, "http-response", web.port())[0]["data"];
        assert_eq!(page["status"], 302, "{path}");
        assert_eq!(page["redirects"], 0, "{path}");
        let expected = match path {
            "/away" => "http://outside.wscan.test/".to_string(),
            _ => format!("http://127.0.0.2:{}/", web.port()),
        };
        assert_eq!(away[0]["data"]["location"], expected);
    }
    assert!(
        matches!(outside.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a connection reached 127.0.0.2"
    );
    let asked: Vec<String> = dns.queries().into_iter().map(|(n, _)| n).collect();
    assert!(
        !asked.iter().any(|n| n.starts_with("outside.")),
        "the out-of-scope name was resolved: {asked:?}"
    );
}

#[test]
fn plugin_run_gets_one_page_by_address() {
    let web = HttpServer::start();
    let mut cmd = wscan();
    cmd.args(["plugin", "run", "http", "--format", "jsonl"]);
    cmd.args(["--subject", &format!("127.0.0.1:{}", web.port())]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = records(&out);
    let page = &findings(&records, "http-response")[0];
    assert_eq!(page["data"]["title"], TITLE);
    assert_eq!(
        page["data"]["url"],
        format!("http://127.0.0.1:{}/", web.port())
    );
    assert!(
        web.requests()
            .contains(&(format!("127.0.0.1:{}", web.port()), "/".to_string())),
        "{:?}",
        web.requests()
    );
}

#[test]
fn a_slow_body_keeps_the_status_headers_and_title_that_arrived() {
    // 100 MB announced, a byte a second: the request times out in the body.
    let slow = Listener::start(Behaviour::SlowBody);
    let mut cmd = wscan();
    cmd.args([
        "plugin",
        "run",
        "http",
        "--format",
        "jsonl",
        "--timeout",
        "2s",
    ]);
    cmd.args(["--subject", &format!("127.0.0.1:{}", slow.port())]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = records(&out);
    assert!(errors(&records).is_empty(), "{records:#?}");
    let page = &findings(&records, "http-response")[0];
    assert_eq!(page["data"]["status"], 200, "{page}");
    assert_eq!(page["data"]["title"], "slow page", "{page}");
    assert_eq!(page["data"]["body_truncated"], true, "{page}");
}
