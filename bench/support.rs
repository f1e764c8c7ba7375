//! What the benchmarks share: a fresh database for one run (a SQLite file in
//! a temp directory, or a new PostgreSQL database beside a given URL, dropped
//! afterwards) and the process's peak RSS. Included by each benchmark with
//! `#[path = "support.rs"] mod support;`.

use dirsync::store::Store;

/// A database made for one benchmark run.
pub struct Database {
    pub url: String,
    pub backend: &'static str,
    /// The PostgreSQL server's admin connection and the database's name.
    made: Option<(Store, String)>,
    _dir: tempfile::TempDir,
}

impl Database {
    /// `--database-url` if given (a `postgres://` URL gets a new database
    /// beside it), else a SQLite file in a temp directory.
    pub async fn fresh(url: Option<String>) -> Database {
        let dir = tempfile::tempdir().unwrap();
        let (url, made) = match url {
            Some(admin_url) if admin_url.starts_with("postgres") => {
                let name = format!("dirsync_bench_{}", uuid::Uuid::new_v4().simple());
                let admin = Store::connect(&admin_url, 1).await.unwrap();
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .unwrap();
                let (base, query) = admin_url.split_once('?').unwrap_or((&admin_url, ""));
                let base = base.rsplit_once('/').unwrap().0;
                let query = if query.is_empty() {
                    String::new()
                } else {
                    format!("?{query}")
                };
                (format!("{base}/{name}{query}"), Some((admin, name)))
            }
            Some(url) => (url, None),
            None => (
                format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("bench.db").display()
                ),
                None,
            ),
        };
        let backend = if url.starts_with("postgres") {
            "postgres"
        } else {
            "sqlite"
        };
        Database {
            url,
            backend,
            made,
            _dir: dir,
        }
    }

    /// Drop the PostgreSQL database made for the run, unless `keep`.
    pub async fn finish(self, keep: bool) {
        if let Some((admin, name)) = self.made {
            if keep {
                println!("kept database {name}");
                return;
            }
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await
                .unwrap();
        }
    }
}

/// This process's peak resident set (`VmHWM`), in MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
