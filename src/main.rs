//! The `dirsync` command line: serve, migrate, and the operator's admin commands.

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Serialize;

use dirsync::config::{DatabaseSettings, ServerSettings};
use dirsync::reconcile::host::Action;

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
    #[command(flatten)]
    db: DatabaseSettings,
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
    /// Manage a directory's SCIM bearer tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// List a tenant's app users (what the host application sees).
    Users {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// List a tenant's app groups and their members.
    Groups {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        json: bool,
    },
    /// The host application's actions on a user (until the JSON API).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Read a tenant's events in order, after a sequence number.
    Events {
        #[arg(long)]
        tenant: String,
        /// Print events with a sequence number greater than this.
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 100)]
        limit: u64,
        #[arg(long)]
        json: bool,
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
        role: String,
    },
}

#[derive(Debug, clap::Args)]
struct UserArgs {
    #[arg(long)]
    tenant: String,
    email: String,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct PolicyArgs {
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
    #[arg(long)]
    json: bool,
}

impl PolicyArgs {
    fn change(&self) -> anyhow::Result<admin::PolicyChange> {
        fn limit<T: std::str::FromStr>(raw: &Option<String>) -> anyhow::Result<Option<Option<T>>> {
            raw.as_deref()
                .map(|v| match v {
                    "none" => Ok(None),
                    v => v
                        .parse()
                        .map(Some)
                        .map_err(|_| anyhow::anyhow!("{v:?} is not a number or \"none\"")),
                })
                .transpose()
        }
        let serde_enum =
            |raw: &Option<String>| raw.as_ref().map(|v| serde_json::Value::String(v.clone()));
        let on_off = |raw: &Option<String>| raw.as_deref().map(|v| v == "on");
        let group_roles = if self.clear_group_roles {
            Some(Vec::new())
        } else if self.group_role.is_empty() {
            None
        } else {
            Some(
                self.group_role
                    .iter()
                    .map(|r| admin::parse_group_role(r))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        };
        Ok(admin::PolicyChange {
            default_role: self.default_role.clone(),
            new_user_status: serde_enum(&self.new_user_status)
                .map(serde_json::from_value)
                .transpose()?,
            on_delete: serde_enum(&self.on_delete)
                .map(serde_json::from_value)
                .transpose()?,
            on_missing: serde_enum(&self.on_missing)
                .map(serde_json::from_value)
                .transpose()?,
            max_deactivations: limit(&self.max_deactivations)?,
            max_deactivation_percent: limit(&self.max_deactivation_percent)?,
            allowed_domains: self
                .allowed_domains
                .as_ref()
                .map(|d| d.split(',').map(str::to_owned).collect()),
            group_roles_enabled: on_off(&self.group_roles),
            group_roles,
            require_group_membership: on_off(&self.require_group_membership),
        })
    }
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant.
    Create {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DirectoryCommand {
    /// Create a SCIM directory in a tenant.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// entra | okta | onelogin | jumpcloud | pingone | google | generic
        #[arg(long, default_value = "generic")]
        vendor: String,
        #[arg(long)]
        json: bool,
    },
    /// Show a directory's provisioning policy, or change it with flags.
    Policy(PolicyArgs),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token; the secret is printed once and never again.
    Create {
        #[arg(long)]
        directory: String,
        #[arg(long)]
        label: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List a directory's tokens (never their secrets).
    List {
        #[arg(long)]
        directory: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token; requests with it get 401 from then on.
    Revoke {
        #[arg(long)]
        directory: String,
        token_id: String,
        #[arg(long)]
        json: bool,
    },
}

fn print<T: Serialize>(
    json: bool,
    value: &T,
    text: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        println!("{}", text(value));
    }
    Ok(())
}

async fn store(db: &DatabaseSettings) -> anyhow::Result<Store> {
    let store = Store::connect(&db.database_url, 2)
        .await
        .with_context(|| "connecting to the database (DIRSYNC_DATABASE_URL)")?;
    store.migrate().await.context("migrating the database")?;
    Ok(store)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Admin commands print results on stdout; only problems go to stderr.
    telemetry::init(if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    });
    match cli.command {
        Command::Serve(settings) => {
            let app = Application::build(&cli.db, settings).await?;
            tracing::info!(port = app.port(), "dirsync listening");
            app.run_until_stopped().await?;
        }
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
                        )
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
            tenant,
            after,
            limit,
            json,
        } => {
            let events = admin::events(&store(&cli.db).await?, &tenant, after, limit).await?;
            print(json, &events, |es| {
                es.iter()
                    .map(|e| {
                        format!(
                            "{}  {}  {}  {}",
                            e.seq, e.created_at, e.r#type, e.resource_id
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
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
