//! `Application::build(settings)`: opens the store, migrates it, binds the
//! listener and assembles the server. Tests use it exactly as `serve` does.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;

use crate::api;
use crate::api::rocket_chat::events::StreamSlots;
use crate::auth::two_factor;
use crate::config::{CorsOrigin, DatabaseUrl, Settings};
use crate::db::{self, DbError, DbPool};
use crate::domain::secret_box::SecretBox;
use crate::domain::{clock, password};
use crate::limits::{Bulkhead, Hashing};
use crate::store::sessions::Lifetime;
use crate::store::{self, settings as server_settings};
use crate::telemetry;
use crate::telemetry::metrics::Metrics;
use crate::webhooks::{self, Webhooks};

use super::sweeper::spawn_sweeper;
use crate::state::{AppState, TwoFactorLimits};

pub struct Application {
    port: u16,
    host: String,
    server: Server,
    /// The operators' listener (`SESSIOND_METRICS_BIND`), if set.
    management: Option<(Server, String)>,
    /// Set when this start created the first administrator.
    pub initial_admin_password: Option<String>,
    /// Set when this start generated the key file.
    pub created_key_file: Option<std::path::PathBuf>,
    /// Webhook delivery, when endpoints are configured.
    webhooks: Option<webhooks::Running>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate().map_err(anyhow::Error::msg)?;
        let settings = Arc::new(settings);
        let pool = DbPool::new(&settings);
        let secrets = load_secret_box(&settings)?;
        let (box_, created_key_file) = secrets;

        let initial_admin_password = prepare_store(&settings, box_.key_check()).await?;
        let webhooks = Webhooks::prepare(&settings, &pool).await?;

        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("binding {}", settings.bind))?;
        let address = listener.local_addr()?;
        let management_listener = match &settings.metrics_bind {
            Some(bind) => Some(
                TcpListener::bind(bind)
                    .with_context(|| format!("binding SESSIOND_METRICS_BIND {bind}"))?,
            ),
            None => None,
        };
        let metrics = Metrics::new(pool.metrics());

        let state = web::Data::new(AppState {
            db: pool.clone(),
            lifetime: Lifetime {
                max_lifetime_seconds: settings.max_lifetime_seconds,
                activity_interval_seconds: settings.activity_interval_seconds,
            },
            two_factor_limits: TwoFactorLimits {
                max_failures: settings.two_factor_max_failures,
                window_seconds: settings.two_factor_failure_window_seconds,
            },
            bulkhead: Bulkhead::new(
                settings.expensive_query_slots(),
                settings.expensive_queries_per_user,
                settings.db_timeout(),
            ),
            hashing: Hashing::new(
                settings.hash_slots(),
                settings.hash_queue,
                settings.db_timeout(),
            ),
            secrets: box_,
            instance_id: settings
                .instance_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            settings: settings.clone(),
            metrics: metrics.clone(),
            event_streams: StreamSlots::new(
                settings.event_streams,
                settings.event_streams_per_user,
            ),
        });
        let metrics = web::Data::new(metrics);
        let max_body = settings.max_body_bytes;
        let cors_origins = settings.cors_origins.clone();
        let blocking_threads = (settings.db_pool_size as usize).max(4);
        let (public_state, public_metrics) = (state.clone(), metrics.clone());
        let mut server = HttpServer::new(move || {
            App::new()
                .into_utoipa_app()
                .openapi(api::docs::ApiDoc::openapi())
                .map(|app| {
                    app.wrap(from_fn(api::methods::head_as_get))
                        .wrap(from_fn(api::body_deadline::body_deadline))
                        .wrap(cors(&cors_origins))
                        .wrap(from_fn(telemetry::observe))
                        .app_data(public_state.clone())
                        .app_data(public_metrics.clone())
                })
                .configure(|cfg| api::configure(cfg, max_body))
                .openapi_service(api::docs::service)
                .map(|app| app.configure(api::configure_rest))
                .into_app()
        })
        .shutdown_timeout(30)
        // A client that closes its side of the connection is gone: the
        // request it was waiting for is dropped at once. This is how a
        // closed event stream gives its slot back without waiting for a
        // write to fail, and how work for a client that left stops.
        .h1_allow_half_closed(false)
        // Store work runs on the blocking pool. Threads beyond the
        // connections they can use would only wait for one, each with its
        // own stack and allocator arena; queued work waits the same.
        .worker_max_blocking_threads(blocking_threads)
        .listen(listener)?;
        if settings.workers > 0 {
            server = server.workers(settings.workers);
        }
        let server = server.run();
        let management = match management_listener {
            Some(listener) => {
                let address = listener.local_addr()?;
                let (state, metrics) = (state.clone(), metrics.clone());
                let server = HttpServer::new(move || {
                    App::new()
                        .wrap(from_fn(telemetry::observe))
                        .app_data(state.clone())
                        .app_data(metrics.clone())
                        .configure(api::configure_management)
                })
                .workers(1)
                .shutdown_timeout(5)
                .listen(listener)?
                .run();
                Some((server, format!("http://{address}")))
            }
            None => None,
        };

        spawn_sweeper(pool.clone(), settings.clone(), state.metrics.clone());
        api::rocket_chat::events::close_streams_on_stop(state.clone());
        let webhooks = webhooks
            .map(|webhooks| webhooks.start(pool, state.instance_id.clone(), state.metrics.clone()));

        Ok(Application {
            port: address.port(),
            host: address.ip().to_string(),
            server,
            management,
            initial_admin_password,
            created_key_file,
            webhooks,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn address(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// The operators' listener's address, when `SESSIOND_METRICS_BIND` is set.
    pub fn management_address(&self) -> Option<&str> {
        self.management
            .as_ref()
            .map(|(_, address)| address.as_str())
    }

    /// Stops the server from elsewhere; `stop(false)` ends it at once,
    /// `stop(true)` lets in-flight requests finish. The operators'
    /// listener stops with it.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM, then finishes in-flight requests.
    /// Webhook delivery stops with the server, giving its leases up.
    pub async fn run_until_stopped(mut self) -> std::io::Result<()> {
        let webhooks = self.webhooks.take();
        let served = self.serve().await;
        if let Some(webhooks) = webhooks {
            webhooks.stop().await;
        }
        served
    }

    async fn serve(self) -> std::io::Result<()> {
        let Some((management, _)) = self.management else {
            return self.server.await;
        };
        let handle = management.handle();
        let management = tokio::spawn(management);
        let served = self.server.await;
        handle.stop(true).await;
        let _ = management.await;
        served
    }
}

/// Migrates the store, checks the secret key against it and creates the
/// first administrator. A store that cannot be reached yet is retried, with
/// one log line per attempt, until it answers or the start-up timeout
/// (`SESSIOND_DB_STARTUP_TIMEOUT_SECONDS`, 0 = no limit) passes.
async fn prepare_store(
    settings: &Arc<Settings>,
    key_check: &str,
) -> anyhow::Result<Option<String>> {
    let started = std::time::Instant::now();
    let limit = Duration::from_secs(settings.db_startup_timeout_seconds);
    let mut pause = Duration::from_millis(500);
    loop {
        let (attempt_settings, key_check) = (settings.clone(), key_check.to_owned());
        let attempt = web::block(move || -> anyhow::Result<Option<String>> {
            let mut conn = db::establish(&attempt_settings)?;
            db::run_migrations(&mut conn, attempt_settings.db_pooler)
                .context("running migrations")?;
            let stored =
                server_settings::get_or_insert(&mut conn, server_settings::KEY_CHECK, &key_check)?;
            anyhow::ensure!(
                stored == key_check,
                "the secret key does not match the one this store was set up with; \
                 set SESSIOND_SECRET_KEY (or SESSIOND_SECRET_KEY_FILE) to the original key"
            );
            create_first_admin(&mut conn)
        })
        .await
        .context("start-up was interrupted")?;
        let error = match attempt {
            Ok(password) => return Ok(password),
            Err(error) => error,
        };
        let unreachable = matches!(
            error.downcast_ref::<DbError>(),
            Some(DbError::Unavailable(_))
        );
        let gave_up = !limit.is_zero() && started.elapsed() + pause > limit;
        if !unreachable || gave_up {
            return Err(error)
                .with_context(|| format!("preparing the store at {}", settings.database_url));
        }
        tracing::warn!(
            store = %settings.database_url,
            cause = %format!("{error:#}"),
            retry_in_ms = pause.as_millis() as u64,
            "waiting for the database"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

/// Cross-origin access for the origins in `SESSIOND_CORS_ORIGINS`, and for
/// no other: a disallowed origin's preflight is refused and its requests get
/// no `Access-Control-Allow-Origin`, so the browser keeps the answer from it.
fn cors(origins: &[CorsOrigin]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "HEAD", "POST"])
        .allowed_headers([
            "x-user-id",
            "x-auth-token",
            two_factor::CODE_HEADER,
            "content-type",
            telemetry::REQUEST_ID_HEADER,
        ])
        .expose_headers([
            "x-total-count",
            "link",
            telemetry::REQUEST_ID_HEADER,
            "retry-after",
        ])
        .max_age(600);
    for origin in origins {
        cors = cors.allowed_origin(origin.as_str());
    }
    cors
}

fn load_secret_box(settings: &Settings) -> anyhow::Result<(SecretBox, Option<std::path::PathBuf>)> {
    if let Some(key) = &settings.secret_key {
        return Ok((SecretBox::from_base64(key.expose())?, None));
    }
    let path = settings.key_file();
    let (secret_box, created) = SecretBox::load_or_create(&path)?;
    if created && matches!(settings.database_url, DatabaseUrl::Postgres(_)) {
        tracing::warn!(
            path = %path.display(),
            "generated a new secret key file; every instance sharing this Postgres store needs the same key (SESSIOND_SECRET_KEY)"
        );
    }
    Ok((secret_box, created.then_some(path)))
}

/// On a store with no users, creates `admin` with a random password and
/// returns it, to be printed once.
fn create_first_admin(conn: &mut db::Conn) -> anyhow::Result<Option<String>> {
    if store::users::count(conn)? > 0 {
        return Ok(None);
    }
    let password = password::generate();
    let hash = password::hash(&password).map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    let now = clock::now();
    let admin = crate::domain::username::Username::parse("admin").map_err(anyhow::Error::msg)?;
    let created = store::users::create(conn, &admin, "Administrator", &hash, true, now);
    match created {
        Ok(_) => Ok(Some(password)),
        // Another instance created it first.
        Err(e) if store::is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
