//! The `dirsync` command line: serve, migrate, and the operator's admin commands.

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Serialize;

use dirsync::config::{DatabaseSettings, KeySettings, LeaseSettings, ServerSettings};
use dirsync::pull::connector::Definition;
use dirsync::pull::run::{Progress, Request};
use dirsync::reconcile::host::Action;
use dirsync::reconcile::model::RunStatus;

mod dev;

/// mimalloc: glibc's malloc was a third of the engine's CPU in the
/// snapshot-apply benchmark (allocation-heavy rows and JSON); see README.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use dirsync::startup::Application;
use dirsync::store::Store;
use dirsync::{admin, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "dirsync",
    version,
    about = "Directory sync server: SCIM 2.0 push and directory pull"
)]
struct Cli {
    #[command(flatten, next_help_heading = "Global options (every command)")]
    db: DatabaseSettings,
    #[command(flatten, next_help_heading = "Global options (every command)")]
    key: KeySettings,
    #[command(flatten, next_help_heading = "Global options (every command)")]
    lease: LeaseSettings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (migrates the database first).
    Serve(ServerSettings),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage directories.
    Directory {
        #[command(subcommand)]
        command: DirectoryCommand,
    },
    /// Accounts of the operators who sign in to the dashboard (/admin).
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// Setup links: a tenant's IT admin opens one to set up their identity
    /// provider in the setup portal (/portal).
    SetupLink {
        #[command(subcommand)]
        command: SetupLinkCommand,
    },
    /// Manage a directory's SCIM bearer tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// List a tenant's app users (what the host application sees).
    Users {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// List a tenant's app groups and their members.
    Groups {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// The host application's actions on a user (until the JSON API).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// A pull directory's connection to Google Workspace, Microsoft Entra ID
    /// (Graph) or Okta.
    Connection {
        #[command(subcommand)]
        command: ConnectionCommand,
    },
    /// A tenant's webhook endpoints: every event delivered, signed, in
    /// order.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
    /// Run a pull directory's connection now and print the run.
    Sync(SyncArgs),
    /// A pull directory's runs, newest first; or approve one the
    /// mass-deactivation guard stopped.
    #[command(args_conflicts_with_subcommands = true)]
    Runs {
        #[command(subcommand)]
        command: Option<RunsCommand>,
        /// The directory: its id, or TENANT/NAME.
        directory: Option<String>,
        /// The most runs to print.
        #[arg(long, default_value_t = 20)]
        limit: u64,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Mint a bearer JWT for the host application's API, signed with the
    /// configured HS256 secret (DIRSYNC_API_JWT_SECRET).
    ApiToken {
        /// The tenant (name or id) the token acts in; `*` for an operator's
        /// tools (every tenant).
        #[arg(long)]
        tenant: String,
        /// Space-separated: read, write, admin.
        #[arg(long, default_value = "read")]
        scope: String,
        /// How long the token lives (`90s`, `15m`, `1h`, `7d`).
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: std::time::Duration,
        #[command(flatten)]
        api: dirsync::config::ApiSettings,
    },
    /// Print the host API's OpenAPI document (committed at openapi/openapi.json).
    Openapi,
    /// The key that seals connection credentials at rest.
    SecretKey {
        #[command(subcommand)]
        command: SecretKeyCommand,
    },
    /// Tools for trying dirsync out without any account.
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
    /// Read a tenant's events in order, after a sequence number.
    ///
    /// When more events remain, text output ends with the command that reads
    /// them. --json prints an array: pass the last `seq` as --after until it
    /// comes back empty.
    #[command(args_conflicts_with_subcommands = true)]
    Events {
        #[command(subcommand)]
        command: Option<EventsCommand>,
        /// The tenant's name.
        #[arg(long)]
        tenant: Option<String>,
        /// Print events with a sequence number greater than this.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// The most events to print (at most 10000).
        #[arg(long, default_value_t = DEFAULT_EVENTS)]
        limit: u64,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum WebhookCommand {
    /// Register an endpoint; prints its signing secret (shown once). It
    /// receives the events committed from now on.
    Create {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// https, or http to loopback when allowed.
        #[arg(long)]
        url: String,
        /// Only this event type (repeat for several); none: every type.
        #[arg(long = "type")]
        types: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        /// Events per POST (1 to 1,000; 1 sends each event alone).
        #[arg(long)]
        batch_size: Option<u32>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        settings: dirsync::config::WebhookArgs,
    },
    /// A tenant's endpoints.
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// One endpoint.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Change an endpoint's URL, types, description or batch size.
    Update {
        id: String,
        #[arg(long)]
        url: Option<String>,
        /// Only this event type (repeat for several).
        #[arg(long = "type")]
        types: Vec<String>,
        /// Take every event type again.
        #[arg(long, conflicts_with = "types")]
        all_types: bool,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        batch_size: Option<u32>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        settings: dirsync::config::WebhookArgs,
    },
    /// Resume delivery from the first event the endpoint has not taken.
    Enable { id: String },
    /// Stop delivery; its events wait in the outbox.
    Disable { id: String },
    /// Delete an endpoint and its delivery log.
    Delete { id: String },
    /// Send a signed `webhook.test` message now and print the answer.
    Test {
        id: String,
        #[command(flatten)]
        settings: dirsync::config::WebhookArgs,
    },
    /// A new signing secret (printed once); the old one signs too for the
    /// rotation overlap.
    RotateSecret {
        id: String,
        #[command(flatten)]
        settings: dirsync::config::WebhookArgs,
    },
    /// Deliver again from an event of the tenant's feed on.
    Replay {
        id: String,
        /// The first event's sequence number.
        #[arg(long = "from")]
        from_seq: i64,
    },
    /// The endpoint's delivery log, newest first.
    Attempts {
        id: String,
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=100))]
        limit: u64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ConnectionCommand {
    /// Create a pull directory in a tenant with its connection. The
    /// credentials are sealed with DIRSYNC_SECRET_KEY and never shown again.
    Create(Box<ConnectionArgs>),
    /// Show a connection (never its credentials).
    Show {
        /// The pull directory: its id, or TENANT/NAME.
        directory: String,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Authenticate and read one user; says exactly what failed.
    Test {
        /// The pull directory: its id, or TENANT/NAME.
        directory: String,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Preview the provider's users as an import would take them in
    /// (under the attribute mapping), each with whether it is already an
    /// app user. Nothing is written.
    Preview {
        /// The pull directory: its id, or TENANT/NAME.
        directory: String,
        /// Only users whose email, name or id contains this (any case).
        #[arg(long)]
        search: Option<String>,
        /// Only this department's users.
        #[arg(long)]
        department: Option<String>,
        /// How many users to show (1 to 100).
        #[arg(long, default_value_t = 50)]
        limit: u64,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Import the named users now (or all of them), through the engine as
    /// a run of mode `import`: no one else is touched, and no groups.
    #[command(group(clap::ArgGroup::new("who").required(true).args(["user", "all"])))]
    Import {
        /// The pull directory: its id, or TENANT/NAME.
        directory: String,
        /// A user to import: the provider's id for them (as `connection
        /// preview` shows it) or their email (repeat).
        #[arg(long = "user", value_name = "ID")]
        user: Vec<String>,
        /// Import every user in the connection's scope.
        #[arg(long)]
        all: bool,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Delete the connection (the directory and its users stay).
    Delete {
        /// The pull directory: its id, or TENANT/NAME.
        directory: String,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Re-seal every connection's credentials under a new key, then switch
    /// DIRSYNC_SECRET_KEY to it. The current key opens them.
    RotateKey {
        /// The variable that holds the new key.
        #[arg(long, default_value = "DIRSYNC_NEW_SECRET_KEY")]
        new_key_env: String,
    },
}

#[derive(Debug, clap::Args)]
struct ConnectionArgs {
    /// The tenant's name.
    #[arg(long)]
    tenant: String,
    /// The new directory's name.
    #[arg(long)]
    name: String,
    /// A connection file: {"provider", "settings", "secret", "scope", "schedule"}
    /// (what `dirsync dev fake-directory` writes). Flags override it.
    #[arg(long)]
    file: Option<std::path::PathBuf>,
    /// google | entra | okta
    #[arg(long)]
    provider: Option<String>,
    /// A provider setting KEY=VALUE (repeat), e.g. tenant_id=…, client_id=…,
    /// admin_email=…, org_url=…
    #[arg(long = "set")]
    set: Vec<String>,
    /// Read the credentials from this file (Google's service-account key
    /// file, Okta's private key, or a file holding a secret or token).
    #[arg(long)]
    secret_file: Option<std::path::PathBuf>,
    /// Read the credentials from this environment variable.
    #[arg(long)]
    secret_env: Option<String>,
    /// Import only this group's members (the provider's group id).
    #[arg(long)]
    group: Option<String>,
    /// Import only this Google organizational unit, e.g. /Engineering.
    #[arg(long)]
    org_unit: Option<String>,
    /// Import only this department.
    #[arg(long)]
    department: Option<String>,
    /// Seconds between scheduled runs (default 3600).
    #[arg(long)]
    interval: Option<u64>,
    /// No scheduled runs: only `dirsync sync` runs it.
    #[arg(long)]
    no_schedule: bool,
    /// Print JSON (for scripts).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct SyncArgs {
    /// The pull directory: its id, or TENANT/NAME.
    directory: String,
    /// Plan and count only: nothing is written but the run's record.
    #[arg(long)]
    dry_run: bool,
    /// Only what changed since the last run, where the provider can say.
    #[arg(long)]
    incremental: bool,
    /// Import just these users (emails or the provider's ids).
    #[arg(long, num_args = 1..)]
    only: Vec<String>,
    /// Import just this department's users.
    #[arg(long)]
    department: Option<String>,
    /// Print JSON (for scripts).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Delete events written before a time (events are kept until pruned:
    /// a consumer that has not read them by then never will).
    Prune {
        /// RFC 3339, e.g. 2026-01-01T00:00:00Z.
        #[arg(long)]
        before: String,
        /// Only this tenant's (its name); every tenant's without it.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum RunsCommand {
    /// Whom a run the mass-deactivation guard stopped would deactivate, and
    /// why: what approving it carries out.
    Deactivations {
        /// The stopped run's id.
        run: String,
        /// Start after this user id (the last line's hint gives it).
        #[arg(long)]
        after: Option<String>,
        /// The most users to print.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1000))]
        limit: u64,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Approve a run the mass-deactivation guard stopped: run again, allowed
    /// up to the deactivations it weighed.
    Approve {
        /// The stopped run's id (`dirsync runs DIRECTORY` lists them).
        run: String,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SecretKeyCommand {
    /// Print a new random key for DIRSYNC_SECRET_KEY.
    Generate,
}

#[derive(Debug, Subcommand)]
enum DevCommand {
    /// Run a fake Google Workspace, Entra ID (Graph) or Okta with generated
    /// users and groups on 127.0.0.1, until stopped.
    FakeDirectory {
        /// Which provider to fake.
        #[arg(value_parser = ["google", "entra", "okta"])]
        provider: String,
        /// How many users to generate.
        #[arg(long, default_value_t = 100)]
        users: usize,
        /// How many groups to generate.
        #[arg(long, default_value_t = 5)]
        groups: usize,
        /// The same seed generates the same directory.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write the connection file (for `dirsync connection create --file`) here.
        #[arg(long, default_value = "fake-connection.json")]
        connection_file: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Report a sign-in: PENDING becomes ACTIVE.
    SignedIn(UserArgs),
    /// Deactivate as an admin (sync never undoes it).
    Deactivate(UserArgs),
    /// Lift a deactivation (the user returns to ACTIVE, or PENDING if never signed in).
    Reactivate(UserArgs),
    /// Set the user's role (sync never changes it unless group→role mapping is on).
    Role {
        #[command(flatten)]
        user: UserArgs,
        /// The new role.
        role: String,
    },
}

#[derive(Debug, clap::Args)]
struct UserArgs {
    /// The tenant's name.
    #[arg(long)]
    tenant: String,
    /// The user's email (any case).
    email: String,
    /// Print JSON (for scripts).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct PolicyArgs {
    /// The directory (SCIM or pull): its id, or TENANT/NAME.
    #[arg(long)]
    directory: String,
    /// Role given to new users.
    #[arg(long)]
    default_role: Option<String>,
    /// Status of new users until their first sign-in.
    #[arg(long, value_parser = ["pending", "active"])]
    new_user_status: Option<String>,
    /// What a SCIM DELETE does to the app user.
    #[arg(long, value_parser = ["deactivate", "delete"])]
    on_delete: Option<String>,
    /// What being missing from a complete pull listing does.
    #[arg(long, value_parser = ["deactivate", "ignore"])]
    on_missing: Option<String>,
    /// Refuse a run that would deactivate more users than this ("none": no limit).
    #[arg(long)]
    max_deactivations: Option<String>,
    /// Refuse a run that would deactivate more than this percentage of the
    /// directory's active users ("none": no limit).
    #[arg(long)]
    max_deactivation_percent: Option<String>,
    /// Comma-separated email domains of the tenant ("" allows every domain).
    #[arg(long)]
    allowed_domains: Option<String>,
    /// Turn group→role mapping on or off.
    #[arg(long, value_parser = ["on", "off"])]
    group_roles: Option<String>,
    /// A mapping GROUP=ROLE (repeat; replaces the whole mapping).
    #[arg(long = "group-role")]
    group_role: Vec<String>,
    /// Remove every group→role mapping.
    #[arg(long)]
    clear_group_roles: bool,
    /// Deactivate users in none of the mapped groups.
    #[arg(long, value_parser = ["on", "off"])]
    require_group_membership: Option<String>,
    /// Replace the attribute mapping with the rules in this JSON file (a
    /// list of {"source", "target", ...}; "-" reads standard input).
    #[arg(long, value_name = "FILE")]
    attribute_mapping: Option<std::path::PathBuf>,
    /// Remove every attribute mapping rule (back to the defaults).
    #[arg(long, conflicts_with = "attribute_mapping")]
    clear_attribute_mapping: bool,
    /// Print JSON (for scripts).
    #[arg(long)]
    json: bool,
}

/// A user's custom attributes on one line (` {name=value, …}`), or nothing.
fn custom_attributes(value: &serde_json::Value) -> String {
    let Some(object) = value.as_object().filter(|o| !o.is_empty()) else {
        return String::new();
    };
    let pairs: Vec<String> = object
        .iter()
        .map(|(k, v)| match v.as_str() {
            Some(text) => format!("{k}={text}"),
            None => format!("{k}={v}"),
        })
        .collect();
    format!("  {{{}}}", pairs.join(", "))
}

/// A field a preview names (`department`, `custom_attributes.NAME`, …) in
/// one side of it (a mapped snapshot).
fn preview_value(side: &serde_json::Value, name: &str) -> serde_json::Value {
    let found = match name {
        "email" | "role" => side.get(name),
        _ => match name.strip_prefix("custom_attributes.") {
            Some(custom) => side
                .get("profile")
                .and_then(|p| p.get("custom")?.get(custom)),
            None => side.get("profile").and_then(|p| p.get(name)),
        },
    };
    found.cloned().unwrap_or(serde_json::Value::Null)
}

/// Attribute mapping rules from a JSON file ("-": standard input).
fn read_rules(path: &std::path::Path) -> anyhow::Result<Vec<dirsync::reconcile::mapping::Rule>> {
    let text = if path == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
    };
    serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not a list of mapping rules: {e}", path.display()))
}

impl PolicyArgs {
    fn change(&self) -> anyhow::Result<admin::PolicyChange> {
        let group_roles = if self.clear_group_roles {
            Some(Vec::new())
        } else if self.group_role.is_empty() {
            None
        } else {
            Some(self.group_role.clone())
        };
        let mut change = admin::PolicyText {
            default_role: self.default_role.clone(),
            new_user_status: self.new_user_status.clone(),
            on_delete: self.on_delete.clone(),
            on_missing: self.on_missing.clone(),
            max_deactivations: self.max_deactivations.clone(),
            max_deactivation_percent: self.max_deactivation_percent.clone(),
            allowed_domains: self.allowed_domains.clone(),
            group_roles_enabled: self.group_roles.clone(),
            group_roles,
            require_group_membership: self.require_group_membership.clone(),
        }
        .change()?;
        change.attribute_mapping = if self.clear_attribute_mapping {
            Some(Vec::new())
        } else {
            self.attribute_mapping
                .as_deref()
                .map(read_rules)
                .transpose()?
        };
        Ok(change)
    }
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant.
    Create {
        /// The tenant's name (other commands take it as --tenant).
        name: String,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// List every tenant.
    List {
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum DirectoryCommand {
    /// Create a SCIM directory in a tenant.
    Create {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// The directory's name, unique in the tenant (TENANT/NAME names it).
        #[arg(long)]
        name: String,
        /// entra | okta | onelogin | jumpcloud | pingone | google | generic
        #[arg(long, default_value = "generic")]
        vendor: String,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// List a tenant's directories, SCIM and pull, with their ids.
    List {
        /// The tenant's name.
        #[arg(long)]
        tenant: String,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Show a directory's provisioning policy, or change it with flags.
    Policy(PolicyArgs),
    /// A SCIM directory's request log, newest first: each request its
    /// tokens authenticated, how it was answered, and what the engine made
    /// of each user it wrote.
    Requests {
        /// The SCIM directory: its id, or TENANT/NAME.
        #[arg(long)]
        directory: String,
        /// How many requests to show (1 to 1000).
        #[arg(long, default_value_t = 20)]
        limit: u64,
        /// Only requests answered with this status class: 2xx, 3xx, 4xx, 5xx.
        #[arg(long)]
        status: Option<String>,
        /// Only requests with this method: GET, POST, PUT, PATCH, DELETE.
        #[arg(long)]
        method: Option<String>,
        /// Only requests older than this one (an id from a previous list).
        #[arg(long)]
        before: Option<String>,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Preview an attribute mapping: the directory's first users under its
    /// rules and under these, and what would change (nothing is written).
    /// A pull directory's users are read from its provider, through its
    /// connection (DIRSYNC_SECRET_KEY opens the credentials).
    MappingPreview {
        /// The directory (SCIM or pull): its id, or TENANT/NAME.
        #[arg(long)]
        directory: String,
        /// The proposed rules: a JSON file holding a list of rules ("-"
        /// reads standard input).
        #[arg(long, value_name = "FILE")]
        rules: std::path::PathBuf,
        /// How many users to show (1 to 100).
        #[arg(long, default_value_t = 10)]
        limit: u64,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum OperatorCommand {
    /// Create an operator; the password is prompted for (not echoed), or
    /// read from standard input's first line with --password-stdin.
    Create {
        /// The operator's email: what they sign in with.
        email: String,
        /// Read the password from standard input (scripts, CI).
        #[arg(long)]
        password_stdin: bool,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// List the operators (never their passwords).
    List {
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Delete an operator (by email or id); their sessions end at once.
    Delete {
        email: String,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
}

/// The new operator's password: standard input's first line, or typed
/// twice at a prompt that does not echo it.
fn read_password(from_stdin: bool) -> anyhow::Result<dirsync::crypto::Secret> {
    use std::io::BufRead;
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        return Ok(dirsync::crypto::Secret::new(password));
    }
    let first = rpassword::prompt_password("Password: ")
        .context("reading the password (no terminal? use --password-stdin)")?;
    let again = rpassword::prompt_password("Password again: ")?;
    anyhow::ensure!(first == again, "the two passwords differ");
    Ok(dirsync::crypto::Secret::new(first))
}

async fn operator(db: &DatabaseSettings, command: OperatorCommand) -> anyhow::Result<()> {
    use admin::operators;
    match command {
        OperatorCommand::Create {
            email,
            password_stdin,
            json,
        } => {
            let password = read_password(password_stdin)?;
            let created = operators::create_operator(&store(db).await?, &email, &password).await?;
            print(json, &created, |o| {
                format!(
                    "operator {} created: {} (sign in at /admin/login)",
                    o.email, o.id
                )
            })?;
        }
        OperatorCommand::List { json } => {
            let all = operators::list_operators(&store(db).await?).await?;
            print(json, &all, |all| {
                if all.is_empty() {
                    return "no operators yet: dirsync operator create EMAIL".to_owned();
                }
                all.iter()
                    .map(|o| {
                        format!(
                            "{}  {}  last signed in {}",
                            o.id,
                            o.email,
                            o.last_sign_in_at.as_deref().unwrap_or("never")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        OperatorCommand::Delete { email, json } => {
            let gone = operators::delete_operator(&store(db).await?, &email).await?;
            print(json, &gone, |o| format!("operator {} deleted", o.email))?;
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
enum SetupLinkCommand {
    /// Create a link; its URL (with the secret) is printed once. It opens
    /// the setup portal once, and expires unused.
    Create {
        /// The tenant (name or id).
        #[arg(long)]
        tenant: String,
        /// How long the link lives unused: 1m to 30d.
        #[arg(long, default_value = "7d")]
        expires: String,
        /// What the portal may set up: scim, pull, or both.
        #[arg(long, default_value = "scim,pull")]
        allow: String,
        /// The server's public URL, which the link is built on.
        #[arg(
            long,
            env = "DIRSYNC_PUBLIC_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        public_url: String,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// List a tenant's links (never their secrets).
    List {
        /// The tenant (name or id).
        #[arg(long)]
        tenant: String,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Revoke a link: it no longer opens, and a session it opened ends.
    Revoke {
        /// The tenant (name or id).
        #[arg(long)]
        tenant: String,
        /// The link's id.
        id: String,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
}

async fn setup_link(db: &DatabaseSettings, command: SetupLinkCommand) -> anyhow::Result<()> {
    use admin::setup;
    let store = store(db).await?;
    match command {
        SetupLinkCommand::Create {
            tenant,
            expires,
            allow,
            public_url,
            json,
        } => {
            let link = setup::create(
                &store,
                &tenant,
                setup::Allows::parse(&allow)?,
                setup::parse_expiry(&expires)?,
                "cli",
                &public_url,
            )
            .await?;
            print(json, &link, |l| {
                format!(
                    "setup link {} (allows {}, expires {}); shown once:\n{}",
                    l.link.id,
                    l.link.allows.join(", "),
                    l.link.expires_at,
                    l.url
                )
            })?;
        }
        SetupLinkCommand::List { tenant, json } => {
            let links = setup::list(&store, &tenant).await?;
            print(json, &links, |links| {
                if links.is_empty() {
                    return "no setup links yet: dirsync setup-link create --tenant T".to_owned();
                }
                links
                    .iter()
                    .map(|l| {
                        format!(
                            "{}  {}  allows {}  expires {}  by {}",
                            l.id,
                            l.status,
                            l.allows.join(","),
                            l.expires_at,
                            l.created_by
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        SetupLinkCommand::Revoke { tenant, id, json } => {
            let link = setup::revoke(&store, &tenant, &id).await?;
            print(json, &link, |l| format!("setup link {} revoked", l.id))?;
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token; the secret is printed once and never again.
    Create {
        /// The SCIM directory: its id, or TENANT/NAME.
        #[arg(long)]
        directory: String,
        /// A note to tell tokens apart (which IdP holds it).
        #[arg(long)]
        label: Option<String>,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// List a directory's tokens (never their secrets).
    List {
        /// The SCIM directory: its id, or TENANT/NAME.
        #[arg(long)]
        directory: String,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token; requests with it get 401 from then on.
    Revoke {
        /// The SCIM directory: its id, or TENANT/NAME.
        #[arg(long)]
        directory: String,
        /// The token's id (`dirsync token list` shows it).
        token_id: String,
        /// Print JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
}

/// Events one `dirsync events` prints unless told otherwise.
const DEFAULT_EVENTS: u64 = 100;

/// `word` as one shell word, quoted only when it has to be, so a printed
/// command can be pasted back as it is.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./@:+=,".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// One endpoint on a line: its id, state, URL, types and position.
fn webhook_line(w: &dirsync::admin::webhooks::WebhookView) -> String {
    let state = match (&w.enabled, &w.disabled_reason) {
        (true, _) if w.failures > 0 => format!(
            "retrying ({} failed; next at {})",
            w.failures, w.next_attempt_at
        ),
        (true, _) => "enabled".to_owned(),
        (false, Some(why)) => format!("disabled: {why}"),
        (false, None) => "disabled".to_owned(),
    };
    let types = w
        .event_types
        .as_ref()
        .map_or("every type".to_owned(), |t| t.join(","));
    format!(
        "{}  {}  {}  {}  delivered through seq {}",
        w.id, w.url, types, state, w.delivered_seq
    )
}

async fn webhook(
    db: &DatabaseSettings,
    key: &KeySettings,
    command: WebhookCommand,
) -> anyhow::Result<()> {
    use dirsync::admin::webhooks::{self as hooks, AttemptView, WebhookChange, WebhookView};
    let store = store(db).await?;
    let key = || key.key().context("DIRSYNC_SECRET_KEY");
    let with_secret = |w: &hooks::WebhookWithSecret| {
        format!(
            "{}\nsigning secret (shown once; verify deliveries with it): {}",
            webhook_line(&w.webhook),
            w.secret
        )
    };
    match command {
        WebhookCommand::Create {
            tenant,
            url,
            types,
            description,
            batch_size,
            json,
            settings,
        } => {
            let tenant_id = hooks::tenant(&store, &tenant).await?;
            let created = hooks::create(
                &store,
                key()?.as_ref(),
                &settings.settings(),
                &tenant_id,
                hooks::NewWebhook {
                    url,
                    description,
                    event_types: Some(types),
                    batch_size,
                },
            )
            .await?;
            print(json, &created, with_secret)?;
        }
        WebhookCommand::List { tenant, json } => {
            let tenant_id = hooks::tenant(&store, &tenant).await?;
            let mut all = Vec::new();
            let mut from = dirsync::store::pages::Anchor::Start;
            loop {
                let page = hooks::list(&store, &tenant_id, &from, 100).await?;
                all.extend(page.rows.iter().map(WebhookView::from));
                match (page.more_after, page.rows.last()) {
                    (true, Some(last)) => {
                        from = dirsync::store::pages::Anchor::After(last.id.clone())
                    }
                    _ => break,
                }
            }
            print(json, &all, |all| {
                if all.is_empty() {
                    format!("tenant {tenant} has no webhook endpoint")
                } else {
                    all.iter().map(webhook_line).collect::<Vec<_>>().join("\n")
                }
            })?;
        }
        WebhookCommand::Show { id, json } => {
            let e = hooks::endpoint(&store, None, &id).await?;
            print(json, &WebhookView::from(&e), webhook_line)?;
        }
        WebhookCommand::Update {
            id,
            url,
            types,
            all_types,
            description,
            batch_size,
            json,
            settings,
        } => {
            let event_types = if all_types {
                Some(Vec::new())
            } else {
                (!types.is_empty()).then_some(types)
            };
            let changed = hooks::update(
                &store,
                &settings.settings(),
                None,
                &id,
                WebhookChange {
                    url,
                    description,
                    event_types,
                    batch_size,
                },
            )
            .await?;
            print(json, &changed, webhook_line)?;
        }
        WebhookCommand::Enable { id } => {
            println!(
                "{}",
                webhook_line(&hooks::set_enabled(&store, None, &id, true).await?)
            );
        }
        WebhookCommand::Disable { id } => {
            println!(
                "{}",
                webhook_line(&hooks::set_enabled(&store, None, &id, false).await?)
            );
        }
        WebhookCommand::Delete { id } => {
            let gone = hooks::delete(&store, None, &id).await?;
            println!("deleted {}", webhook_line(&gone));
        }
        WebhookCommand::Test { id, settings } => {
            let sent =
                hooks::send_test(&store, key()?.as_ref(), &settings.settings(), None, &id).await?;
            let answer = match sent.status {
                Some(status) => format!("HTTP {status}"),
                None => "no answer".to_owned(),
            };
            println!(
                "{}: {answer} in {} ms; {}",
                if sent.delivered {
                    "delivered"
                } else {
                    "not delivered"
                },
                sent.latency_ms,
                sent.excerpt
            );
            if !sent.delivered {
                anyhow::bail!("the test message was not delivered");
            }
        }
        WebhookCommand::RotateSecret { id, settings } => {
            let rotated =
                hooks::rotate_secret(&store, key()?.as_ref(), &settings.settings(), None, &id)
                    .await?;
            println!("{}", with_secret(&rotated));
        }
        WebhookCommand::Replay { id, from_seq } => {
            let w = hooks::replay(&store, None, &id, from_seq).await?;
            println!("{}", webhook_line(&w));
        }
        WebhookCommand::Attempts { id, limit, json } => {
            let page = hooks::attempts(
                &store,
                None,
                &id,
                &dirsync::store::pages::Anchor::Start,
                limit,
            )
            .await?;
            let rows: Vec<AttemptView> = page.rows.iter().map(AttemptView::from).collect();
            print(json, &rows, |rows| {
                if rows.is_empty() {
                    return "no delivery attempt yet".to_owned();
                }
                rows.iter()
                    .map(|a| {
                        format!(
                            "{}  seq {}..{}  {}  {}  {} ms  {}",
                            a.attempted_at,
                            a.first_seq,
                            a.last_seq,
                            a.outcome,
                            a.status.map_or("-".to_owned(), |s| s.to_string()),
                            a.latency_ms,
                            a.excerpt
                                .chars()
                                .take(120)
                                .collect::<String>()
                                .replace('\n', " ")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
    }
    Ok(())
}

fn print<T: Serialize>(
    json: bool,
    value: &T,
    text: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    let out = if json {
        serde_json::to_string_pretty(value)?
    } else {
        text(value)
    };
    use std::io::Write;
    match writeln!(std::io::stdout(), "{out}") {
        // `dirsync users | head`: the reader has what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// One logged SCIM request as `dirsync directory requests` prints it: when,
/// the request and its answer, then what the engine made of each user.
fn request_line(r: &admin::requests::RequestView) -> String {
    let mut line = format!(
        "{}  {} {}  {} {}ms  {}",
        r.at, r.method, r.path, r.status, r.duration_ms, r.id
    );
    if let Some(t) = &r.scim_type {
        line.push_str(&format!("\n    scimType {t}"));
    }
    if let Some(d) = &r.detail {
        line.push_str(&format!("\n    detail {d}"));
    }
    for o in &r.outcomes {
        line.push_str("\n    ");
        if let Some(op) = o.operation {
            line.push_str(&format!("operation {op}: "));
        }
        line.push_str(&o.outcome);
        if let Some(resource) = &o.resource {
            line.push_str(&format!(" {resource}"));
        }
        if !o.changed.is_empty() {
            line.push_str(&format!(" ({})", o.changed.join(", ")));
        }
        if let Some(why) = &o.why {
            line.push_str(&format!(": {why}"));
        }
    }
    line
}

async fn store(db: &DatabaseSettings) -> anyhow::Result<Store> {
    let store = Store::connect(&db.database_url, 2)
        .await
        .with_context(|| "connecting to the database (DIRSYNC_DATABASE_URL)")?;
    store.migrate().await.context("migrating the database")?;
    Ok(store)
}

/// The lease holder's name for a run this process starts.
fn owner(what: &str) -> String {
    // Unique per process even where every container's pid is 1.
    format!(
        "{what}:pid {}:{}",
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    )
}

/// A spinner on a terminal (stderr), nothing when piped.
fn progress_bar() -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    })
}

fn run_line(run: &serde_json::Value) -> String {
    let c = &run["counts"];
    let n = |path: &str| {
        c.pointer(path)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    let mut line = format!(
        "run {}  {}  {} {}  started {}\n  users: {} seen, {} created{}, {} updated, {} unchanged, {} deactivated, {} reactivated, {} missing, {} skipped, {} conflicts\n  groups: {} seen, {} created, {} updated, {} unchanged, {} deleted; members +{} -{}",
        run["id"].as_str().unwrap_or_default(),
        run["status"].as_str().unwrap_or_default(),
        run["trigger"].as_str().unwrap_or_default(),
        run["mode"].as_str().unwrap_or_default(),
        run["started_at"].as_str().unwrap_or_default(),
        n("/users/seen"),
        n("/users/created"),
        match n("/users/created_deactivated") {
            0 => String::new(),
            inactive => format!(" ({inactive} already deactivated)"),
        },
        n("/users/updated"),
        n("/users/unchanged"),
        n("/users/deactivated"),
        n("/users/reactivated"),
        n("/users/missing"),
        n("/users/skipped"),
        n("/users/conflicts"),
        n("/groups/seen"),
        n("/groups/created"),
        n("/groups/updated"),
        n("/groups/unchanged"),
        n("/groups/deleted"),
        n("/groups/members_added"),
        n("/groups/members_removed"),
    );
    if let dropped @ 1.. = n("/values_dropped") {
        line.push_str(&format!(
            "\n  {dropped} provider value{s} longer than dirsync keeps dropped: the users were synced without {them} (the WARN log names each property)",
            s = if dropped == 1 { "" } else { "s" },
            them = if dropped == 1 { "it" } else { "them" },
        ));
    }
    if run["status"] == RunStatus::NeedsApproval.as_str() {
        line.push_str(&format!(
            "\n  stopped by the mass-deactivation guard: {} deactivations of {} active users; whom: dirsync runs deactivations {id}; approve with: dirsync runs approve {id}",
            n("/deactivations"),
            n("/population"),
            id = run["id"].as_str().unwrap_or_default()
        ));
    }
    if let Some(plan) = c["plan"].as_array().filter(|p| !p.is_empty()) {
        line.push_str("\n  dry run: nothing was written; it would");
        for change in plan.iter().take(20) {
            line.push_str(&format!(
                "\n    {} {}{}",
                change["change"].as_str().unwrap_or_default(),
                change["source_id"].as_str().unwrap_or_default(),
                change
                    .get("detail")
                    .map(|d| format!(" ({})", d.as_str().map_or(d.to_string(), str::to_owned)))
                    .unwrap_or_default()
            ));
        }
        if plan.len() > 20 {
            line.push_str(&format!("\n    … {} more in --json", plan.len() - 20));
        }
    }
    for error in run["errors"].as_array().into_iter().flatten() {
        line.push_str(&format!(
            "\n  {}: {}{}",
            error["kind"].as_str().unwrap_or_default(),
            error["reason"].as_str().unwrap_or_default(),
            error["source_id"]
                .as_str()
                .map(|id| format!(" ({id})"))
                .unwrap_or_default()
        ));
    }
    line
}

async fn connection(
    db: &DatabaseSettings,
    key: &KeySettings,
    command: ConnectionCommand,
) -> anyhow::Result<()> {
    let store = store(db).await?;
    let key = key.key().context("DIRSYNC_SECRET_KEY")?;
    let show = |v: &admin::connections::ConnectionView| {
        format!(
            "directory {}/{} ({}): {}\n  settings {}\n  scope {}\n  credentials {}\n  next run {}",
            v.tenant,
            v.directory,
            v.provider.as_str(),
            v.directory_id,
            v.settings,
            v.scope,
            v.credentials,
            v.next_run_at.as_deref().unwrap_or("not scheduled"),
        )
    };
    match command {
        ConnectionCommand::Create(args) => {
            let definition = args.definition()?;
            let view = admin::connections::create(
                &store,
                key.as_ref(),
                &args.tenant,
                &args.name,
                definition,
            )
            .await?;
            print(args.json, &view, show)?;
        }
        ConnectionCommand::Show { directory, json } => {
            let view = admin::connections::show(&store, &directory).await?;
            print(json, &view, show)?;
        }
        ConnectionCommand::Test { directory, json } => {
            let check = admin::connections::test(&store, key.as_ref(), &directory).await?;
            print(json, &check, |c| {
                format!("ok: {}; read {} user(s)", c.authenticated, c.users_read)
            })?;
        }
        ConnectionCommand::Preview {
            directory,
            search,
            department,
            limit,
            json,
        } => {
            let query = admin::connections::PreviewQuery {
                search,
                department,
                limit: Some(limit),
            };
            let users =
                admin::connections::preview(&store, key.as_ref(), &directory, query).await?;
            print(json, &users, |us| {
                if us.is_empty() {
                    return "no user matches".to_owned();
                }
                us.iter()
                    .map(|u| {
                        format!(
                            "{}  {}  {}  {}  {}{}",
                            u.source_id,
                            u.email.as_deref().unwrap_or("-"),
                            u.display_name.as_deref().unwrap_or("-"),
                            u.department.as_deref().unwrap_or("-"),
                            u.title.as_deref().unwrap_or("-"),
                            if u.exists { "  (already a user)" } else { "" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        ConnectionCommand::Import {
            directory,
            user,
            all,
            json,
        } => {
            let selection = admin::connections::ImportRequest { users: user, all };
            let owner = owner("import");
            let summary =
                admin::connections::import(&store, key.as_ref(), &directory, selection, &owner)
                    .await?;
            print(json, &summary, |s| {
                let mut out = format!(
                    "imported {}, updated {}, unchanged {}, skipped {}, errors {} (run {})",
                    s.imported, s.updated, s.unchanged, s.skipped, s.errors, s.run_id
                );
                for p in &s.problems {
                    out.push_str(&format!(
                        "\n  {}: {}",
                        p["source_id"]
                            .as_str()
                            .unwrap_or(p["kind"].as_str().unwrap_or("-")),
                        p["reason"].as_str().unwrap_or("")
                    ));
                }
                out
            })?;
        }
        ConnectionCommand::Delete { directory, json } => {
            let view = admin::connections::delete(&store, &directory).await?;
            print(json, &view, |v| {
                format!(
                    "connection of directory {}/{} deleted",
                    v.tenant, v.directory
                )
            })?;
        }
        ConnectionCommand::RotateKey { new_key_env } => {
            let new = std::env::var(&new_key_env)
                .with_context(|| format!("reading the new key from {new_key_env}"))?;
            let new = dirsync::crypto::SealingKey::parse(&new).context(new_key_env)?;
            let count = admin::connections::rotate_key(&store, key.as_ref(), &new).await?;
            println!(
                "{count} connection(s) re-sealed under key {}; now set DIRSYNC_SECRET_KEY to the new key",
                new.id()
            );
        }
    }
    Ok(())
}

impl ConnectionArgs {
    /// The connection file (if any) with the flags applied over it.
    fn definition(&self) -> anyhow::Result<Definition> {
        let mut raw = match &self.file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not JSON", path.display()))?
            }
            None => serde_json::json!({}),
        };
        if let Some(provider) = &self.provider {
            raw["provider"] = provider.to_ascii_lowercase().into();
        }
        for pair in &self.set {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--set {pair:?} is not KEY=VALUE"))?;
            raw["settings"][k.trim()] = v.trim().into();
        }
        let secret = match (&self.secret_file, &self.secret_env) {
            (Some(path), _) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
            ),
            (None, Some(var)) => {
                Some(std::env::var(var).with_context(|| format!("reading {var}"))?)
            }
            (None, None) => None,
        };
        if let Some(secret) = secret {
            raw["secret"] = secret.trim_end().into();
        }
        for (field, value) in [
            ("group", &self.group),
            ("org_unit", &self.org_unit),
            ("department", &self.department),
        ] {
            if let Some(v) = value {
                raw["scope"][field] = v.clone().into();
            }
        }
        if let Some(secs) = self.interval {
            raw["schedule"]["interval_secs"] = secs.into();
        }
        if self.no_schedule {
            raw["schedule"]["enabled"] = false.into();
        }
        if raw.get("provider").is_none() {
            anyhow::bail!("name the provider: --provider google|entra|okta (or a --file with one)");
        }
        // Never echo the parse error's input: it may hold the secret.
        serde_json::from_value(raw).map_err(|e| anyhow::anyhow!("the connection: {e}"))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    dirsync::pull::run::set_lease_ttl(cli.lease.pull_lease_ttl);
    // Admin commands print results on stdout; only problems go to stderr.
    telemetry::init(if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    });
    match cli.command {
        Command::Serve(settings) => {
            let key = cli.key.key().context("DIRSYNC_SECRET_KEY")?;
            if key.is_none() {
                tracing::warn!("no DIRSYNC_SECRET_KEY: pull connections cannot run");
            }
            let app = Application::build(&cli.db, settings, key).await?;
            tracing::info!(port = app.port(), "dirsync listening");
            app.run_until_stopped().await?;
        }
        Command::Connection { command } => connection(&cli.db, &cli.key, command).await?,
        Command::Webhook { command } => webhook(&cli.db, &cli.key, command).await?,
        Command::Operator { command } => operator(&cli.db, command).await?,
        Command::SetupLink { command } => setup_link(&cli.db, command).await?,
        Command::Sync(args) => {
            let store = store(&cli.db).await?;
            let key = cli.key.key().context("DIRSYNC_SECRET_KEY")?;
            let request = Request {
                dry_run: args.dry_run,
                incremental: args.incremental,
                only: args.only.clone(),
                department: args.department.clone(),
                ..Request::manual()
            };
            let bar = progress_bar();
            let mut progress = |p: &Progress| {
                if let Some(bar) = &bar {
                    bar.set_message(format!(
                        "{} users, {} groups, {} pages",
                        p.users, p.groups, p.pages
                    ));
                    bar.tick();
                }
            };
            let result = admin::connections::sync(
                &store,
                key.as_ref(),
                &args.directory,
                &request,
                &owner("sync"),
                &mut progress,
            )
            .await;
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            let run = result?;
            print(args.json, &run, run_line)?;
        }
        Command::Runs {
            command,
            directory,
            limit,
            json,
        } => {
            let store = store(&cli.db).await?;
            match (command, directory) {
                (
                    Some(RunsCommand::Deactivations {
                        run,
                        after,
                        limit,
                        json,
                    }),
                    _,
                ) => {
                    let page = admin::connections::held_back(&store, &run, after, limit).await?;
                    let rows: Vec<serde_json::Value> = page
                        .rows
                        .iter()
                        .map(|(u, reason)| {
                            serde_json::json!({"user": dirsync::reconcile::apply::UserView::from(u), "reason": reason})
                        })
                        .collect();
                    print(json, &rows, |rows| {
                        let mut lines: Vec<String> = rows
                            .iter()
                            .map(|r| {
                                format!(
                                    "{}  {}  {}  {}",
                                    r["user"]["id"].as_str().unwrap_or_default(),
                                    r["user"]["email"].as_str().unwrap_or_default(),
                                    r["user"]["status"].as_str().unwrap_or_default(),
                                    r["reason"].as_str().unwrap_or_default(),
                                )
                            })
                            .collect();
                        if rows.is_empty() {
                            lines.push(format!("run {run} holds back no deactivation"));
                        }
                        if let (true, Some((last, _))) = (page.more_after, page.rows.last()) {
                            lines.push(format!(
                                "… more: dirsync runs deactivations {run} --after {}",
                                last.id
                            ));
                        }
                        lines.join("\n")
                    })?;
                }
                (Some(RunsCommand::Approve { run, json }), _) => {
                    let key = cli.key.key().context("DIRSYNC_SECRET_KEY")?;
                    let run = admin::connections::approve(
                        &store,
                        key.as_ref(),
                        &run,
                        &owner("approve"),
                        &mut |_| {},
                    )
                    .await?;
                    print(json, &run, run_line)?;
                }
                (None, Some(directory)) => {
                    let runs = admin::connections::runs(&store, &directory, limit).await?;
                    print(json, &runs, |rs| {
                        rs.iter().map(run_line).collect::<Vec<_>>().join("\n")
                    })?;
                }
                (None, None) => anyhow::bail!("name a directory: dirsync runs DIRECTORY"),
            }
        }
        Command::ApiToken {
            tenant,
            scope,
            ttl,
            api,
        } => {
            let token = dirsync::api::auth::mint(&api, &tenant, &scope, ttl)
                .map_err(|why| anyhow::anyhow!(why))?;
            println!("{token}");
        }
        Command::Openapi => print!("{}", dirsync::api::openapi::json()),
        Command::SecretKey {
            command: SecretKeyCommand::Generate,
        } => println!("{}", dirsync::crypto::SealingKey::generate().expose()),
        Command::Dev {
            command:
                DevCommand::FakeDirectory {
                    provider,
                    users,
                    groups,
                    seed,
                    connection_file,
                },
        } => dev::fake_directory(&provider, users, groups, seed, &connection_file).await?,
        Command::Migrate => {
            store(&cli.db).await?;
            println!("migrated");
        }
        Command::Tenant {
            command: TenantCommand::Create { name, json },
        } => {
            let tenant = admin::create_tenant(&store(&cli.db).await?, &name).await?;
            print(json, &tenant, |t| {
                format!("tenant {} created: {}", t.name, t.id)
            })?;
        }
        Command::Tenant {
            command: TenantCommand::List { json },
        } => {
            let tenants = admin::list_tenants(&store(&cli.db).await?).await?;
            print(json, &tenants, |ts| {
                if ts.is_empty() {
                    return "no tenants yet: dirsync tenant create NAME".to_owned();
                }
                ts.iter()
                    .map(|t| format!("{}  {}", t.id, t.name))
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        Command::Directory {
            command: DirectoryCommand::List { tenant, json },
        } => {
            let directories = admin::list_directories(&store(&cli.db).await?, &tenant).await?;
            print(json, &directories, |ds| {
                if ds.is_empty() {
                    return format!(
                        "tenant {tenant} has no directories yet: dirsync directory create, \
                         or dirsync connection create"
                    );
                }
                ds.iter()
                    .map(|d| {
                        let kind = if d.kind == "scim" {
                            format!("SCIM ({})", d.vendor)
                        } else {
                            format!("pull from {}", d.kind)
                        };
                        format!("{}  {}/{}  {kind}", d.id, d.tenant, d.name)
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        Command::Directory {
            command:
                DirectoryCommand::Requests {
                    directory,
                    limit,
                    status,
                    method,
                    before,
                    json,
                },
        } => {
            let store = store(&cli.db).await?;
            let filter = admin::requests::RequestFilter {
                status: status
                    .as_deref()
                    .map(admin::requests::StatusClass::parse)
                    .transpose()?,
                method,
                before,
            };
            let page = admin::scim_requests(&store, &directory, &filter, limit).await?;
            print(json, &page.rows, |rs| {
                if rs.is_empty() {
                    return format!("no SCIM requests logged for {directory}");
                }
                rs.iter().map(request_line).collect::<Vec<_>>().join("\n")
            })?;
        }
        Command::Directory {
            command: DirectoryCommand::Policy(args),
        } => {
            let store = store(&cli.db).await?;
            let change = args.change()?;
            let policy = admin::update_policy(&store, &args.directory, change).await?;
            print(args.json, &policy, |p| {
                serde_json::to_string_pretty(p).unwrap_or_default()
            })?;
        }
        Command::Directory {
            command:
                DirectoryCommand::MappingPreview {
                    directory,
                    rules,
                    limit,
                    json,
                },
        } => {
            let store = store(&cli.db).await?;
            // A pull directory's users are read from its provider.
            let key = cli.key.key().context("DIRSYNC_SECRET_KEY")?;
            let rules = read_rules(&rules)?;
            let users =
                admin::preview_mapping(&store, key.as_ref(), &directory, rules, limit).await?;
            print(json, &users, |us| {
                us.iter()
                    .map(|u| {
                        let changes: Vec<String> = u
                            .changed
                            .iter()
                            .map(|name| {
                                let at = |side: &serde_json::Value| {
                                    let value = preview_value(side, name);
                                    if value.is_null() {
                                        "(none)".to_owned()
                                    } else {
                                        value.to_string()
                                    }
                                };
                                format!("  {name}: {} -> {}", at(&u.before), at(&u.after))
                            })
                            .collect();
                        if changes.is_empty() {
                            format!("{}  unchanged", u.source_id)
                        } else {
                            format!("{}\n{}", u.source_id, changes.join("\n"))
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        Command::Users { tenant, json } => {
            let users = admin::users(&store(&cli.db).await?, &tenant).await?;
            print(json, &users, |us| {
                us.iter()
                    .map(|u| {
                        format!(
                            "{}  {}  {}{}  {}",
                            u["id"].as_str().unwrap_or_default(),
                            u["email"].as_str().unwrap_or_default(),
                            u["status"].as_str().unwrap_or_default(),
                            u["deactivated_by"]
                                .as_str()
                                .map(|by| format!(" (by {by})"))
                                .unwrap_or_default(),
                            u["role"].as_str().unwrap_or_default(),
                        ) + &custom_attributes(&u["custom_attributes"])
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        Command::Groups { tenant, json } => {
            let groups = admin::groups(&store(&cli.db).await?, &tenant).await?;
            print(json, &groups, |gs| {
                gs.iter()
                    .map(|g| {
                        format!(
                            "{}  {}  {} members",
                            g["id"].as_str().unwrap_or_default(),
                            g["name"].as_str().unwrap_or_default(),
                            g["members"].as_array().map_or(0, Vec::len),
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        Command::User { command } => {
            let (args, action) = match command {
                UserCommand::SignedIn(a) => (a, Action::SignedIn),
                UserCommand::Deactivate(a) => (a, Action::Deactivate),
                UserCommand::Reactivate(a) => (a, Action::Reactivate),
                UserCommand::Role { user, role } => (user, Action::SetRole(role)),
            };
            let user =
                admin::user_action(&store(&cli.db).await?, &args.tenant, &args.email, action)
                    .await?;
            print(args.json, &user, |u| {
                format!(
                    "{}  {}  role {}",
                    u["email"].as_str().unwrap_or_default(),
                    u["status"].as_str().unwrap_or_default(),
                    u["role"].as_str().unwrap_or_default(),
                )
            })?;
        }
        Command::Events {
            command:
                Some(EventsCommand::Prune {
                    before,
                    tenant,
                    json,
                }),
            ..
        } => {
            let before = chrono::DateTime::parse_from_rfc3339(&before)
                .with_context(|| format!("--before {before:?} is not an RFC 3339 time"))?;
            let pruned = admin::prune_events(
                &store(&cli.db).await?,
                tenant.as_deref(),
                before.timestamp_millis(),
                u64::MAX,
            )
            .await?
            .deleted;
            print(json, &serde_json::json!({ "pruned": pruned }), |_| {
                format!(
                    "{pruned} events written before {} deleted",
                    before.to_rfc3339()
                )
            })?;
        }
        Command::Events {
            command: None,
            tenant: None,
            ..
        } => anyhow::bail!("events needs --tenant NAME (or the subcommand prune)"),
        Command::Events {
            command: None,
            tenant: Some(tenant),
            after,
            limit,
            json,
        } => {
            let page = admin::event_page(&store(&cli.db).await?, &tenant, after, limit).await?;
            print(json, &page.events, |es| {
                let mut lines: Vec<String> = es
                    .iter()
                    .map(|e| {
                        format!(
                            "{}  {}  {}  {}",
                            e.seq, e.created_at, e.r#type, e.resource_id
                        )
                    })
                    .collect();
                if es.is_empty() {
                    lines.push(format!("no events after seq {after}"));
                }
                if let Some(next) = page.next_after {
                    let limit = if limit == DEFAULT_EVENTS {
                        String::new()
                    } else {
                        format!(" --limit {limit}")
                    };
                    lines.push(format!(
                        "… more events after seq {next}: dirsync events --tenant {} --after {next}{limit}",
                        shell_word(&tenant)
                    ));
                }
                lines.join("\n")
            })?;
        }
        Command::Directory {
            command:
                DirectoryCommand::Create {
                    tenant,
                    name,
                    vendor,
                    json,
                },
        } => {
            let dir =
                admin::create_directory(&store(&cli.db).await?, &tenant, &name, &vendor).await?;
            print(json, &dir, |d| {
                format!(
                    "directory {} ({}) created in tenant {}: {}",
                    d.name, d.vendor, d.tenant, d.id
                )
            })?;
        }
        Command::Token { command } => {
            let store = store(&cli.db).await?;
            match command {
                TokenCommand::Create {
                    directory,
                    label,
                    json,
                } => {
                    let token = admin::create_token(&store, &directory, label.as_deref()).await?;
                    print(json, &token, |t| {
                        format!(
                            "token {} created for directory {}.\nSecret (shown once, store it now):\n{}",
                            t.id, t.directory_id, t.token
                        )
                    })?;
                }
                TokenCommand::List { directory, json } => {
                    let tokens = admin::list_tokens(&store, &directory).await?;
                    print(json, &tokens, |ts| {
                        ts.iter()
                            .map(|t| {
                                format!(
                                    "{}  {}…  created {}{}",
                                    t.id,
                                    t.prefix,
                                    t.created_at,
                                    t.revoked_at
                                        .as_ref()
                                        .map(|r| format!("  revoked {r}"))
                                        .unwrap_or_default()
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("\n")
                    })?;
                }
                TokenCommand::Revoke {
                    directory,
                    token_id,
                    json,
                } => {
                    let token = admin::revoke_token(&store, &directory, &token_id).await?;
                    print(json, &token, |t| format!("token {} revoked", t.id))?;
                }
            }
        }
    }
    Ok(())
}
