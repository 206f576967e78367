//! Test plugin: consumes the services the port plugin emits, writes a line
//! to each and reports what came back, so the tests can check that findings
//! of a plugin loaded with `--plugin` come out, with the subject they chain
//! from.

use wscan_sdk::prelude::*;
use wscan_sdk::serde_json::json;

struct Greeter;

impl Plugin for Greeter {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "greeter",
            "0.1.0",
            "Says hello to every service and reports the reply",
        )
        .consumes(SubjectFilter::services())
        .capability(Capability::Tcp)
        .arg(ArgInfo::text("greeting", "what to send").default("hello"))
    }

    async fn scan(subject: Subject, options: ScanOptions) -> Result<(), Error> {
        let Subject::Service(service) = &subject else {
            return Err("greeter consumes services".into());
        };
        let greeting = options.text("greeting").unwrap_or("hello").to_string();
        let ip = wscan_sdk::to_ip(service.address);
        let conn = tcp::connect(ip, service.port, None)
            .await
            .map_err(Error::from)?;
        // One request, one reply line (the SDK's exchange helper).
        let wait = Some(std::time::Duration::from_millis(500));
        let reply = match conn
            .exchange(format!("{greeting}\n").as_bytes(), b"\n", 256, wait)
            .await
        {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(ErrorCode::Timeout) => String::new(),
            Err(e) => return Err(e.into()),
        };
        log::info(&format!("greeted {ip}:{}", service.port));
        let finding = Finding::new(
            "greeting",
            Severity::Low,
            format!("greeted port {}", service.port),
            subject.clone(),
        )
        .data(json!({ "sent": greeting, "reply": reply }));
        report::finding(finding).map_err(Error::from)
    }
}

wscan_sdk::export_plugin!(Greeter);
