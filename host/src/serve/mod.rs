//! `wscan serve`: the scan service. An HTTP API (axum) over the same
//! engine, plugin registry and result store as the CLI: scans are started
//! from JSON, run in the daemon, stored as CLI scans are, and read back
//! page by page. The OpenAPI document is generated from this code
//! (utoipa) at `GET /v1/openapi.json`.

pub mod api;
mod events;
pub mod tls;

use crate::engine::Engine;
use crate::engine::registry::Registry;
use crate::metrics::Metrics;
use crate::model::PluginInfo;
use crate::scheduler::spec::{Gathered, ScanSpec};
use crate::store::{RecordFilter, Role, Status, Store, TokenRow};
use api::{ApiError, RecordPage, ScanBody, ScanPage, ScanView};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use utoipa::OpenApi;

/// The largest request body taken: a scan request is a few hundred bytes.
const MAX_BODY: usize = 1 << 20;

/// The largest plugin upload taken: a Rust plugin is a few hundred KB, a
/// Python one tens of MB.
const MAX_PLUGIN: usize = 128 << 20;

/// The most records or scans one page holds.
const MAX_PAGE: usize = 1000;

/// How long SIGTERM waits for running scans to record their stop.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// The daemon's shared state: what every scan runs on, and the scans
/// running now.
pub struct Service {
    engine: Arc<Engine>,
    registry: Arc<Registry>,
    settings: Settings,
    /// Running scans: how to stop each, and how far each is.
    running: Mutex<HashMap<i64, RunningScan>>,
    /// SIGTERM came: no new scans.
    draining: AtomicBool,
    /// Scans running or about to ([`ScanSlot`]s taken).
    slots: std::sync::atomic::AtomicUsize,
    /// Held by an upload or a removal from its write to its install, so
    /// that two at once cannot mix their files or install out of order.
    plugin_changes: tokio::sync::Mutex<()>,
    /// Store connections kept open between requests ([`Service::read`]).
    readers: Mutex<Vec<Store>>,
}

/// Idle store connections kept for requests; more requests at once open
/// more, closed after use.
const IDLE_READERS: usize = 8;

/// How the daemon is set up (`wscan serve`'s flags).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The result store's file.
    pub db: PathBuf,
    /// The plugin folder, named in each scan's stored command line so
    /// that `wscan scan --resume` loads the same plugins.
    pub plugin_dir: Option<PathBuf>,
    /// Where uploaded plugins are written (the plugin folder, or the
    /// user's default one, created on the first upload).
    pub uploads: Option<PathBuf>,
    /// Listening beyond loopback: with no token in the store, every
    /// request but health is refused (on loopback the service is then
    /// open).
    pub public: bool,
    /// Network operations in flight across all scans, shared fairly
    /// (`--concurrency`).
    pub budget: Arc<crate::primitives::gate::Budget>,
    /// The most scans running at once (`--max-scans`); more are refused
    /// with `429`.
    pub max_scans: usize,
    /// Where scans are published to run on workers (`--redis`); `None`
    /// runs them in the daemon.
    pub publish: Option<crate::cluster::coordinator::Publish>,
}

impl Settings {
    /// The most plugin instances one scan may ask for (`parallel`), so
    /// that `max_scans` scans, each up to twice its `parallel` when
    /// jammed, stay within the engine's instance pool.
    pub fn max_parallel(&self) -> usize {
        let pool = crate::engine::limits::MAX_INSTANCES as usize - 64;
        (pool / (2 * self.max_scans.max(1))).max(1)
    }
}

/// A place among the scans running at once, given back when dropped.
struct ScanSlot(Arc<Service>);

impl Drop for ScanSlot {
    fn drop(&mut self) {
        self.0.slots.fetch_sub(1, Ordering::SeqCst);
    }
}

type Shared = Arc<Service>;

/// A scan running in the daemon.
struct RunningScan {
    /// Stops it; taken by the first cancel.
    stop: Option<oneshot::Sender<()>>,
    /// Units done of those known (hidden: it only counts).
    progress: indicatif::ProgressBar,
    /// Its network counters (its gate counts in them).
    counters: Arc<crate::primitives::gate::NetStats>,
}

impl Service {
    /// A service running scans on `engine` with `registry`'s plugins, set
    /// up as `settings` say.
    pub fn new(engine: Arc<Engine>, registry: Arc<Registry>, settings: Settings) -> Arc<Self> {
        Arc::new(Service {
            engine,
            registry,
            settings,
            running: Mutex::new(HashMap::new()),
            draining: AtomicBool::new(false),
            slots: Default::default(),
            plugin_changes: tokio::sync::Mutex::new(()),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Run `read` on a blocking thread with a store connection kept from
    /// an earlier request: opening one (schema check, pragmas) costs more
    /// than most requests' reads. A scan's journal commits as it goes, so
    /// each read sees what is stored up to its start.
    async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let service = self.clone();
        blocking(move || {
            let kept = service.readers.lock().expect("readers").pop();
            let store = match kept {
                Some(store) => store,
                None => Store::open_read_only(&service.settings.db).map_err(store_error)?,
            };
            let result = read(&store);
            let mut idle = service.readers.lock().expect("readers");
            if idle.len() < IDLE_READERS {
                idle.push(store);
            }
            result
        })
        .await
    }

    /// How far scan `id` is, while this daemon runs it.
    fn progress(&self, id: i64) -> Option<api::Progress> {
        let running = self.running.lock().expect("running scans");
        let scan = running.get(&id)?;
        let bar = &scan.progress;
        let done = bar.position();
        let known = bar.length().unwrap_or(0);
        Some(api::Progress {
            units_done: done,
            units_known: known,
            per_second: (bar.per_sec() * 10.0).round() / 10.0,
            elapsed_s: bar.elapsed().as_secs_f64(),
            eta_s: (done > 0 && known > done).then(|| bar.eta().as_secs_f64()),
            connects: scan.counters.connects.load(Ordering::Relaxed),
        })
    }

    /// A place for one more running scan, or `429` when `--max-scans`
    /// are running.
    fn take_slot(self: &Arc<Self>) -> Result<ScanSlot, ApiError> {
        let max = self.settings.max_scans;
        self.slots
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|n| {
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "{n} scans are running, the most this daemon runs at once (--max-scans {max}); try again when one ends"
                    ),
                )
            })?;
        Ok(ScanSlot(self.clone()))
    }

    /// `503` once SIGTERM came: no new scans, no resumed ones.
    fn refuse_when_draining(&self) -> Result<(), ApiError> {
        match self.draining.load(Ordering::SeqCst) {
            true => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting down",
            )),
            false => Ok(()),
        }
    }

    /// The API's routes.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/healthz", get(healthz))
            .route(
                "/",
                get(|| async { console_file("text/html; charset=utf-8", CONSOLE_PAGE) }),
            )
            .route(
                "/console/console.js",
                get(|| async { console_file("text/javascript; charset=utf-8", CONSOLE_SCRIPT) }),
            )
            .route(
                "/console/console.css",
                get(|| async { console_file("text/css; charset=utf-8", CONSOLE_STYLE) }),
            )
            .route("/v1/whoami", get(whoami))
            .route("/metrics", get(metrics))
            .route("/readyz", get(readyz))
            .route("/v1/openapi.json", get(openapi))
            .route("/v1/scans", post(create_scan).get(list_scans))
            .route("/v1/scans/{id}", get(get_scan).delete(delete_scan))
            .route("/v1/scans/{id}/records", get(scan_records))
            .route("/v1/scans/{id}/export", get(export_scan))
            .route("/v1/scans/{id}/cancel", post(cancel_scan))
            .route("/v1/scans/{id}/resume", post(resume_scan))
            .route("/v1/scans/{id}/events", get(events::scan_events))
            .route("/v1/scans/{id}/ws", get(events::scan_ws))
            .route("/v1/plugins", get(list_plugins))
            .route(
                "/v1/plugins/{name}",
                get(get_plugin)
                    .put(put_plugin)
                    .delete(delete_plugin)
                    .layer(DefaultBodyLimit::max(MAX_PLUGIN)),
            )
            .fallback(not_found)
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                authorize,
            ))
            // Outermost: refusals by the token check and the body limit
            // are counted too.
            .layer(axum::middleware::from_fn_with_state(
                self.engine.metrics().clone(),
                observe,
            ))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(self.clone())
    }

    /// Stop taking scans, stop the running ones (each records where it
    /// stood, resumable), and wait for them, at most [`DRAIN_LIMIT`].
    pub async fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        let stops: Vec<oneshot::Sender<()>> = {
            let mut running = self.running.lock().expect("running scans");
            running.values_mut().filter_map(|r| r.stop.take()).collect()
        };
        let count = stops.len();
        for stop in stops {
            let _ = stop.send(());
        }
        let deadline = tokio::time::Instant::now() + DRAIN_LIMIT;
        // A stopped scan's task ends by recording its status: wait for the
        // store to say none of ours is running.
        while count > 0 && tokio::time::Instant::now() < deadline {
            let db = self.settings.db.clone();
            let pid = std::process::id();
            let left = tokio::task::spawn_blocking(move || {
                Store::open_read_only(&db)
                    .and_then(|s| s.scans())
                    .map(|rows| {
                        rows.iter()
                            .filter(|r| r.status == Status::Running && r.pid == Some(pid))
                            .count()
                    })
                    .unwrap_or(0)
            })
            .await
            .unwrap_or(0);
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The OpenAPI document of the routes below.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "wscan",
        description = "The wscan scan service: start scans, follow them, read their records."
    ),
    paths(
        healthz,
        metrics,
        whoami,
        readyz,
        create_scan,
        list_scans,
        get_scan,
        delete_scan,
        scan_records,
        export_scan,
        cancel_scan,
        resume_scan,
        events::scan_events,
        events::scan_ws,
        list_plugins,
        get_plugin,
        put_plugin,
        delete_plugin
    ),
    components(schemas(
        ScanBody,
        ScanView,
        ScanPage,
        RecordPage,
        ApiError,
        api::ScanUrls,
        api::Identity,
        api::Progress
    )),
    modifiers(&BearerTokens)
)]
pub struct ApiDoc;

/// Bearer tokens in the document. They are optional as far as the document
/// says: a service on loopback whose store holds no token needs none. With
/// tokens, every route but health and this document answers 401 without a
/// valid one and 403 to a role too weak (docs/api.md, Tokens).
struct BearerTokens;

impl utoipa::Modify for BearerTokens {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "A token made by `wscan token create NAME --role read|scan|admin`",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
        openapi.security = Some(vec![
            SecurityRequirement::default(),
            SecurityRequirement::new("bearer", Vec::<String>::new()),
        ]);
    }
}

/// The role a request needs: none for health and the API's description,
/// `read` for any GET, `scan` to start or cancel a scan, `admin` for the
/// rest (deleting scans).
fn needed_role(method: &axum::http::Method, path: &str) -> Option<Role> {
    use axum::http::Method;
    // The console's page and assets carry nothing: it logs in through
    // the API.
    if ["/healthz", "/readyz", "/v1/openapi.json", "/"].contains(&path)
        || path.starts_with("/console/")
    {
        return None;
    }
    let cancel =
        path.starts_with("/v1/scans/") && (path.ends_with("/cancel") || path.ends_with("/resume"));
    Some(match *method {
        Method::GET | Method::HEAD => Role::Read,
        Method::POST if path == "/v1/scans" || cancel => Role::Scan,
        _ => Role::Admin,
    })
}

/// Who is asking, as far as tokens tell.
enum Caller {
    /// The store has no tokens: the service is open (on loopback only).
    Open,
    /// A valid token.
    Token(TokenRow),
    /// No token, or not one of ours.
    Unknown(&'static str),
}

/// Bearer tokens: once the store holds any, every request but health and
/// the API's description needs one whose role is strong enough. Tokens
/// are looked up per request, so `wscan token create` and `revoke` take
/// effect at once. A service listening beyond loopback is never open: if
/// its last token is revoked, it refuses everyone.
async fn authorize(
    State(service): State<Shared>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(needed) = needed_role(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let public = service.settings.public;
    let caller = service.read(move |store| {
        if !store.has_tokens().map_err(store_error)? {
            return Ok(match public {
                false => Caller::Open,
                true => Caller::Unknown("this service listens beyond loopback and has no token left: create one (`wscan token create NAME --role admin`)"),
            });
        }
        let Some(value) = bearer else {
            return Ok(Caller::Unknown("this service needs a token: send `Authorization: Bearer TOKEN` (`wscan token create NAME --role read` makes one)"));
        };
        let Some(token) = value.strip_prefix("Bearer ") else {
            return Ok(Caller::Unknown("the Authorization header must be `Bearer TOKEN`"));
        };
        Ok(match store.check_token(token.trim()).map_err(store_error)? {
            Some(row) => Caller::Token(row),
            None => Caller::Unknown("this token is not valid (revoked, or never created here)"),
        })
    })
    .await;
    match caller {
        Err(e) => e.into_response(),
        Ok(Caller::Open) => {
            request.extensions_mut().insert(api::Identity {
                name: None,
                role: Role::Admin.to_string(),
                open: true,
            });
            next.run(request).await
        }
        Ok(Caller::Unknown(why)) => {
            let mut response = ApiError::new(StatusCode::UNAUTHORIZED, why).into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
            response
        }
        Ok(Caller::Token(row)) if row.role < needed => ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "token {:?} has the role {}; this request needs {needed}",
                row.name, row.role
            ),
        )
        .into_response(),
        Ok(Caller::Token(row)) => {
            request.extensions_mut().insert(api::Identity {
                name: Some(row.name),
                role: row.role.to_string(),
                open: false,
            });
            next.run(request).await
        }
    }
}

/// Who is asking: the token's name and role, or an open service (a store
/// without tokens, on loopback) where anyone may do anything. The console
/// shows only the controls the role allows.
#[utoipa::path(get, path = "/v1/whoami", responses(
    (status = 200, description = "The caller", body = api::Identity)
))]
async fn whoami(identity: Option<axum::Extension<api::Identity>>) -> Json<api::Identity> {
    Json(match identity {
        Some(axum::Extension(identity)) => identity,
        // Every GET passes the token check, which sets it.
        None => api::Identity {
            name: None,
            role: Role::Admin.to_string(),
            open: true,
        },
    })
}

/// The console's files, built into the binary (plain HTML, CSS and
/// JavaScript modules: no build step, no CDN, works offline).
const CONSOLE_PAGE: &str = include_str!("console/index.html");
const CONSOLE_SCRIPT: &str = include_str!("console/console.js");
const CONSOLE_STYLE: &str = include_str!("console/console.css");

/// One of the console's files, with headers that keep it to this origin.
fn console_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
        ],
        body,
    )
        .into_response()
}

/// Run a blocking store operation off the async threads; its failure is
/// the server's (500), never the request's.
async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

fn store_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("result store: {e}"),
    )
}

fn no_scan(id: i64) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("there is no scan {id}"))
}

fn bad_path(e: PathRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, e.body_text())
}

fn bad_query(e: QueryRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, e.body_text())
}

/// Count each request in the metrics, by its route's pattern (not its
/// path, which would make a label set per scan).
async fn observe(
    State(metrics): State<Arc<Metrics>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = std::time::Instant::now();
    let route = match request.extensions().get::<MatchedPath>() {
        Some(path) => path.as_str().to_owned(),
        None => "unmatched".to_owned(),
    };
    // Any token is a method to hyper: only the known ones are labels, so
    // a client cannot grow the label sets.
    let method: &'static str = match request.method().as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        _ => "other",
    };
    let response = next.run(request).await;
    metrics.request(
        &route,
        method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// The process's metrics in the OpenMetrics text format (Prometheus
/// scrapes it); docs/api.md lists them.
#[utoipa::path(get, path = "/metrics", responses(
    (status = 200, description = "The metrics", body = String, content_type = "application/openmetrics-text"),
    (status = 401, description = "No token, or not a valid one", body = ApiError)
))]
async fn metrics(State(service): State<Shared>) -> Response {
    metrics_text(service.engine.metrics())
}

/// `metrics` as a response.
fn metrics_text(metrics: &Metrics) -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        metrics.render(),
    )
        .into_response()
}

/// A server of `/metrics` alone, for `wscan scan --metrics ADDR`.
pub fn metrics_router(metrics: Arc<Metrics>) -> axum::Router {
    axum::Router::new()
        .route(
            "/metrics",
            get(|State(metrics): State<Arc<Metrics>>| async move { metrics_text(&metrics) }),
        )
        .with_state(metrics)
}

/// The service is up.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "Up")))]
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// The service takes scans: its store opens, and it is not shutting down.
#[utoipa::path(get, path = "/readyz", responses(
    (status = 200, description = "Ready"),
    (status = 503, description = "Shutting down, or the store cannot be opened", body = ApiError)
))]
async fn readyz(State(service): State<Shared>) -> Result<Json<serde_json::Value>, ApiError> {
    service.refuse_when_draining()?;
    let db = service.settings.db.clone();
    blocking(move || {
        Store::open_read_only(&db).map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("result store: {e}"),
            )
        })
    })
    .await?;
    Ok(Json(serde_json::json!({"status": "ready"})))
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such route; GET /v1/openapi.json lists them",
    )
}

/// Start a scan. It is checked as `wscan scan` checks its flags (the same
/// texts), stored, and run in the daemon.
#[utoipa::path(post, path = "/v1/scans", request_body = ScanBody, responses(
    (status = 201, description = "Started", body = ScanView),
    (status = 400, description = "Not JSON, an unknown field or a wrong type", body = ApiError),
    (status = 413, description = "Body over 1 MiB", body = ApiError),
    (status = 422, description = "A value the scan cannot take", body = ApiError),
    (status = 429, description = "--max-scans scans are running", body = ApiError),
    (status = 503, description = "Shutting down", body = ApiError)
))]
async fn create_scan(
    State(service): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    service.refuse_when_draining()?;
    let request: ScanBody =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&body))
            .map_err(|e| {
                let path = e.path().to_string();
                // "." is the body itself; "?" a place serde could not name.
                let field = (path != "." && path != "?").then_some(path);
                ApiError::new(StatusCode::BAD_REQUEST, e.inner().to_string()).field(field)
            })?;
    let unprocessable = |text: String| {
        let field = mentioned_field(&text);
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, text).field(field)
    };
    if request.targets.is_empty() {
        return Err(unprocessable("give at least one target".into()).field(Some("targets")));
    }
    let mut argv = vec!["scan".to_string()];
    if let Some(dir) = &service.settings.plugin_dir {
        argv.push(format!("--plugin-dir={}", dir.display()));
    }
    argv.extend(request.argv());
    let args = scan_args(&argv)?;
    let scan_request = args.request();
    let active = service.registry.active();
    let available: Vec<&PluginInfo> = active.iter().map(|a| &a.plugin.info).collect();
    let gathered = Gathered::gather(&scan_request).map_err(|e| unprocessable(e.to_string()))?;
    let mut spec = ScanSpec::resolve(&scan_request, &available, gathered)
        .map_err(|e| unprocessable(e.to_string()))?;
    let max_parallel = service.settings.max_parallel();
    if request.parallel.is_none() {
        // The CLI's default may be over this daemon's cap; only a value
        // the request gave is refused.
        spec.parallel = spec.parallel.min(max_parallel);
    } else if spec.parallel > max_parallel {
        return Err(unprocessable(format!(
            "parallel {}: at most {max_parallel} plugin instances per scan in this daemon (its instance pool is shared by up to --max-scans {} scans)",
            spec.parallel, service.settings.max_scans
        ))
        .field(Some("parallel")));
    }
    let plan = service
        .plan(&argv, &spec, &scan_request)
        .map_err(|e| unprocessable(e.to_string()))?;
    let seed = spec.seed();
    let slot = service.take_slot()?;

    let db = service.settings.db.clone();
    let stored = argv.clone();
    let (id, journal) = blocking(move || {
        let store = Store::open(&db).map_err(store_error)?;
        let cwd = std::env::current_dir().map_err(store_error)?;
        let id = store.begin(&stored, &cwd, seed).map_err(store_error)?;
        let journal = store.journal(id).map_err(store_error)?;
        Ok((id, journal))
    })
    .await?;
    tracing::info!("scan {id} started: wscan {}", argv.join(" "));
    service.start(
        slot,
        id,
        spec,
        plan,
        journal,
        crate::store::Resumed::default(),
    );
    let view = scan_view(&service, id).await?;
    let location = view.urls.this.clone();
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}

/// `wscan scan`'s arguments from the command line a request stands for;
/// clap's error, naming the request's field, when they are wrong.
fn scan_args(argv: &[String]) -> Result<crate::cli::ScanArgs, ApiError> {
    use clap::Parser;
    use clap::error::{ContextKind, ContextValue};
    let line = std::iter::once("wscan").chain(argv.iter().map(String::as_str));
    let cli = crate::cli::Cli::try_parse_from(line).map_err(|e| {
        let field = match e.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(arg)) => {
                let flag = arg
                    .split([' ', '='])
                    .next()
                    .unwrap_or_default()
                    .trim_matches(|c| matches!(c, '<' | '>' | '[' | ']' | '.'));
                api::field_of_flag(flag)
            }
            _ => None,
        };
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            first.trim_start_matches("error: "),
        )
        .field(field)
    })?;
    match cli.command {
        crate::cli::Command::Scan(args) => Ok(args),
        _ => unreachable!("the command line starts with `scan`"),
    }
}

/// The request field an error text names by its flag (`--plugin-arg ...`
/// is about `plugin_args`), if any.
fn mentioned_field(text: &str) -> Option<&'static str> {
    api::FIELD_FLAGS
        .iter()
        .filter(|(_, flag)| flag.starts_with("--"))
        .filter_map(|(field, flag)| {
            text.match_indices(flag)
                .find(|(at, _)| {
                    let next = text[at + flag.len()..].chars().next();
                    !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
                })
                .map(|(at, _)| (at, *field))
        })
        .min()
        .map(|(_, field)| field)
}

impl Service {
    /// Run stored scan `id` in the background, from where `resumed` says
    /// its earlier runs left it (nothing, for a new scan).
    /// With `--redis`, how scan `spec` (command line `argv`, asked as
    /// `request`) is published to workers.
    fn plan(
        &self,
        argv: &[String],
        spec: &ScanSpec,
        request: &crate::scheduler::spec::ScanRequest,
    ) -> Result<Option<crate::cluster::coordinator::Plan>, crate::cluster::ClusterError> {
        let Some(publish) = &self.settings.publish else {
            return Ok(None);
        };
        crate::cluster::coordinator::Plan::new(
            argv.to_vec(),
            spec,
            request,
            publish.clone(),
            self.engine.metrics().clone(),
        )
        .map(Some)
    }

    fn start(
        self: &Arc<Self>,
        slot: ScanSlot,
        id: i64,
        mut spec: ScanSpec,
        plan: Option<crate::cluster::coordinator::Plan>,
        journal: crate::store::Journal,
        resumed: crate::store::Resumed,
    ) {
        spec.shared = Some(self.settings.budget.clone());
        let counters = Arc::new(crate::primitives::gate::NetStats::default());
        spec.counters = Some(counters.clone());
        let (stop, stopped) = oneshot::channel();
        let progress = indicatif::ProgressBar::hidden();
        self.running.lock().expect("running scans").insert(
            id,
            RunningScan {
                stop: Some(stop),
                progress: progress.clone(),
                counters,
            },
        );
        let durable = crate::scheduler::Durable { journal, resumed };
        tokio::spawn(async move {
            run_scan(slot.0.clone(), id, spec, plan, durable, stopped, progress).await;
            drop(slot);
        });
    }

    /// Continue stored scan `id` (interrupted or failed) with the settings
    /// it was started with, as `wscan scan --resume` does: units it
    /// completed are not run again, units cut short run again from the
    /// start.
    pub async fn resume(self: &Arc<Self>, id: i64) -> Result<(), ApiError> {
        let row = scan_row(self, id).await?;
        let conflict = |text: String| ApiError::new(StatusCode::CONFLICT, text);
        match row.status {
            Status::Completed => {
                return Err(conflict(format!(
                    "scan {id} is complete: nothing to resume"
                )));
            }
            Status::Running => return Err(conflict(format!("scan {id} is running"))),
            Status::Interrupted | Status::Failed => {}
        }
        if self
            .running
            .lock()
            .expect("running scans")
            .contains_key(&id)
        {
            return Err(conflict(format!("scan {id} is still stopping")));
        }
        let args = crate::cli::stored_args(&row)
            .map_err(|e| conflict(format!("scan {id} cannot be resumed: {e}")))?;
        let request = args.request();
        let active = self.registry.active();
        let available: Vec<&PluginInfo> = active.iter().map(|a| &a.plugin.info).collect();
        let unprocessable = |e: crate::scheduler::spec::SpecError| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("scan {id} cannot be resumed: {e}"),
            )
        };
        let gathered = Gathered::gather(&request).map_err(unprocessable)?;
        let mut spec = ScanSpec::resolve(&request, &available, gathered).map_err(unprocessable)?;
        // A CLI scan may have asked for more instances than a daemon
        // scan may hold; how many run at once changes no result.
        spec.parallel = spec.parallel.min(self.settings.max_parallel());
        let plan = self.plan(&row.argv, &spec, &request).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("scan {id} cannot be resumed: {e}"),
            )
        })?;
        let slot = self.take_slot()?;
        let db = self.settings.db.clone();
        let (journal, resumed) = blocking(move || {
            let mut store = Store::open(&db).map_err(store_error)?;
            let resumed = store.resume(id).map_err(store_error)?;
            let journal = store.journal(id).map_err(store_error)?;
            Ok((journal, resumed))
        })
        .await?;
        tracing::info!(
            "scan {id} resumed: {} unit(s) done by earlier runs are skipped",
            resumed.done.len()
        );
        self.start(slot, id, spec, plan, journal, resumed);
        Ok(())
    }

    /// Resume every scan of the store whose process died while running it
    /// (`wscan serve --resume-killed`): after a crash or a SIGKILL, the
    /// daemon's scans go on where they were. Each scan and how its resume
    /// went.
    pub async fn resume_killed(self: &Arc<Self>) -> Vec<(i64, Result<(), String>)> {
        let db = self.settings.db.clone();
        let killed = blocking(move || {
            let rows = match Store::open_read_only(&db) {
                Ok(store) => store.scans().map_err(store_error)?,
                Err(_) => Vec::new(),
            };
            Ok(rows
                .into_iter()
                .filter(|r| r.killed)
                .map(|r| r.id)
                .collect::<Vec<_>>())
        })
        .await
        .unwrap_or_default();
        let mut outcomes = Vec::new();
        for id in killed {
            let outcome = self.resume(id).await.map_err(|e| e.error);
            outcomes.push((id, outcome));
        }
        outcomes
    }
}

/// Run stored scan `id` to its end (or until `stopped`), then record how
/// it ended.
async fn run_scan(
    service: Shared,
    id: i64,
    spec: ScanSpec,
    plan: Option<crate::cluster::coordinator::Plan>,
    durable: crate::scheduler::Durable,
    stopped: oneshot::Receiver<()>,
    progress: indicatif::ProgressBar,
) {
    // Records go to the store through the journal; nothing else reads them.
    let mut sink = crate::output::Discard;
    let stop = async {
        let _ = stopped.await;
    };
    let outcome = match plan {
        Some(plan) => crate::cluster::coordinator::run(
            &spec,
            &service.registry,
            plan,
            &mut sink,
            &progress,
            Some(durable),
            stop,
        )
        .await
        .map_err(|e| e.to_string()),
        None => crate::scheduler::run(
            &spec,
            service.engine.clone(),
            service.registry.clone(),
            &mut sink,
            &progress,
            Some(durable),
            stop,
        )
        .await
        .map_err(|e| e.to_string()),
    };
    let db = service.settings.db.clone();
    let ended = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let store = Store::open(&db).map_err(|e| e.to_string())?;
        let (status, stats) = match &outcome {
            Ok(summary) if summary.interrupted => (Status::Interrupted, summary),
            Ok(summary) => (Status::Completed, summary),
            Err(e) => {
                tracing::warn!("scan {id} failed: {e}");
                return store
                    .end(id, Status::Failed, &serde_json::Value::Null)
                    .map_err(|e| e.to_string());
            }
        };
        let stats = serde_json::to_value(stats).map_err(|e| e.to_string())?;
        store.end(id, status, &stats).map_err(|e| e.to_string())
    })
    .await;
    match ended {
        Ok(Ok(())) => tracing::info!("scan {id} ended"),
        Ok(Err(e)) => tracing::warn!("scan {id}: cannot record its end: {e}"),
        Err(e) => tracing::warn!("scan {id}: {e}"),
    }
    service.running.lock().expect("running scans").remove(&id);
}

async fn scan_row(service: &Shared, id: i64) -> Result<crate::store::ScanRow, ApiError> {
    service
        .read(move |store| {
            store
                .scan(id)
                .map_err(store_error)?
                .ok_or_else(|| no_scan(id))
        })
        .await
}

async fn scan_view(service: &Shared, id: i64) -> Result<ScanView, ApiError> {
    let mut view: ScanView = scan_row(service, id).await?.into();
    view.progress = service.progress(id);
    Ok(view)
}

/// Continue an interrupted or failed scan where it stopped, with the
/// settings it was started with (as `wscan scan --resume ID`).
#[utoipa::path(post, path = "/v1/scans/{id}/resume", params(("id" = i64, Path, description = "The scan's number")), responses(
    (status = 202, description = "Running again", body = ScanView),
    (status = 400, description = "Not a scan number", body = ApiError),
    (status = 404, description = "No such scan", body = ApiError),
    (status = 503, description = "Shutting down", body = ApiError),
    (status = 409, description = "Complete, running, or not resumable", body = ApiError),
    (status = 422, description = "Its settings no longer resolve (a plugin it used is gone)", body = ApiError),
    (status = 429, description = "--max-scans scans are running", body = ApiError)
))]
async fn resume_scan(
    State(service): State<Shared>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(bad_path)?;
    service.refuse_when_draining()?;
    service.resume(id).await?;
    let view = scan_view(&service, id).await?;
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

/// Paging and filters of `GET /v1/scans`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct ScansQuery {
    /// Only scans with this status: running, completed, interrupted, failed.
    status: Option<String>,
    /// Scans after this number (the `next` of the previous page).
    after: Option<i64>,
    /// Scans in a page, 1 to 1000 (default 100).
    limit: Option<usize>,
}

fn page_size(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(100) {
        n @ 1..=MAX_PAGE => Ok(n),
        n => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("limit {n}: give 1 to {MAX_PAGE}"),
        )
        .field(Some("limit"))),
    }
}

/// The scans recorded, oldest first.
#[utoipa::path(get, path = "/v1/scans", params(ScansQuery), responses(
    (status = 200, description = "A page of scans", body = ScanPage),
    (status = 400, description = "A bad parameter", body = ApiError)
))]
async fn list_scans(
    State(service): State<Shared>,
    query: Result<Query<ScansQuery>, QueryRejection>,
) -> Result<Json<ScanPage>, ApiError> {
    let Query(query) = query.map_err(bad_query)?;
    let limit = page_size(query.limit)?;
    if let Some(status) = &query.status
        && !["running", "completed", "interrupted", "failed"].contains(&status.as_str())
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("status {status:?}: give running, completed, interrupted or failed"),
        )
        .field(Some("status")));
    }
    let db = service.settings.db.clone();
    blocking(move || {
        let rows = match Store::open_read_only(&db) {
            Ok(store) => store.scans().map_err(store_error)?,
            Err(_) if !db.exists() => Vec::new(),
            Err(e) => return Err(store_error(e)),
        };
        let mut rows: Vec<_> = rows
            .into_iter()
            .filter(|r| r.id > query.after.unwrap_or(0))
            .filter(|r| {
                query
                    .status
                    .as_ref()
                    .is_none_or(|s| r.status.to_string() == *s)
            })
            .take(limit + 1)
            .collect();
        let next = (rows.len() > limit).then(|| {
            rows.truncate(limit);
            rows.last().map(|r| r.id)
        });
        Ok((rows, next.flatten()))
    })
    .await
    .map(|(rows, next)| {
        Json(ScanPage {
            scans: rows
                .into_iter()
                .map(|row| {
                    let mut view: ScanView = row.into();
                    view.progress = service.progress(view.id);
                    view
                })
                .collect(),
            next,
        })
    })
}

/// One scan: its status, command line and statistics.
#[utoipa::path(get, path = "/v1/scans/{id}", params(("id" = i64, Path, description = "The scan's number")), responses(
    (status = 200, description = "The scan", body = ScanView),
    (status = 400, description = "Not a scan number", body = ApiError),
    (status = 404, description = "No such scan", body = ApiError)
))]
async fn get_scan(
    State(service): State<Shared>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<ScanView>, ApiError> {
    let Path(id) = id.map_err(bad_path)?;
    Ok(Json(scan_view(&service, id).await?))
}

/// Delete a scan that is not running, with its records.
#[utoipa::path(delete, path = "/v1/scans/{id}", params(("id" = i64, Path, description = "The scan's number")), responses(
    (status = 204, description = "Deleted"),
    (status = 400, description = "Not a scan number", body = ApiError),
    (status = 404, description = "No such scan", body = ApiError),
    (status = 409, description = "It is running: cancel it first", body = ApiError)
))]
async fn delete_scan(
    State(service): State<Shared>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id.map_err(bad_path)?;
    let view = scan_view(&service, id).await?;
    if view.status == "running" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("scan {id} is running; POST /v1/scans/{id}/cancel first"),
        ));
    }
    let db = service.settings.db.clone();
    blocking(move || {
        let mut store = Store::open(&db).map_err(store_error)?;
        store.delete(&[id], false).map_err(store_error)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Paging and filters of `GET /v1/scans/{id}/records`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct RecordsQuery {
    /// Records after this one (the `next` of the previous page).
    after: Option<i64>,
    /// Records in a page, 1 to 1000 (default 100).
    limit: Option<usize>,
    /// Only records of this type: finding, error, out-of-scope.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    record_type: Option<String>,
    /// Only findings of this kind.
    kind: Option<String>,
    /// Only findings of this severity.
    severity: Option<String>,
    /// Only records of this plugin.
    plugin: Option<String>,
}

/// A scan's records, in the order they were stored, page by page; a
/// running scan's grow, and the last page's `next` reads what came since.
#[utoipa::path(get, path = "/v1/scans/{id}/records", params(("id" = i64, Path, description = "The scan's number"), RecordsQuery), responses(
    (status = 200, description = "A page of records", body = RecordPage),
    (status = 400, description = "A bad parameter", body = ApiError),
    (status = 404, description = "No such scan", body = ApiError)
))]
async fn scan_records(
    State(service): State<Shared>,
    id: Result<Path<i64>, PathRejection>,
    query: Result<Query<RecordsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(bad_path)?;
    let Query(query) = query.map_err(bad_query)?;
    let limit = page_size(query.limit)?;
    let filter = RecordFilter {
        kind_of_record: query.record_type,
        kind: query.kind,
        severity: query.severity,
        plugin: query.plugin,
    };
    let page = service
        .read(move |store| {
            let page = store
                .records_page(id, query.after.unwrap_or(0), limit, &filter)
                .map_err(store_error)?;
            // Only an empty page may be no scan at all.
            if page.is_empty() && store.scan_status(id).map_err(store_error)?.is_none() {
                return Err(no_scan(id));
            }
            Ok(page)
        })
        .await?;
    let next = (page.len() == limit)
        .then(|| page.last().map(|(n, _)| *n))
        .flatten();
    // A [`RecordPage`], written around the stored records' JSON rather
    // than parsing and serialising each again (most of a page's cost).
    let mut body =
        String::with_capacity(page.iter().map(|(_, r)| r.len() + 16).sum::<usize>() + 32);
    body.push_str("{\"records\":[");
    for (i, (n, record)) in page.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&with_id(*n, record));
    }
    body.push_str("],\"next\":");
    body.push_str(&next.map_or_else(|| "null".to_string(), |n| n.to_string()));
    body.push('}');
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /v1/scans/{id}/export`'s query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ExportQuery {
    /// `jsonl`, `csv`, `markdown`, `nmap-xml`, `sarif` or `table`.
    format: String,
}

/// A whole scan as a file in one of the output formats, as `wscan results
/// show ID --format FORMAT` writes it (docs/output.md).
#[utoipa::path(get, path = "/v1/scans/{id}/export", params(("id" = i64, Path, description = "The scan's number"), ExportQuery), responses(
    (status = 200, description = "The file (an attachment named scan-ID.EXT)", content(
        (String = "application/x-ndjson"),
        (String = "text/csv"),
        (String = "text/markdown"),
        (String = "application/xml"),
        (String = "application/sarif+json"),
        (String = "text/plain")
    )),
    (status = 400, description = "Not a scan number, or not a format", body = ApiError),
    (status = 404, description = "No such scan", body = ApiError)
))]
async fn export_scan(
    State(service): State<Shared>,
    id: Result<Path<i64>, PathRejection>,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    use crate::output::Format;
    use clap::ValueEnum;
    let Path(id) = id.map_err(bad_path)?;
    let Query(query) = query.map_err(bad_query)?;
    let format = Format::from_str(&query.format, true).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "format {:?}: one of jsonl, csv, markdown, nmap-xml, sarif, table",
                crate::model::excerpt(&query.format)
            ),
        )
        .field(Some("format"))
    })?;
    let (content_type, extension) = match format {
        Format::Jsonl => ("application/x-ndjson", "jsonl"),
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Markdown => ("text/markdown; charset=utf-8", "md"),
        Format::NmapXml => ("application/xml", "xml"),
        Format::Sarif => ("application/sarif+json", "sarif"),
        Format::Table => ("text/plain; charset=utf-8", "txt"),
    };
    let file = service
        .read(move |store| {
            let row = store
                .scan(id)
                .map_err(store_error)?
                .ok_or_else(|| no_scan(id))?;
            let buffer = SharedBuffer::default();
            let mut sink = format.sink(buffer.clone(), None, &crate::cli::results_run_info(&row));
            store
                .records(id, |record| sink.write(&record))
                .map_err(store_error)?;
            sink.finish().map_err(store_error)?;
            drop(sink);
            Ok(buffer.take())
        })
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"scan-{id}.{extension}\""),
            ),
        ],
        file,
    )
        .into_response())
}

/// A `Write` whose bytes the writer's owner takes back at the end (a sink
/// owns its writer).
#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().expect("buffer"))
    }
}

impl std::io::Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A stored record's JSON object with its number as `id` first.
pub(crate) fn with_id(n: i64, record: &str) -> String {
    match record.trim_start().strip_prefix('{') {
        Some(rest) if rest.trim_start().starts_with('}') => format!("{{\"id\":{n}}}"),
        Some(rest) => format!("{{\"id\":{n},{rest}"),
        // Not an object: never stored, but kept whole rather than broken.
        None => format!("{{\"id\":{n},\"record\":{record}}}"),
    }
}

/// Stop a running scan. It ends `interrupted`, with what it found stored;
/// `wscan scan --resume ID` continues it.
#[utoipa::path(post, path = "/v1/scans/{id}/cancel", params(("id" = i64, Path, description = "The scan's number")), responses(
    (status = 202, description = "Stopping", body = ScanView),
    (status = 400, description = "Not a scan number", body = ApiError),
    (status = 404, description = "No such scan", body = ApiError),
    (status = 409, description = "Not running in this daemon", body = ApiError)
))]
async fn cancel_scan(
    State(service): State<Shared>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(bad_path)?;
    let view = scan_view(&service, id).await?;
    let stop = {
        let mut running = service.running.lock().expect("running scans");
        // A second cancel of a scan still stopping finds it, without a stop.
        running.get_mut(&id).map(|r| r.stop.take())
    };
    match stop {
        Some(stop) => {
            if let Some(stop) = stop {
                let _ = stop.send(());
            }
            Ok((StatusCode::ACCEPTED, Json(view)).into_response())
        }
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("scan {id} is {}, not running in this daemon", view.status),
        )),
    }
}

/// The plugins loaded, as `wscan plugin list --format jsonl` shows them.
#[utoipa::path(get, path = "/v1/plugins", responses(
    (status = 200, description = "The plugins", body = Vec<Object>)
))]
async fn list_plugins(State(service): State<Shared>) -> Json<Vec<serde_json::Value>> {
    let active = service.registry.active();
    Json(active.iter().map(|a| plugin_json(&a.plugin)).collect())
}

/// One plugin: what its describe() says, and where it was loaded from.
#[utoipa::path(get, path = "/v1/plugins/{name}", params(("name" = String, Path, description = "The plugin's name")), responses(
    (status = 200, description = "The plugin", body = Object),
    (status = 404, description = "No such plugin", body = ApiError)
))]
async fn get_plugin(
    State(service): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let active = service.registry.active();
    active
        .iter()
        .find(|a| a.plugin.info.name == name)
        .map(|a| Json(plugin_json(&a.plugin)))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no plugin is named {name:?}"),
            )
        })
}

/// Upload a plugin component: validated and compiled exactly as the
/// plugin folder's files are, written to the plugin folder as NAME.wasm,
/// and swapped in for the units and scans that start afterwards (running
/// units keep the version they started with). A component that does not
/// load is refused and the version in use stays.
#[utoipa::path(put, path = "/v1/plugins/{name}", params(("name" = String, Path, description = "The plugin's name, as its describe() gives it")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The component (a .wasm file built for wasm32-wasip2)"),
    responses(
        (status = 200, description = "Swapped in for the plugin of that name in use (an earlier upload, or a built-in one)", body = Object),
        (status = 201, description = "Loaded: no plugin had the name", body = Object),
        (status = 400, description = "Not a plugin name", body = ApiError),
        (status = 409, description = "The name is taken by a plugin that uploads cannot replace (a --plugin file, another file of the plugin folder)", body = ApiError),
        (status = 413, description = "Larger than 128 MiB", body = ApiError),
        (status = 422, description = "Not a plugin component, or one named otherwise; the version in use stays", body = ApiError)
    ))]
async fn put_plugin(
    State(service): State<Shared>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let path = service.upload_path(&name)?;
    let plugin = match service
        .engine
        .load(
            bytes.to_vec(),
            crate::engine::PluginSource::Dir(path.clone()),
        )
        .await
    {
        Ok(plugin) if plugin.info.name == name => plugin,
        Ok(plugin) => {
            service.registry.reject();
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "this component describes itself as {:?}; upload it to /v1/plugins/{}",
                    plugin.info.name, plugin.info.name
                ),
            ));
        }
        Err(e) => {
            service.registry.reject();
            tracing::warn!("upload of plugin {name} rejected; the version in use stays: {e}");
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{e}; the version in use (if any) stays"),
            ));
        }
    };
    let _changing = service.plugin_changes.lock().await;
    // Written before it is used, so the folder always holds what runs
    // (and a restarted daemon loads it); a temporary name first, so the
    // folder's watcher never reads half a file.
    let write_to = path.clone();
    blocking(move || {
        let dir = write_to.parent().expect("a file in a folder");
        std::fs::create_dir_all(dir)
            .and_then(|()| {
                let tmp = write_to.with_extension("upload");
                std::fs::write(&tmp, &bytes)?;
                std::fs::rename(&tmp, &write_to)
            })
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot write {}: {e}", write_to.display()),
                )
            })
    })
    .await?;
    let version = plugin.info.version.clone();
    // Replaced: an earlier upload, or a built-in plugin of the name.
    let swapped = service.registry.get(&name).is_some();
    service.registry.install_dir_plugin(plugin);
    tracing::info!(
        "plugin {name} {version} {} by upload, from {}",
        if swapped { "swapped in" } else { "loaded" },
        path.display()
    );
    let view = service
        .registry
        .get(&name)
        .map(|p| plugin_json(&p))
        .unwrap_or_default();
    let status = match swapped {
        true => StatusCode::OK,
        false => StatusCode::CREATED,
    };
    Ok((status, Json(view)).into_response())
}

/// Remove an uploaded plugin (or any plugin folder's file): its file is
/// deleted and it is no longer scheduled; a built-in plugin of the same
/// name, if there is one, takes its place again.
#[utoipa::path(delete, path = "/v1/plugins/{name}", params(("name" = String, Path, description = "The plugin's name")), responses(
    (status = 204, description = "Removed"),
    (status = 404, description = "No such plugin", body = ApiError),
    (status = 409, description = "Built in, or a --plugin file: not removable", body = ApiError)
))]
async fn delete_plugin(
    State(service): State<Shared>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let plugin = service.registry.get(&name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no plugin is named {name:?}"),
        )
    })?;
    let crate::engine::PluginSource::Dir(path) = plugin.source.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "plugin {name} is {}: only the plugin folder's plugins can be removed",
                match plugin.source {
                    crate::engine::PluginSource::Builtin => "built in".to_string(),
                    _ => format!("given with --plugin {}", plugin.source),
                }
            ),
        ));
    };
    let _changing = service.plugin_changes.lock().await;
    let file = path.clone();
    blocking(move || match std::fs::remove_file(&file) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot delete {}: {e}", file.display()),
        )),
    })
    .await?;
    service.registry.remove_dir_plugin(&path);
    tracing::info!("plugin {name} removed ({} deleted)", path.display());
    Ok(StatusCode::NO_CONTENT)
}

impl Service {
    /// Where an upload of plugin `name` is written, if it may be: the
    /// name is valid, and the plugin in use by that name (if any) is one
    /// an upload replaces.
    fn upload_path(&self, name: &str) -> Result<PathBuf, ApiError> {
        if !crate::model::valid_name(name) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "{:?} is not a plugin name (1-64 lowercase letters, digits and -)",
                    crate::model::excerpt(name)
                ),
            ));
        }
        let Some(dir) = &self.settings.uploads else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "this daemon has no plugin folder to keep uploads in: start it with --plugin-dir",
            ));
        };
        let path = dir.join(format!("{name}.wasm"));
        let conflict = |text: String| Err(ApiError::new(StatusCode::CONFLICT, text));
        match self.registry.get(name).map(|p| p.source.clone()) {
            Some(crate::engine::PluginSource::File(file)) => conflict(format!(
                "plugin {name} was given with --plugin {}; an upload cannot take its place",
                file.display()
            )),
            Some(crate::engine::PluginSource::Dir(other)) if other != path => conflict(format!(
                "plugin {name} comes from {}; replace or delete that file instead",
                other.display()
            )),
            _ => Ok(path),
        }
    }
}

fn plugin_json(plugin: &crate::engine::LoadedPlugin) -> serde_json::Value {
    let mut value = serde_json::to_value(&plugin.info).unwrap_or_default();
    value["source"] = plugin.source.to_string().into();
    value["digest"] = plugin.digest.clone().into();
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_record_gets_its_number_first() {
        let record = r#"{"type":"finding","kind":"open-port"}"#;
        let with = with_id(7, record);
        assert_eq!(with, r#"{"id":7,"type":"finding","kind":"open-port"}"#);
        let value: serde_json::Value = serde_json::from_str(&with).unwrap();
        assert_eq!(value["kind"], "open-port");
        assert_eq!(with_id(1, "{}"), r#"{"id":1}"#);
        assert_eq!(with_id(1, " { } "), r#"{"id":1}"#);
    }

    #[test]
    fn errors_name_the_field_their_flag_stands_for() {
        assert_eq!(
            mentioned_field("--plugin-arg port.x: unknown key"),
            Some("plugin_args")
        );
        assert_eq!(
            mentioned_field("www.test is a host name; add the dns plugin to --plugins"),
            Some("plugins")
        );
        assert_eq!(
            mentioned_field("--shard needs --seed (or --ordered)"),
            Some("shard")
        );
        assert_eq!(mentioned_field("nothing here"), None);
        let e = scan_args(&[
            "scan".into(),
            "--ports=99999".into(),
            "--".into(),
            "127.0.0.1".into(),
        ])
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("ports"), "{e:?}");
        assert_eq!(e.status, 422);
        let e = scan_args(&["scan".into(), "--".into(), "300.1.1.1/99".into()]).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("targets"), "{e:?}");
    }
}
