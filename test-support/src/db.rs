//! A Postgres database of the test's own, migrated, and dropped when the value is
//! dropped (also when the test panics, so failed runs leave nothing behind).

use sqlx::{Connection, Executor, PgConnection, PgPool};

/// The server the tests use (`DATABASE_URL`, as the test command sets it).
pub fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh, migrated database.
pub struct TestDb {
    pub pool: PgPool,
    name: String,
}

impl TestDb {
    /// Its connection URL (for processes the test starts).
    pub fn url(&self) -> String {
        format!("{}/{}", server_url().rsplit_once('/').unwrap().0, self.name)
    }
}

impl TestDb {
    pub async fn new(prefix: &str) -> Self {
        let name = format!("seats_{prefix}_{}", uuid_like());
        let mut admin = PgConnection::connect(&server_url()).await.unwrap();
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let url = format!("{}/{name}", server_url().rsplit_once('/').unwrap().0);
        let pool = PgPool::connect(&url).await.unwrap();
        catalog::migrate(&pool).await.unwrap();
        Self { pool, name }
    }

    /// Closes the pool; the database goes when `self` is dropped.
    pub async fn drop(self) {
        self.pool.close().await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async: a short-lived runtime on its own thread does the I/O.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&server_url()).await {
                    let _ = admin
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await;
                }
            });
        })
        .join();
    }
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}_{nanos}", std::process::id())
}
