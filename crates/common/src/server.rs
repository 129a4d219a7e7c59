//! The HTTP scaffolding every service shares: one `app()` builder (middleware,
//! extractor configs, health routes, OpenAPI + Swagger UI, JSON 404) and a runner
//! that drains gracefully on SIGTERM/SIGINT.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{web as aweb, App, HttpRequest, HttpResponse};
use paperclip::actix::{web, OpenApiExt};
use paperclip::v2::models::{DefaultApiRaw, Info};
use slog::Logger;

use crate::config::{ServerSettings, ServiceSettings};
use crate::error::ApiError;
use crate::health::{self, Readiness};
use crate::http::configure_extractors;
use crate::metrics::{self, Metrics};
use crate::middleware::request_context;

/// What `app()` needs to know about a service.
#[derive(Clone)]
pub struct AppContext {
    /// Short name, e.g. `auth`.
    pub service: &'static str,
    /// Public path prefix, e.g. `/api/v1/auth`.
    pub prefix: &'static str,
    pub title: &'static str,
    pub logger: Logger,
    pub readiness: Readiness,
    pub metrics: Metrics,
    pub json_limit: usize,
    /// What the OpenAPI document says beyond the handlers' signatures.
    pub contract: &'static crate::openapi::Contract,
}

/// Swagger UI (5.x, from `utoipa-swagger-ui`) for the service's own spec only: the
/// spec URL is fixed in its configuration and `?url=`/`?configUrl=` are ignored
/// (`queryConfigEnabled: false`), so no foreign spec is ever rendered on our origin.
async fn docs_file(
    req: HttpRequest,
    config: aweb::Data<std::sync::Arc<utoipa_swagger_ui::Config<'static>>>,
) -> Result<HttpResponse, ApiError> {
    let tail = req.match_info().get("tail").unwrap_or_default();
    match utoipa_swagger_ui::serve(tail, config.get_ref().clone()) {
        Ok(Some(file)) => Ok(HttpResponse::Ok()
            .content_type(file.content_type)
            // The UI's own scripts and styles only; the spec comes from our origin.
            .insert_header((
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
            ))
            .body(file.bytes.into_owned())),
        Ok(None) => not_found(req).await,
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// Builds a service's App: `routes` registers the service's own routes inside its
/// prefix scope. Add the service's state with `.app_data()` on the result.
pub fn app(
    ctx: &AppContext,
    routes: fn(&mut web::ServiceConfig),
    spans: Option<crate::trace::SpanExport>,
    served_spec: ServedSpec,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let logger = ctx.logger.clone();
    let recorder = ctx.metrics.clone();
    let (prefix, contract) = (ctx.prefix, ctx.contract);
    let spec_path = format!("{}/openapi.json", ctx.prefix);
    let docs_path = format!("{}/docs", ctx.prefix);
    let spec = DefaultApiRaw {
        info: Info {
            title: ctx.title.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: Some(format!("The PeerMesh {} service.", ctx.service)),
            ..Default::default()
        },
        ..Default::default()
    };

    let app = App::new()
        .wrap(from_fn(move |req, next| {
            request_context(logger.clone(), recorder.clone(), spans.clone(), req, next)
        }))
        .configure(|cfg| configure_extractors(cfg, ctx.json_limit))
        .app_data(aweb::Data::new(ctx.readiness.clone()))
        .app_data(aweb::Data::new(ctx.metrics.clone()))
        // For the operators' scraper on the service's own port; the gateway never routes it.
        .route("/metrics", aweb::get().to(metrics::handler))
        // Before the service's scope, which would swallow these paths.
        .app_data(aweb::Data::new(std::sync::Arc::new(
            utoipa_swagger_ui::Config::new([spec_path.clone()]).query_config_enabled(false),
        )))
        // A scope matches its prefix as plain text: the `{tail:.*}` expression inside runs
        // for the docs only (as a resource of the app it ran for every request).
        .service({
            let target = format!("{docs_path}/");
            aweb::scope(&docs_path)
                .route(
                    "",
                    aweb::get().to(move || {
                        let target = target.clone();
                        async move {
                            HttpResponse::PermanentRedirect()
                                .insert_header(("Location", target))
                                .finish()
                        }
                    }),
                )
                .service(aweb::resource("/{tail:.*}").route(aweb::get().to(docs_file)))
        })
        .app_data(aweb::Data::new(served_spec.clone()))
        .service(aweb::resource(spec_path).route(aweb::get().to(spec_file)))
        .default_service(aweb::to(not_found))
        .wrap_api_with_spec(spec)
        .route("/health", web::get().to(health::health))
        .route("/ready", web::get().to(health::ready))
        .service(
            web::scope(ctx.prefix)
                .route("/health", web::get().to(health::health))
                .route("/ready", web::get().to(health::ready))
                .configure(routes),
        );
    // Every route is registered by now, so the document is complete. It is made once
    // (see `Application::start`); the workers serve the same bytes.
    if served_spec.get().is_some() {
        return app.build();
    }
    let served = served_spec.clone();
    app.with_raw_json_spec_v3(move |app, mut spec| {
        served.get_or_init(|| {
            crate::openapi::finish(&mut spec, prefix, contract);
            serde_json::to_vec(&spec).unwrap_or_default().into()
        });
        app
    })
    .build()
}

/// The service's OpenAPI 3 document, finished by [`crate::openapi`], as JSON: made
/// once and shared by the workers (as a tree of values it held ~2.6 MiB per worker,
/// most of an idle service's heap).
pub type ServedSpec = std::sync::Arc<std::sync::OnceLock<actix_web::web::Bytes>>;

/// Makes the document once, before the workers start (each worker making its own left
/// ~2.5 MiB of its transient copies in the worker's allocator arena). It is made on a
/// thread of its own and copied out, so that all its transient memory is freed in that
/// thread's arena, which glibc then gives back (made on this thread, it stayed in the
/// main heap: auth idled at 4.1 MiB of heap instead of 1.3).
fn served_spec(ctx: &AppContext, routes: fn(&mut web::ServiceConfig)) -> ServedSpec {
    let made = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let made = ServedSpec::default();
                drop(app(ctx, routes, None, made.clone()));
                made.get().cloned()
            })
            .join()
            .ok()
            .flatten()
    });
    let spec = ServedSpec::default();
    if let Some(made) = made {
        let _ = spec.set(actix_web::web::Bytes::copy_from_slice(&made));
    }
    spec
}

async fn spec_file(
    req: HttpRequest,
    spec: aweb::Data<ServedSpec>,
) -> Result<HttpResponse, ApiError> {
    match spec.get() {
        Some(spec) => Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(spec.clone())),
        None => not_found(req).await,
    }
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

/// Binds `host:port` (port 0 picks a free one).
pub fn bind(settings: &ServerSettings, default_port: u16) -> std::io::Result<TcpListener> {
    let port = settings.port.unwrap_or(default_port);
    TcpListener::bind((settings.host.as_str(), port))
}

/// Serves until SIGTERM or SIGINT, then drains: `/ready` turns 503, listeners close,
/// in-flight requests get the shutdown timeout to finish.
pub async fn run_until_stopped(
    server: Server,
    readiness: Readiness,
    logger: Logger,
) -> std::io::Result<()> {
    let handle = server.handle();
    let watcher = tokio::spawn(async move {
        let signal = wait_for_signal().await;
        slog::info!(logger, "shutting down"; "signal" => signal);
        readiness.start_draining();
        handle.stop(true).await;
    });
    let result = server.await;
    watcher.abort();
    result
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return "none";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "ctrl-c"
}

/// A built, listening service: tests read its port, `main` runs it until a signal.
pub struct Application {
    port: u16,
    server: Server,
    readiness: Readiness,
    logger: Logger,
    spans: Option<crate::trace::SpanExport>,
    on_stop: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>>,
}

/// What every service's handlers find as app data: its own state, the token
/// validator and the accounts closed lately (whose tokens are refused).
#[derive(Clone)]
pub struct Shared<T> {
    pub state: T,
    pub validator: crate::jwt::JwtValidator,
    pub closed: crate::auth::ClosedAccounts,
}

impl<T: Clone + Send + Sync + 'static> Shared<T> {
    /// Registers the three for the handlers' extractors.
    fn register(&self) -> impl Fn(&mut aweb::ServiceConfig) + Clone + Send + 'static {
        let state = aweb::Data::new(self.state.clone());
        let validator = aweb::Data::new(self.validator.clone());
        let closed = aweb::Data::new(self.closed.clone());
        move |cfg| {
            cfg.app_data(state.clone())
                .app_data(validator.clone())
                .app_data(closed.clone());
        }
    }
}

impl Application {
    /// Starts serving on `listener` with a service's routes and what its handlers share.
    pub fn serve<T: Clone + Send + Sync + 'static>(
        ctx: AppContext,
        listener: TcpListener,
        settings: &ServerSettings,
        routes: fn(&mut web::ServiceConfig),
        shared: Shared<T>,
    ) -> std::io::Result<Self> {
        Self::start(ctx, listener, settings, routes, shared.register())
    }

    /// Starts serving on `listener`. `state` registers the service's own app data.
    fn start<S>(
        ctx: AppContext,
        listener: TcpListener,
        settings: &ServerSettings,
        routes: fn(&mut web::ServiceConfig),
        state: S,
    ) -> std::io::Result<Self>
    where
        S: Fn(&mut aweb::ServiceConfig) + Clone + Send + 'static,
    {
        let port = listener.local_addr()?.port();
        let spans = settings
            .otlp_traces_endpoint()
            .map(|endpoint| crate::trace::SpanExport::new(ctx.service, &endpoint))
            .transpose()
            .map_err(std::io::Error::other)?;
        if let Some(endpoint) = settings.otlp_traces_endpoint() {
            slog::info!(ctx.logger, "exporting spans over OTLP"; "endpoint" => endpoint);
        }
        let exported = spans.clone();
        let readiness = ctx.readiness.clone();
        let logger = ctx.logger.clone();
        let workers = settings
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1);
        let spec = served_spec(&ctx, routes);
        // Signals are ours to handle (see `run_until_stopped`).
        let server = actix_web::HttpServer::new(move || {
            let state = state.clone();
            app(&ctx, routes, exported.clone(), spec.clone()).configure(move |cfg| state(cfg))
        })
        .listen(listener)?
        .disable_signals()
        .workers(workers)
        .shutdown_timeout(settings.shutdown_timeout_secs)
        .client_request_timeout(Duration::from_secs(30))
        .keep_alive(Duration::from_secs(75))
        .run();
        Ok(Self {
            port,
            server,
            readiness,
            logger,
            spans,
            on_stop: None,
        })
    }

    /// Work to await after the server has drained, before the process exits (e.g.
    /// background workers finishing or handing back their jobs; they see the
    /// shutdown through [`Readiness::is_draining`]).
    pub fn on_stop(mut self, f: impl std::future::Future<Output = ()> + 'static) -> Self {
        self.on_stop = Some(Box::pin(f));
        self
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server from elsewhere (tests).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let readiness = self.readiness.clone();
        let result = run_until_stopped(self.server, self.readiness, self.logger).await;
        // However the server stopped (a signal, or a handle in tests), background work
        // winds down now.
        readiness.start_draining();
        if let Some(on_stop) = self.on_stop {
            on_stop.await;
        }
        if let Some(spans) = self.spans {
            let _ = tokio::task::spawn_blocking(move || spans.flush()).await;
        }
        result
    }
}

pub type StartupError = Box<dyn std::error::Error + Send + Sync>;

/// The commands every service binary takes; without one it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum BasicCommand {
    /// Run the service (what the binary does without a command).
    Serve,
    /// Apply the database migrations that are missing, print them, and exit (start-up
    /// applies them too unless <PREFIX>RUN_MIGRATIONS=false).
    Migrate,
    /// Exit 0 when the service on this machine answers `GET /health` within 3 s (for
    /// container health checks in images without curl or a shell).
    Healthcheck,
}

/// Runs a service binary's basic `command` (`None` serves): loads the settings from
/// the environment, then serves what `build` makes, applies migrations with
/// `migrate`, or checks health.
pub fn main<T, B, Fut, M>(
    service: &'static str,
    command: Option<BasicCommand>,
    build: B,
    migrate: M,
) -> std::process::ExitCode
where
    T: ServiceSettings,
    B: FnOnce(T, Logger) -> Fut,
    Fut: std::future::Future<Output = Result<Application, StartupError>>,
    M: FnOnce(&T) -> Result<Vec<String>, String>,
{
    let settings = match crate::config::load::<T>(std::env::vars()) {
        Ok(s) => s,
        Err(err) => return fail(service, None, &err.to_string()),
    };
    match command.unwrap_or(BasicCommand::Serve) {
        BasicCommand::Healthcheck => return healthcheck(&settings),
        BasicCommand::Migrate => {
            return match migrate(&settings) {
                Ok(applied) if applied.is_empty() => {
                    println!("{service}: the database is up to date");
                    std::process::ExitCode::SUCCESS
                }
                Ok(applied) => {
                    println!("{service}: applied {}", applied.join(", "));
                    std::process::ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("{service}: migrations failed: {err}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
        BasicCommand::Serve => {}
    }
    let level = settings.server().log_level.clone();
    let (logger, _guard) = match crate::logging::init(service, level.as_deref()) {
        Ok(pair) => pair,
        Err(err) => return fail(service, None, &err),
    };
    let result = actix_web::rt::System::new().block_on(async {
        let app = build(settings, logger.clone()).await?;
        slog::info!(logger, "listening"; "port" => app.port());
        app.run_until_stopped().await?;
        slog::info!(logger, "stopped");
        Ok::<(), StartupError>(())
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => fail(service, Some(&logger), &err.to_string()),
    }
}

/// Prints what an operator's command answered (its text on stdout, or why it failed
/// on stderr) and gives the exit code.
pub fn print_outcome(outcome: Result<String, String>) -> std::process::ExitCode {
    match outcome {
        Ok(out) => {
            if !out.is_empty() {
                println!("{out}");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn fail(service: &'static str, logger: Option<&Logger>, reason: &str) -> std::process::ExitCode {
    match logger {
        Some(logger) => slog::crit!(logger, "cannot start"; "error" => reason),
        None => {
            if let Ok((logger, _guard)) = crate::logging::init(service, None) {
                slog::crit!(logger, "cannot start"; "error" => reason);
            }
        }
    }
    std::process::ExitCode::FAILURE
}

/// `<binary> healthcheck`: exit 0 when the service on this machine answers `GET /health`
/// with 200 within 3 s. For container health checks in images without curl or a shell.
fn healthcheck<T: ServiceSettings>(settings: &T) -> std::process::ExitCode {
    use std::io::{Read, Write};
    let port = settings.server().port.unwrap_or(T::DEFAULT_PORT);
    let timeout = Duration::from_secs(3);
    let answer = (|| -> std::io::Result<String> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut head = [0u8; 64];
        let n = stream.read(&mut head)?;
        Ok(String::from_utf8_lossy(&head[..n]).into_owned())
    })();
    match answer {
        Ok(text) if text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.0 200") => {
            std::process::ExitCode::SUCCESS
        }
        Ok(text) => {
            eprintln!("unhealthy: {}", text.lines().next().unwrap_or_default());
            std::process::ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("unhealthy: 127.0.0.1:{port}: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
