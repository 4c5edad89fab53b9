//! Test support: a Postgres database of the test's own, migrated, dropped by `drop()`.
#![allow(dead_code, clippy::unwrap_used)]

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

    pub async fn drop(self) {
        self.pool.close().await;
        let mut admin = PgConnection::connect(&server_url()).await.unwrap();
        admin
            .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await
            .unwrap();
    }
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}_{nanos}", std::process::id())
}
