//! nmap's XML output (`-oX`), so the tools that import nmap scans
//! (Metasploit's `db_import`, Faraday, reNgine, python-libnmap, `ndiff`)
//! read wscan's. The document is valid against nmap's DTD (`nmap.dtd`).
//!
//! nmap writes one `<host>` per address with all its ports; wscan's
//! records of one address arrive from several plugins over the whole scan,
//! so the hosts are gathered and the document is written when the scan
//! ends (on Ctrl-C and SIGTERM too; after SIGKILL, `wscan scan --resume`
//! or `wscan results show` writes it again from the result store).
//!
//! How records map:
//! - an `open-port` finding on a service: `<port>` with `<state state="open">`
//!   and the service named from the port's number (`method="table"`);
//! - a `service` finding: the service's name as the plugin identified it
//!   (`method="probed"`, `tunnel="ssl"` over TLS) and its banner as the
//!   `banner` script's output, as nmap's banner.nse writes it;
//! - any other finding on a service: a `<script>` of that port whose `id` is
//!   the finding's kind, its `output` the title and its children the
//!   finding's data as NSE's structured output (`<elem>`, `<table>`);
//! - a finding on an address: a script of the host (`<hostscript>`);
//! - a finding on a host name without an address (nmap has no host without
//!   an address): a script of the run (`<postscript>`), named in its output;
//! - failed units and out-of-scope subjects are counted in the run's
//!   summary (`<finished summary=...>`); JSON Lines has them in full.

use super::{Change, ChangeRecord, FindingRecord, Record, RunInfo, Sink};
use quick_xml::Writer;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::name::QName;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// A script's result, as NSE writes one.
struct Script {
    id: String,
    output: String,
    data: serde_json::Map<String, Value>,
}

/// What is known of one open port.
#[derive(Default)]
struct Port {
    /// The service's name, and whether a plugin identified it (rather
    /// than the port's number naming it).
    service: Option<(String, bool)>,
    tls: bool,
    /// Open in the first scan of a diff, not in the second.
    closed: bool,
    scripts: Vec<Script>,
}

/// Everything found on one address.
#[derive(Default)]
struct Host {
    names: BTreeSet<String>,
    ports: BTreeMap<u16, Port>,
    scripts: Vec<Script>,
}

/// Gathers records by address and writes nmap's XML when finished.
pub struct NmapXmlSink<W: Write + Send> {
    out: W,
    run: RunInfo,
    hosts: BTreeMap<IpAddr, Host>,
    /// Findings on host names without an address.
    unaddressed: Vec<Script>,
    errors: u64,
    outside: u64,
}

impl<W: Write + Send> NmapXmlSink<W> {
    /// A sink writing the document to `out` when it is finished; `run`
    /// gives its command line and start time.
    pub fn new(out: W, run: RunInfo) -> Self {
        NmapXmlSink {
            out,
            run,
            hosts: BTreeMap::new(),
            unaddressed: Vec::new(),
            errors: 0,
            outside: 0,
        }
    }

    fn finding(&mut self, f: &FindingRecord) {
        let script = || Script {
            id: f.kind.clone(),
            output: match f.severity {
                crate::model::Severity::Info => f.title.clone(),
                severity => format!("[{severity}] {}", f.title),
            },
            data: f.data.clone(),
        };
        let Some(ip) = f.subject.address else {
            let mut script = script();
            let name = f.subject.host.as_deref().unwrap_or("-");
            script.output = format!("{name}: {}", script.output);
            self.unaddressed.push(script);
            return;
        };
        let host = self.hosts.entry(ip).or_default();
        if let Some(name) = &f.subject.host {
            host.names.insert(name.clone());
        }
        let Some(number) = f.subject.port else {
            host.scripts.push(script());
            return;
        };
        let port = host.ports.entry(number).or_default();
        port.tls |= f.subject.tls || f.data.get("tls") == Some(&Value::Bool(true));
        let named = f
            .data
            .get("service")
            .and_then(Value::as_str)
            .or(f.subject.service.as_deref());
        match f.kind.as_str() {
            "open-port" => {
                if let (None, Some(name)) = (&port.service, named) {
                    port.service = Some((name.to_string(), false));
                }
            }
            "service" => {
                if let Some(name) = named {
                    port.service = Some((name.to_string(), true));
                }
                if let Some(banner) = f.data.get("banner").and_then(Value::as_str) {
                    port.scripts.push(Script {
                        id: "banner".into(),
                        output: banner.to_string(),
                        data: serde_json::Map::new(),
                    });
                }
            }
            _ => port.scripts.push(script()),
        }
    }

    /// A diff's change: what appeared or changed as a finding of the
    /// second scan, its script output saying so; a port whose open-port
    /// finding disappeared is `closed` (as ndiff reads two nmap scans).
    fn change(&mut self, c: &ChangeRecord) {
        let mut f = c.finding();
        if c.change == Change::Disappeared
            && c.kind == "open-port"
            && let (Some(ip), Some(number)) = (f.subject.address, f.subject.port)
        {
            let host = self.hosts.entry(ip).or_default();
            host.ports.entry(number).or_default().closed = true;
            return;
        }
        f.title = match c.change {
            Change::Changed => format!("[changed: {}] {}", c.fields.join(", "), f.title),
            change => format!("[{change}] {}", f.title),
        };
        // An open-port or service finding that appeared or changed is the
        // port's state and name, as in a scan; say so in a script too.
        if matches!(c.kind.as_str(), "open-port" | "service") {
            self.finding(&f);
            f.kind = format!("wscan-{}", c.kind);
        }
        self.finding(&f);
    }

    fn document(&mut self) -> io::Result<()> {
        let run = &self.run;
        let started = unix(run.started);
        let ended = SystemTime::now();
        let mut xml = Writer::new_with_indent(&mut self.out, b' ', 1);
        xml.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        xml.get_mut().write_all(b"\n<!DOCTYPE nmaprun>")?;
        xml.write_event(Event::Comment(BytesText::from_escaped(format!(
            " written by wscan {} in the format of nmap -oX ",
            env!("CARGO_PKG_VERSION")
        ))))?;
        // The DTD allows no other scanner than nmap: `profile_name` says
        // who wrote the file.
        let mut summary = format!(
            "wscan done: {} host(s) with findings; {} failed unit(s), {} out-of-scope record(s) (in wscan's JSON Lines output)",
            self.hosts.len(),
            self.errors,
            self.outside
        );
        if !self.unaddressed.is_empty() {
            summary.push_str(&format!(
                "; {} finding(s) on names without an address are in <postscript>",
                self.unaddressed.len()
            ));
        }
        let hosts = self.hosts.len().to_string();
        xml.create_element("nmaprun")
            .with_attributes([
                ("scanner", "nmap"),
                ("profile_name", "wscan"),
                ("args", &run.args),
                ("start", &started.to_string()),
                (
                    "startstr",
                    &humantime::format_rfc3339_seconds(run.started).to_string(),
                ),
                ("version", env!("CARGO_PKG_VERSION")),
                ("xmloutputversion", "1.05"),
            ])
            .write_inner_content(|xml| {
                xml.create_element("verbose")
                    .with_attribute(("level", "0"))
                    .write_empty()?;
                xml.create_element("debugging")
                    .with_attribute(("level", "0"))
                    .write_empty()?;
                for (ip, host) in &self.hosts {
                    write_host(xml, ip, host)?;
                }
                if !self.unaddressed.is_empty() {
                    xml.create_element("postscript")
                        .write_inner_content(|xml| write_scripts(xml, &self.unaddressed))?;
                }
                xml.create_element("runstats").write_inner_content(|xml| {
                    let time = unix(ended).to_string();
                    let elapsed = format!(
                        "{:.2}",
                        ended
                            .duration_since(run.started)
                            .unwrap_or_default()
                            .as_secs_f64()
                    );
                    let timestr = humantime::format_rfc3339_seconds(ended).to_string();
                    xml.create_element("finished")
                        .with_attributes([
                            ("time", time.as_str()),
                            ("timestr", &timestr),
                            ("elapsed", &elapsed),
                            ("exit", "success"),
                        ])
                        .with_attribute(attribute("summary", &summary))
                        .write_empty()?;
                    xml.create_element("hosts")
                        .with_attributes([("up", hosts.as_str()), ("down", "0"), ("total", &hosts)])
                        .write_empty()?;
                    Ok(())
                })?;
                Ok(())
            })?;
        xml.get_mut().write_all(b"\n")?;
        self.out.flush()
    }
}

fn write_host<W: Write>(xml: &mut Writer<W>, ip: &IpAddr, host: &Host) -> io::Result<()> {
    xml.create_element("host").write_inner_content(|xml| {
        // Listed because something was found on it: it is up, as far as
        // any scan can tell, without a ping (nmap's -Pn says "user-set").
        xml.create_element("status")
            .with_attributes([("state", "up"), ("reason", "user-set"), ("reason_ttl", "0")])
            .write_empty()?;
        let kind = if ip.is_ipv4() { "ipv4" } else { "ipv6" };
        xml.create_element("address")
            .with_attributes([("addr", ip.to_string().as_str()), ("addrtype", kind)])
            .write_empty()?;
        if host.names.is_empty() {
            xml.create_element("hostnames").write_empty()?;
            return write_host_rest(xml, host);
        }
        xml.create_element("hostnames").write_inner_content(|xml| {
            for name in &host.names {
                xml.create_element("hostname")
                    .with_attribute(attribute("name", name))
                    .with_attribute(("type", "user"))
                    .write_empty()?;
            }
            Ok(())
        })?;
        write_host_rest(xml, host)
    })?;
    Ok(())
}

/// A host's ports and scripts, after its names.
fn write_host_rest<W: Write>(xml: &mut Writer<W>, host: &Host) -> io::Result<()> {
    if !host.ports.is_empty() {
        xml.create_element("ports").write_inner_content(|xml| {
            for (number, port) in &host.ports {
                write_port(xml, *number, port)?;
            }
            Ok(())
        })?;
    }
    if !host.scripts.is_empty() {
        xml.create_element("hostscript")
            .write_inner_content(|xml| write_scripts(xml, &host.scripts))?;
    }
    Ok(())
}

fn write_port<W: Write>(xml: &mut Writer<W>, number: u16, port: &Port) -> io::Result<()> {
    xml.create_element("port")
        .with_attributes([("protocol", "tcp"), ("portid", number.to_string().as_str())])
        .write_inner_content(|xml| {
            // A port is in the results because a connect to it succeeded
            // (or, in a diff, because it no longer does).
            let (state, reason) = match port.closed {
                false => ("open", "syn-ack"),
                true => ("closed", "conn-refused"),
            };
            xml.create_element("state")
                .with_attributes([("state", state), ("reason", reason), ("reason_ttl", "0")])
                .write_empty()?;
            if let Some((name, probed)) = &port.service {
                // nmap's confidence: 3 for a name from the port's number,
                // 10 for one the service's answer gave.
                let (method, conf) = if *probed {
                    ("probed", "10")
                } else {
                    ("table", "3")
                };
                let mut service = xml
                    .create_element("service")
                    .with_attribute(attribute("name", name))
                    .with_attributes([("method", method), ("conf", conf)]);
                if port.tls {
                    service = service.with_attribute(("tunnel", "ssl"));
                }
                service.write_empty()?;
            }
            write_scripts(xml, &port.scripts)
        })?;
    Ok(())
}

fn write_scripts<W: Write>(xml: &mut Writer<W>, scripts: &[Script]) -> io::Result<()> {
    for script in scripts {
        let element = xml
            .create_element("script")
            .with_attribute(attribute("id", &script.id))
            .with_attribute(attribute("output", &script.output));
        if script.data.is_empty() {
            element.write_empty()?;
        } else {
            element.write_inner_content(|xml| write_structured(xml, &script.data))?;
        }
    }
    Ok(())
}

/// A finding's data as NSE's structured output: a value is an `<elem>`,
/// an object or a list a `<table>` (list items without keys).
fn write_structured<W: Write>(
    xml: &mut Writer<W>,
    data: &serde_json::Map<String, Value>,
) -> io::Result<()> {
    for (key, value) in data {
        write_value(xml, Some(key), value)?;
    }
    Ok(())
}

fn write_value<W: Write>(xml: &mut Writer<W>, key: Option<&str>, value: &Value) -> io::Result<()> {
    let name = match value {
        Value::Object(_) | Value::Array(_) => "table",
        _ => "elem",
    };
    let mut element = xml.create_element(name);
    if let Some(key) = key {
        element = element.with_attribute(attribute("key", key));
    }
    match value {
        // NSE writes nothing for nil; an empty elem keeps the key.
        Value::Null => {
            element.write_empty()?;
        }
        Value::String(text) => {
            element.write_text_content(BytesText::new(&xml_chars(text)))?;
        }
        Value::Bool(_) | Value::Number(_) => {
            element.write_text_content(BytesText::new(&value.to_string()))?;
        }
        Value::Object(map) => {
            element.write_inner_content(|xml| write_structured(xml, map))?;
        }
        Value::Array(items) => {
            element.write_inner_content(|xml| {
                items
                    .iter()
                    .try_for_each(|item| write_value(xml, None, item))
            })?;
        }
    }
    Ok(())
}

/// `text` with the characters XML 1.0 cannot carry at all (control
/// characters other than tab, newline and carriage return) written as
/// `\xHH`, as nmap writes them.
fn xml_chars(text: &str) -> Cow<'_, str> {
    let bad = |c: char| matches!(c, '\0'..='\x08' | '\x0b' | '\x0c' | '\x0e'..='\x1f' | '\u{fffe}' | '\u{ffff}');
    if !text.contains(bad) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if bad(c) {
            out.push_str(&format!("\\x{:02x}", c as u32 & 0xff));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// An attribute whose value keeps its line breaks and tabs: quick-xml
/// escapes the markup characters (and carriage returns), and newlines and
/// tabs are written as character references too, since a parser turns a
/// literal one in an attribute into a space (nmap writes `&#xa;` in a
/// script's output the same way).
fn attribute<'a>(key: &'a str, value: &str) -> Attribute<'a> {
    let escaped = quick_xml::escape::escape(xml_chars(value).as_ref())
        .replace('\n', "&#xa;")
        .replace('\t', "&#x9;");
    Attribute {
        key: QName(key),
        value: Cow::Owned(escaped),
    }
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl<W: Write + Send> Sink for NmapXmlSink<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        match record {
            Record::Finding(f) => self.finding(f),
            Record::Change(c) => self.change(c),
            Record::Error(_) => self.errors += 1,
            Record::OutOfScope(_) => self.outside += 1,
            Record::Subject(_) => {}
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.document()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Finding, PluginId, Service, Severity, Subject};
    use serde_json::json;

    fn finding(kind: &str, port: Option<u16>, title: &str, data: Value) -> Record {
        let ip = "127.0.0.1".parse().unwrap();
        let subject = match port {
            Some(port) => Subject::Service(Service {
                ip,
                port,
                host: Some("www.test".into()),
                name: Some("http".into()),
                banner: None,
                tls: false,
            }),
            None => Subject::Address { ip, host: None },
        };
        Record::finding(
            &PluginId {
                name: "p".into(),
                version: "1".into(),
            },
            Finding {
                kind: kind.into(),
                severity: Severity::Info,
                title: title.into(),
                subject,
                data: data.as_object().unwrap().clone(),
            },
        )
    }

    #[test]
    fn ports_services_banners_and_scripts_go_where_nmap_puts_them() {
        let mut out = Vec::new();
        let mut sink = NmapXmlSink::new(
            &mut out,
            RunInfo {
                args: "wscan scan 127.0.0.1 -p 80".into(),
                started: SystemTime::now(),
            },
        );
        for record in [
            finding("open-port", Some(80), "open", json!({"service": "http"})),
            finding(
                "service",
                Some(80),
                "80/tcp is http",
                json!({"service": "http", "banner": "HTTP/1.0 200 OK\r\nServer: <x>\x01"}),
            ),
            finding(
                "http-response",
                Some(80),
                "a \"title\"",
                json!({"status": 200, "headers": {"server": "x"}, "hops": [1, 2], "none": null}),
            ),
            finding("note", None, "line one\nline two", json!({})),
        ] {
            sink.write(&record).unwrap();
        }
        sink.finish().unwrap();
        drop(sink);
        let text = String::from_utf8(out).unwrap();
        for expected in [
            r#"<nmaprun scanner="nmap" profile_name="wscan" args="wscan scan 127.0.0.1 -p 80""#,
            r#"<address addr="127.0.0.1" addrtype="ipv4"/>"#,
            r#"<hostname name="www.test" type="user"/>"#,
            r#"<port protocol="tcp" portid="80">"#,
            r#"<service name="http" method="probed" conf="10"/>"#,
            r#"<script id="banner" output="HTTP/1.0 200 OK&#13;&#xa;Server: &lt;x&gt;\x01"/>"#,
            r#"<script id="http-response" output="a &quot;title&quot;">"#,
            r#"<elem key="status">200</elem>"#,
            r#"<table key="headers">"#,
            r#"<elem key="server">x</elem>"#,
            r#"<elem>2</elem>"#,
            r#"<elem key="none"/>"#,
            r#"<hostscript>"#,
            r#"<script id="note" output="line one&#xa;line two"/>"#,
            r#"<hosts up="1" down="0" total="1"/>"#,
        ] {
            assert!(text.contains(expected), "{expected} not in\n{text}");
        }
    }
}
