//! Build the actix application, bind the listener, expose the port.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{NormalizePath, TrailingSlash};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use tracing_actix_web::TracingLogger;

use crate::api;
use crate::config::{DatabaseSettings, ServerSettings};
use crate::crypto::SealingKey;
use crate::ops;
use crate::pull::scheduler;
use crate::retention;
use crate::scim::{self, ScimState};
use crate::store::Store;
use crate::webhooks;

pub struct Application {
    port: u16,
    server: Server,
    /// The scheduler, the webhook worker and the event retention, stopped
    /// with the server.
    background: Vec<tokio::task::JoinHandle<()>>,
    scim_log: scim::request_log::Recorder,
}

impl Application {
    /// Connect, migrate, bind, and start the background tasks: the
    /// scheduler (unless turned off) with the key that opens connection
    /// credentials, and the event retention when one is set. `listen` may
    /// use port 0 (tests).
    pub async fn build(
        db: &DatabaseSettings,
        settings: ServerSettings,
        key: Option<SealingKey>,
    ) -> anyhow::Result<Self> {
        let store = Store::connect(&db.database_url, db.database_max_connections)
            .await
            .context("connecting to the database")?;
        store.migrate().await.context("migrating the database")?;
        let mut background = Vec::new();
        if settings.scheduler {
            let owner = format!("serve:{}", uuid::Uuid::now_v7());
            let every = Duration::from_secs(settings.scheduler_tick_secs.max(1));
            background.push(tokio::spawn(scheduler::run_forever(
                store.clone(),
                key.clone(),
                owner,
                every,
            )));
        }
        if settings.webhook_delivery {
            // Any number of replicas may deliver: an endpoint's lease holds
            // it to one at a time.
            let worker = webhooks::deliver::Worker::new(
                store.clone(),
                key.clone(),
                settings.webhook_settings(),
                format!("serve:{}", uuid::Uuid::now_v7()),
            )
            .map_err(|why| anyhow::anyhow!(why))?;
            background.push(tokio::spawn(worker.run_forever()));
        }
        if let Some(retention) = settings.event_retention {
            background.push(tokio::spawn(retention::run_forever(
                store.clone(),
                retention,
            )));
        }
        if settings.scim_log.scim_log_keep > 0 {
            background.push(tokio::spawn(retention::scim_log_forever(
                store.clone(),
                settings.scim_log.scim_log_retention,
            )));
        }
        let mut app = Self::with_store(store, settings, key)?;
        app.background = background;
        Ok(app)
    }

    /// The HTTP server alone (no background tasks); `key` seals and opens the
    /// credentials of connections the host API creates and runs.
    pub fn with_store(
        store: Store,
        settings: ServerSettings,
        key: Option<SealingKey>,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.listen).with_context(|| {
            format!(
                "cannot listen on {} (choose another address with --listen or \
                     DIRSYNC_LISTEN)",
                settings.listen
            )
        })?;
        let port = listener.local_addr()?.port();
        let public_url = settings.public_url.clone().unwrap_or_else(|| {
            let host = settings
                .listen
                .rsplit_once(':')
                .map_or(settings.listen.as_str(), |(h, _)| h);
            format!("http://{host}:{port}")
        });
        let keys = api::auth::Keys::from_settings(&settings.api)
            .map_err(|why| anyhow::anyhow!("the host API's keys: {why}"))?;
        if keys.is_none() {
            // SCIM and the scheduler run without the host API; every
            // /api/v1 request answers 503 with the same words.
            tracing::error!("{}", api::auth::NO_KEY);
        }
        let scim_base_url = format!("{}/scim/v2", public_url.trim_end_matches('/'));
        let tokens = scim::auth::TokenCache::new(settings.token_cache_ttl);
        let api = web::Data::new(api::ApiState {
            store: store.clone(),
            keys,
            key: key.clone(),
            scim_base_url: scim_base_url.clone(),
            public_url: public_url.clone(),
            scim_tokens: tokens.clone(),
            webhooks: settings.webhook_settings(),
            max_page_bytes: settings.max_page_bytes,
        });
        let dashboard = web::Data::new(crate::web::WebState {
            store: store.clone(),
            scim_base_url: scim_base_url.clone(),
            scim_tokens: tokens.clone(),
            throttle: crate::web::throttle::Throttle::default(),
            secure_cookies: public_url.starts_with("https://"),
            key,
            portal: crate::web::portal::Settings {
                public_url: public_url.clone(),
                session_ttl: settings.portal_session_ttl,
            },
        });
        let writer =
            crate::reconcile::unit::Writer::new(store.clone(), settings.write_batch as usize);
        let log = scim::request_log::Recorder::start(store.clone(), &settings.scim_log.settings());
        let state = web::Data::new(ScimState {
            log,
            writer,
            store,
            base_url: scim_base_url,
            settings,
            tokens,
        });
        let scim_log = state.log.clone();
        let server = run(listener, state, api, dashboard)?;
        Ok(Application {
            port,
            server,
            background: Vec::new(),
            scim_log,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The SCIM request log's recorder (tests wait on its `flush`).
    pub fn scim_log(&self) -> scim::request_log::Recorder {
        self.scim_log.clone()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        for task in self.background {
            task.abort();
        }
        result
    }
}

fn run(
    listener: TcpListener,
    state: web::Data<ScimState>,
    api: web::Data<api::ApiState>,
    dashboard: web::Data<crate::web::WebState>,
) -> anyhow::Result<Server> {
    let workers = match state.settings.workers {
        0 => std::thread::available_parallelism().map_or(2, usize::from),
        n => n,
    };
    let ops_state = ops::State::new(state.store.clone(), &state.settings);
    let body_timeout = state.settings.body_timeout;
    let server =
        HttpServer::new(move || {
            App::new()
                // Innermost, so the request's log line and series see its 408.
                .wrap(actix_web::middleware::from_fn(ops::body_deadline))
                .wrap(actix_web::middleware::from_fn(ops::observe))
                .wrap(TracingLogger::<ops::RequestSpan>::new())
                // Outermost (the last wrap), so the span and the HTTP series
                // see the path the routes match.
                .wrap(NormalizePath::new(TrailingSlash::Trim))
                .configure(ops::configure(ops_state.clone()))
                .app_data(ops::BodyDeadline(body_timeout))
                .app_data(state.clone())
                // Handlers read bodies and queries through dirsync's own extractors;
                // should actix's ever reject a request, the client still gets a
                // SCIM error body, never plain text.
                .app_data(web::PathConfig::default().error_handler(|err, _| {
                    scim::error::ScimError::not_found(err.to_string()).into()
                }))
                .app_data(web::QueryConfig::default().error_handler(|err, _| {
                    scim::error::ScimError::invalid_value(err.to_string()).into()
                }))
                .app_data(web::JsonConfig::default().error_handler(|err, _| {
                    scim::error::ScimError::invalid_syntax(err.to_string()).into()
                }))
                .configure(|cfg| api::configure(cfg, api.clone()))
                .configure(|cfg| crate::web::configure(cfg, dashboard.clone()))
                .service(
                    web::scope("/scim/v2")
                        .wrap(actix_web::middleware::from_fn(
                            scim::target::refuse_control_characters,
                        ))
                        .wrap(actix_web::middleware::from_fn(
                            scim::render::answer_in_accepted_media_type,
                        ))
                        // Outermost of the scope's: the log sees the answer
                        // as the client gets it.
                        .wrap(actix_web::middleware::from_fn(scim::request_log::record))
                        .configure(scim::configure),
                )
                .default_service(web::to(scim::not_found))
        })
        .workers(workers)
        .listen(listener)?
        .run();
    Ok(server)
}
