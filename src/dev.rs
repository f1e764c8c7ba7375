//! `dirsync dev`: a fake identity provider on 127.0.0.1 with generated users
//! and groups, and the connection file that points dirsync at it, so a
//! newcomer can watch a pull work without any account.

use std::path::Path;

use anyhow::Context;
use dirsync::pull::fake::{self, Org, Shared};

pub async fn fake_directory(
    provider: &str,
    users: usize,
    groups: usize,
    seed: u64,
    connection_file: &Path,
) -> anyhow::Result<()> {
    let shared = Shared::new(Org::generate(users, groups, seed));
    let (running, connection) = match provider {
        "google" => {
            let credentials = fake::google::Credentials::default();
            let running = fake::google::start(shared, credentials.clone())?;
            let connection = fake::google::dev_connection(&running, &credentials);
            (running, connection)
        }
        "entra" => {
            let credentials = fake::graph::Credentials::default();
            let running = fake::graph::start(shared, credentials.clone())?;
            let connection = fake::graph::dev_connection(&running, &credentials);
            (running, connection)
        }
        "okta" => {
            let credentials = fake::okta::Credentials::default();
            let running = fake::okta::start(shared, credentials.clone())?;
            let connection = fake::okta::dev_connection(&running, &credentials);
            (running, connection)
        }
        other => anyhow::bail!("no fake for {other:?}: google, entra or okta"),
    };
    std::fs::write(connection_file, serde_json::to_string_pretty(&connection)?)
        .with_context(|| format!("writing {}", connection_file.display()))?;
    // The file holds the fake's (fake) credentials: keep it to its owner all
    // the same, as one would a real connection file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(connection_file, std::fs::Permissions::from_mode(0o600))?;
    }
    // Whoever started it may stop reading; the fake goes on serving.
    use std::io::Write;
    let _ = writeln!(
        std::io::stdout(),
        "fake {provider} directory with {users} users in {groups} groups at {}\n\
         connection file: {}\n\
         create a pull directory from it:\n  \
         dirsync connection create --tenant TENANT --name NAME --file {}\n\
         stop with Ctrl-C",
        running.base_url,
        connection_file.display(),
        connection_file.display(),
    );
    tokio::signal::ctrl_c().await?;
    drop(running);
    Ok(())
}
