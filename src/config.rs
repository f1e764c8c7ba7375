//! One typed configuration, read from flags and `DIRSYNC_*` environment variables.

use clap::Args;

use crate::crypto::Secret;
use crate::retention::Retention;

/// Settings shared by every command that touches the database.
#[derive(Debug, Clone, Args)]
pub struct DatabaseSettings {
    /// The database: `sqlite://FILE?mode=rwc` (embedded, the default) or
    /// `postgres://USER@HOST/DB`.
    #[arg(
        long,
        env = "DIRSYNC_DATABASE_URL",
        default_value = "sqlite://dirsync.db?mode=rwc",
        global = true
    )]
    pub database_url: String,

    /// Connections in the server's pool (`serve`; other commands use two).
    #[arg(
        long,
        env = "DIRSYNC_DATABASE_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    pub database_max_connections: u32,
}

/// `--max-page-bytes` unless set: 4 MiB.
pub const DEFAULT_MAX_PAGE_BYTES: u64 = 4_194_304;

/// Settings of the HTTP server.
#[derive(Debug, Clone, Args)]
pub struct ServerSettings {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, env = "DIRSYNC_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// The URL clients reach this server at; `meta.location` and `Location`
    /// are built from it. Defaults to `http://LISTEN`.
    #[arg(long, env = "DIRSYNC_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Largest page a list or search returns (RFC 7644 §3.4.2.4 `count`).
    #[arg(long, env = "DIRSYNC_MAX_PAGE_SIZE", default_value_t = 1000)]
    pub max_page_size: u64,

    /// Page size when a client gives no `count`.
    #[arg(long, env = "DIRSYNC_DEFAULT_PAGE_SIZE", default_value_t = 100)]
    pub default_page_size: u64,

    /// Most bytes of resources one SCIM list or search response carries,
    /// and of events one page of the host API's event feed or one webhook
    /// message carries: a page that would pass it answers fewer (at least
    /// one), with `itemsPerPage` or `next_after` saying where it ended.
    #[arg(long, env = "DIRSYNC_MAX_PAGE_BYTES", default_value_t = DEFAULT_MAX_PAGE_BYTES, value_parser = clap::value_parser!(u64).range(65_536..))]
    pub max_page_bytes: u64,

    /// Largest request body, in bytes (413 beyond).
    #[arg(long, env = "DIRSYNC_MAX_BODY_BYTES", default_value_t = 1_048_576)]
    pub max_body_bytes: usize,

    /// How long a request's body may take to arrive once its head has
    /// (`30s`, `2m`): a client still sending after that is answered 408
    /// and its connection closed. A `/Bulk` body at its largest must
    /// arrive at its size divided by this (4 MB in 30 s: 140 KB/s).
    #[arg(long, env = "DIRSYNC_BODY_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_timeout: std::time::Duration,

    /// Most operations in one `/Bulk` request.
    #[arg(long, env = "DIRSYNC_BULK_MAX_OPERATIONS", default_value_t = 1000)]
    pub bulk_max_operations: usize,

    /// Largest `/Bulk` request body, in bytes.
    #[arg(
        long,
        env = "DIRSYNC_BULK_MAX_PAYLOAD_BYTES",
        default_value_t = 4_194_304
    )]
    pub bulk_max_payload_bytes: usize,

    /// Most SCIM writes committed in one transaction (group commit): the
    /// writes that arrive while one transaction commits go together in the
    /// next, each in a savepoint of its own. 1 commits each on its own.
    #[arg(long, env = "DIRSYNC_WRITE_BATCH", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub write_batch: u64,

    /// Worker threads (0 = one per core).
    #[arg(long, env = "DIRSYNC_WORKERS", default_value_t = 0)]
    pub workers: usize,

    /// Run pull connections on their schedules (any number of replicas may:
    /// a lease runs each connection on one at a time).
    #[arg(long, env = "DIRSYNC_SCHEDULER", default_value_t = true, action = clap::ArgAction::Set)]
    pub scheduler: bool,

    /// Deliver webhooks (any number of replicas may: a lease delivers each
    /// endpoint from one at a time).
    #[arg(long, env = "DIRSYNC_WEBHOOK_DELIVERY", default_value_t = true, action = clap::ArgAction::Set)]
    pub webhook_delivery: bool,

    /// How often the scheduler looks for due connections, in seconds.
    #[arg(long, env = "DIRSYNC_SCHEDULER_TICK_SECS", default_value_t = 15)]
    pub scheduler_tick_secs: u64,

    /// Delete events older than this (`90d`, `12w`, `36h`; at least an
    /// hour), checked at start and hourly. Unset: events are kept until
    /// `dirsync events prune`.
    #[arg(long, env = "DIRSYNC_EVENT_RETENTION", value_parser = Retention::parse)]
    pub event_retention: Option<Retention>,

    /// How long a replica remembers which directory a SCIM token belongs
    /// to (`0s`: it reads the token on every request). A token revoked, or
    /// a directory deleted, through this replica is refused at once; one
    /// revoked elsewhere (another replica, the CLI) at most this long after.
    #[arg(long, env = "DIRSYNC_TOKEN_CACHE_TTL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub token_cache_ttl: std::time::Duration,

    /// How long a setup portal session lasts from the setup link's use
    /// (`1h`; 5 minutes to 12 hours).
    #[arg(long, env = "DIRSYNC_PORTAL_SESSION_TTL", default_value = "1h", value_parser = portal_session_ttl)]
    pub portal_session_ttl: std::time::Duration,

    #[command(flatten)]
    pub api: ApiSettings,

    #[command(flatten)]
    pub webhooks: WebhookArgs,

    #[command(flatten)]
    pub scim_log: ScimLogArgs,

    /// When set, `/metrics` answers only `Authorization: Bearer <this>`;
    /// unset, it is open (for a scraper on a private network).
    #[arg(
        long,
        env = "DIRSYNC_METRICS_TOKEN",
        hide_env_values = true,
        value_parser = secret
    )]
    pub metrics_token: Option<Secret>,
}

fn secret(value: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(value.to_owned()))
}

/// How the host application's API (`/api/v1`) verifies bearer JWTs. At
/// least one key (a secret, a public key or a JWKS URL) turns the API on.
#[derive(Clone, Args, Default)]
pub struct ApiSettings {
    /// An HS256 secret (at least 32 bytes) tokens may be signed with; repeat
    /// the flag for several (rotation). `dirsync api-token` signs with the
    /// first.
    #[arg(
        long = "api-jwt-secret",
        env = "DIRSYNC_API_JWT_SECRET",
        hide_env_values = true
    )]
    pub jwt_secrets: Vec<String>,

    /// A PEM public key file (RSA: RS256; EC P-256: ES256; Ed25519: EdDSA);
    /// repeat the flag for several. Its file name (without extension) is its
    /// `kid`.
    #[arg(
        long = "api-jwt-public-key",
        env = "DIRSYNC_API_JWT_PUBLIC_KEYS",
        value_delimiter = ','
    )]
    pub jwt_public_keys: Vec<std::path::PathBuf>,

    /// A JWKS URL (https, or http to loopback) whose keys verify tokens by
    /// `kid`; fetched at the first token, cached, and fetched again when a
    /// token names an unknown `kid` (at most once per 30 s).
    #[arg(long = "api-jwks-url", env = "DIRSYNC_API_JWKS_URL")]
    pub jwks_url: Option<String>,

    /// The `iss` every token must carry.
    #[arg(
        long = "api-jwt-issuer",
        env = "DIRSYNC_API_JWT_ISSUER",
        default_value = "dirsync"
    )]
    pub issuer: String,

    /// The `aud` every token must carry.
    #[arg(
        long = "api-jwt-audience",
        env = "DIRSYNC_API_JWT_AUDIENCE",
        default_value = "dirsync-api"
    )]
    pub audience: String,

    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    #[arg(
        long = "api-jwt-leeway-secs",
        env = "DIRSYNC_API_JWT_LEEWAY_SECS",
        default_value_t = 30
    )]
    pub leeway_secs: u64,
}

impl std::fmt::Debug for ApiSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSettings")
            .field(
                "jwt_secrets",
                &format!("{} configured", self.jwt_secrets.len()),
            )
            .field("jwt_public_keys", &self.jwt_public_keys)
            .field("jwks_url", &self.jwks_url)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .finish()
    }
}

impl ApiSettings {
    /// The settings tests use: one HS256 secret.
    pub fn for_tests() -> Self {
        ApiSettings {
            jwt_secrets: vec!["test-secret-of-at-least-thirty-two-bytes!".into()],
            issuer: "dirsync".into(),
            audience: "dirsync-api".into(),
            leeway_secs: 30,
            ..ApiSettings::default()
        }
    }
}

impl ServerSettings {
    /// How the server delivers webhooks: the webhook flags, and a message's
    /// byte budget from `--max-page-bytes`.
    pub fn webhook_settings(&self) -> crate::webhooks::Settings {
        crate::webhooks::Settings {
            max_message_bytes: self.max_page_bytes,
            ..self.webhooks.settings()
        }
    }

    /// Settings for tests and embedding: defaults, listening on a free port.
    pub fn for_tests() -> Self {
        ServerSettings {
            listen: "127.0.0.1:0".into(),
            public_url: None,
            max_page_size: 1000,
            default_page_size: 100,
            max_page_bytes: DEFAULT_MAX_PAGE_BYTES,
            max_body_bytes: 1_048_576,
            body_timeout: std::time::Duration::from_secs(30),
            bulk_max_operations: 1000,
            bulk_max_payload_bytes: 4_194_304,
            write_batch: 32,
            workers: 2,
            scheduler: false,
            webhook_delivery: false,
            scheduler_tick_secs: 15,
            event_retention: None,
            // The default, so every test authenticates through the cache;
            // a test that revokes behind the server's back says so.
            token_cache_ttl: std::time::Duration::from_secs(5),
            portal_session_ttl: std::time::Duration::from_secs(3600),
            api: ApiSettings::for_tests(),
            webhooks: WebhookArgs::for_tests(),
            scim_log: ScimLogArgs::for_tests(),
            metrics_token: None,
        }
    }
}

/// How webhooks are delivered (`serve`) and which URLs an endpoint may have
/// (`serve` and the `webhook` commands).
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    /// Allow `http://` webhook URLs to loopback addresses (development and
    /// tests; never in production).
    #[arg(long, env = "DIRSYNC_WEBHOOK_ALLOW_HTTP_LOOPBACK", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_http_loopback: bool,

    /// Allow webhook URLs whose host is, or resolves to, a private,
    /// link-local or metadata address (a receiver inside your network).
    #[arg(long, env = "DIRSYNC_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private_addresses: bool,

    /// The longest one delivery attempt may take.
    #[arg(long, env = "DIRSYNC_WEBHOOK_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    pub webhook_timeout: std::time::Duration,

    /// The waits after each failed attempt of an event, comma-separated;
    /// after the last one the endpoint is disabled (its events wait in the
    /// outbox until it is enabled again).
    #[arg(
        long,
        env = "DIRSYNC_WEBHOOK_RETRIES",
        default_value = "5s,5m,30m,2h,5h,10h,14h,20h,24h",
        value_delimiter = ',',
        value_parser = humantime::parse_duration
    )]
    pub webhook_retries: Vec<std::time::Duration>,

    /// How long delivery attempts stay in the webhook log (`30d`; at least
    /// an hour); older ones are deleted hourly.
    #[arg(long, env = "DIRSYNC_WEBHOOK_LOG_RETENTION", default_value = "30d", value_parser = Retention::parse)]
    pub webhook_log_retention: Retention,

    /// How long the previous signing secret still signs after a rotation.
    #[arg(long, env = "DIRSYNC_WEBHOOK_ROTATION_OVERLAP", default_value = "24h", value_parser = humantime::parse_duration)]
    pub webhook_rotation_overlap: std::time::Duration,

    /// How long a replica holds an endpoint's delivery lease without
    /// renewing it: after a replica dies, another takes its endpoints over
    /// after this (and re-sends what it had not recorded). At least twice
    /// the timeout.
    #[arg(long, env = "DIRSYNC_WEBHOOK_LEASE_TTL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub webhook_lease_ttl: std::time::Duration,
}

impl WebhookArgs {
    pub fn settings(&self) -> crate::webhooks::Settings {
        crate::webhooks::Settings {
            policy: crate::webhooks::UrlPolicy {
                allow_http_loopback: self.webhook_allow_http_loopback,
                allow_private: self.webhook_allow_private_addresses,
            },
            timeout: self.webhook_timeout,
            retries: self.webhook_retries.clone(),
            rotation_overlap: self.webhook_rotation_overlap,
            log_retention: self.webhook_log_retention.duration(),
            lease_ttl: self.webhook_lease_ttl,
            max_message_bytes: DEFAULT_MAX_PAGE_BYTES,
        }
    }

    /// Tests deliver to receivers on loopback, with the default schedule.
    pub fn for_tests() -> Self {
        WebhookArgs {
            webhook_allow_http_loopback: true,
            webhook_allow_private_addresses: false,
            webhook_timeout: std::time::Duration::from_secs(15),
            webhook_retries: crate::webhooks::default_retries(),
            webhook_rotation_overlap: std::time::Duration::from_secs(24 * 3600),
            webhook_log_retention: Retention::parse("30d").unwrap_or_else(|_| unreachable!()),
            webhook_lease_ttl: std::time::Duration::from_secs(60),
        }
    }
}

/// The per-directory SCIM request log (`scim::request_log`).
#[derive(Debug, Clone, Args)]
pub struct ScimLogArgs {
    /// SCIM requests the log keeps per directory, the newest (0 turns the
    /// log off). Older ones are deleted as new ones are written.
    #[arg(long, env = "DIRSYNC_SCIM_LOG_KEEP", default_value_t = 1000)]
    pub scim_log_keep: u64,

    /// How long a SCIM request stays in the log at most (`7d`, `36h`; at
    /// least an hour); older ones are deleted at start and hourly.
    #[arg(long, env = "DIRSYNC_SCIM_LOG_RETENTION", default_value = "7d", value_parser = Retention::parse)]
    pub scim_log_retention: Retention,

    /// Keep each request's headers and body and its response's body in
    /// the log, with passwords and anything token-like removed.
    #[arg(long, env = "DIRSYNC_SCIM_LOG_BODIES", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub scim_log_bodies: bool,

    /// Records waiting to be written at most: past this a record is
    /// dropped (and counted in `dirsync_scim_log_dropped_total`) rather
    /// than holding a SCIM request up.
    #[arg(long, env = "DIRSYNC_SCIM_LOG_QUEUE", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub scim_log_queue: u64,
}

impl ScimLogArgs {
    pub fn settings(&self) -> crate::scim::request_log::Settings {
        crate::scim::request_log::Settings {
            keep: self.scim_log_keep,
            retention: self.scim_log_retention,
            bodies: self.scim_log_bodies,
            queue: usize::try_from(self.scim_log_queue).unwrap_or(usize::MAX),
        }
    }

    /// Off: the log writes after a request is answered, and a test that
    /// runs the CLI against the same SQLite file right after a SCIM request
    /// would meet that write (a deferred transaction that reads, then
    /// writes, is refused "database is locked" when another process
    /// committed between). The log's own tests turn it on (`defaults`).
    pub fn for_tests() -> Self {
        ScimLogArgs {
            scim_log_keep: 0,
            ..ScimLogArgs::defaults()
        }
    }

    /// The flags' defaults.
    pub fn defaults() -> Self {
        ScimLogArgs {
            scim_log_keep: 1000,
            scim_log_retention: Retention::parse("7d").unwrap_or_else(|_| unreachable!()),
            scim_log_bodies: false,
            scim_log_queue: 10_000,
        }
    }
}

/// How a pull run holds its connection (every command that runs one).
#[derive(Debug, Clone, Args)]
pub struct LeaseSettings {
    /// How long a pull run's lease on its connection lasts without renewal
    /// (`20s`; at least `1s`). A live run renews it every fifth of this; a
    /// process that dies holds its connection at most this long, after
    /// which the next run, or the server's next scheduler tick, marks its
    /// run failed.
    #[arg(
        long,
        env = "DIRSYNC_PULL_LEASE_TTL",
        default_value = "20s",
        value_parser = humantime::parse_duration,
        global = true
    )]
    pub pull_lease_ttl: std::time::Duration,
}

/// The server-held key that seals connector credentials at rest.
#[derive(Clone, Args)]
pub struct KeySettings {
    /// The key that seals pull connections' credentials at rest: 32 bytes,
    /// base64 (`dirsync secret-key generate`). Without it no command stores
    /// or opens them.
    #[arg(
        long,
        env = "DIRSYNC_SECRET_KEY",
        global = true,
        hide_env_values = true
    )]
    pub secret_key: Option<String>,
}

impl std::fmt::Debug for KeySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySettings(***)")
    }
}

impl KeySettings {
    /// The key, if one is configured; an unreadable one is an error.
    pub fn key(&self) -> Result<Option<crate::crypto::SealingKey>, crate::crypto::SealError> {
        self.secret_key
            .as_deref()
            .map(crate::crypto::SealingKey::parse)
            .transpose()
    }
}

/// A setup portal session's life: 5 minutes to 12 hours.
fn portal_session_ttl(raw: &str) -> Result<std::time::Duration, String> {
    let ttl = humantime::parse_duration(raw).map_err(|e| e.to_string())?;
    if !(std::time::Duration::from_secs(300)..=std::time::Duration::from_secs(12 * 3600))
        .contains(&ttl)
    {
        return Err("a portal session lasts 5 minutes to 12 hours".into());
    }
    Ok(ttl)
}
