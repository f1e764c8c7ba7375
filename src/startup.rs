//! Build the actix application, bind the listener, expose the port.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::{NormalizePath, TrailingSlash};
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use tracing_actix_web::TracingLogger;

use crate::config::{DatabaseSettings, ServerSettings};
use crate::scim::{self, ScimState};
use crate::store::Store;

pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Connect, migrate, bind. `listen` may use port 0 (tests).
    pub async fn build(db: &DatabaseSettings, settings: ServerSettings) -> anyhow::Result<Self> {
        let store = Store::connect(&db.database_url, db.database_max_connections)
            .await
            .context("connecting to the database")?;
        store.migrate().await.context("migrating the database")?;
        Self::with_store(store, settings)
    }

    pub fn with_store(store: Store, settings: ServerSettings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.listen)
            .with_context(|| format!("binding {}", settings.listen))?;
        let port = listener.local_addr()?.port();
        let public_url = settings.public_url.clone().unwrap_or_else(|| {
            let host = settings
                .listen
                .rsplit_once(':')
                .map_or(settings.listen.as_str(), |(h, _)| h);
            format!("http://{host}:{port}")
        });
        let state = web::Data::new(ScimState {
            store,
            base_url: format!("{}/scim/v2", public_url.trim_end_matches('/')),
            settings,
            directories: Default::default(),
        });
        let server = run(listener, state)?;
        Ok(Application { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn run(listener: TcpListener, state: web::Data<ScimState>) -> anyhow::Result<Server> {
    let workers = match state.settings.workers {
        0 => std::thread::available_parallelism().map_or(2, usize::from),
        n => n,
    };
    let server =
        HttpServer::new(move || {
            App::new()
                .wrap(NormalizePath::new(TrailingSlash::Trim))
                .wrap(TracingLogger::default())
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
                .route(
                    "/healthz",
                    web::get().to(|| async { HttpResponse::Ok().body("ok") }),
                )
                .service(
                    web::scope("/scim/v2")
                        .wrap(actix_web::middleware::from_fn(
                            scim::render::answer_in_accepted_media_type,
                        ))
                        .configure(scim::configure),
                )
                .default_service(web::to(scim::not_found))
        })
        .workers(workers)
        .listen(listener)?
        .run();
    Ok(server)
}
