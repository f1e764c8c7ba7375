//! The `dirsync` command line: serve, migrate, and the operator's admin commands.

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Serialize;

use dirsync::config::{DatabaseSettings, ServerSettings};
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
