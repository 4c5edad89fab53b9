//! The buyer's web app (`web/`, built to `web/dist`) served under `/app/`, and the development
//! sign-in that hands the demo a buyer token.
//!
//! The built files are read once at start (the whole app is a few hundred KiB) and served from
//! memory: no path from a request ever reaches the file system. Everything under
//! `/app/assets/` carries a content hash in its name (esbuild's `[name]-[hash]`), so it is
//! cacheable forever (`immutable`); `index.html`, which names the current hashes, has a short
//! TTL, so a CDN in front picks up a new build within a minute.
//!
//! `POST /dev/signin` exists only when `auth.dev_signin` is set (`scripts/up` sets it for the
//! local stack; it is off by default): with production settings it is a 404 like any unknown
//! path, and a deployment's tokens come from its identity provider.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode};
use warp::{Filter, Reply};

use crate::auth::Role;
use crate::errors::ApiError;
use crate::App;

/// How long a CDN or browser may reuse `index.html` without asking again.
pub const INDEX_MAX_AGE_SECS: u64 = 60;
/// Hashed assets never change under their name.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Lifetime of a development sign-in token.
pub const DEV_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

/// One built file.
#[derive(Debug, Clone)]
struct Asset {
    body: Bytes,
    content_type: &'static str,
}

/// The web app's files and the development sign-in switch.
#[derive(Debug, Default)]
pub struct Web {
    /// `index.html` and `assets/<name>`, by path under `/app/`.
    files: HashMap<String, Asset>,
    /// `POST /dev/signin` is served.
    pub dev_signin: bool,
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("map") | Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

impl Web {
    /// Reads the built app from `dir` (`index.html` and `assets/*`). A missing folder serves no
    /// app (logged): the API does not depend on it.
    pub fn load(dir: Option<&Path>, dev_signin: bool) -> Self {
        let mut files = HashMap::new();
        if let Some(dir) = dir {
            let mut read = |path: &Path, key: String| match std::fs::read(path) {
                Ok(body) => {
                    files.insert(
                        key.clone(),
                        Asset {
                            body: body.into(),
                            content_type: content_type(&key),
                        },
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, path = %path.display(), "web app file not read")
                }
            };
            read(&dir.join("index.html"), "index.html".to_owned());
            // The gate scanner: its own page, so a gate's device never loads the buyer's app.
            read(&dir.join("gate.html"), "gate.html".to_owned());
            match std::fs::read_dir(dir.join("assets")) {
                Ok(entries) => {
                    for entry in entries.flatten() {
                        if let Some(name) = entry.file_name().to_str() {
                            read(&entry.path(), format!("assets/{name}"));
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, dir = %dir.display(), "web app not served (build it: web/)")
                }
            }
        }
        Self { files, dev_signin }
    }

    /// From `http.web_dir` and `auth.dev_signin`.
    pub fn from_settings(settings: &settings::Settings) -> Self {
        Self::load(
            settings.http.web_dir.as_deref().map(Path::new),
            settings.auth.as_ref().is_some_and(|a| a.dev_signin),
        )
    }

    fn reply(&self, key: &str) -> Option<warp::reply::Response> {
        let asset = self.files.get(key)?;
        let mut response = warp::reply::Response::new(asset.body.clone().into());
        let headers = response.headers_mut();
        headers.insert("content-type", HeaderValue::from_static(asset.content_type));
        let cache = if key.ends_with(".html") {
            HeaderValue::from_str(&format!("public, max-age={INDEX_MAX_AGE_SECS}"))
                .unwrap_or(HeaderValue::from_static("no-cache"))
        } else {
            HeaderValue::from_static(IMMUTABLE)
        };
        headers.insert("cache-control", cache);
        headers.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        Some(response)
    }
}

/// `GET /app` (redirect), `GET /app/`, `GET /app/gate.html` (the gate scanner) and
/// `GET /app/assets/{name}`; `POST /dev/signin` when on.
pub fn routes(app: App) -> BoxedFilter<(warp::reply::Response,)> {
    // `path!("app")` also takes `/app/`: only the bare path is redirected.
    let bare = warp::path!("app")
        .and(warp::get())
        .and(warp::path::full())
        .and_then(|full: warp::path::FullPath| async move {
            if full.as_str() == "/app" {
                Ok(
                    warp::redirect::permanent(warp::http::Uri::from_static("/app/"))
                        .into_response(),
                )
            } else {
                Err(warp::reject::not_found())
            }
        });
    let files = warp::path("app")
        .and(warp::get())
        .and(warp::path::tail())
        .and(crate::filters::with_app(app.clone()))
        .and_then(|tail: warp::path::Tail, app: App| async move {
            let key = match tail.as_str() {
                "" | "index.html" => "index.html",
                other => other,
            };
            app.web.reply(key).ok_or_else(warp::reject::not_found)
        });
    let signin = warp::path!("dev" / "signin")
        .and(crate::filters::with_app(app.clone()))
        .and_then(|app: App| async move {
            // Not served at all unless turned on: the same 404 as any unknown path.
            if app.web.dev_signin {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
        .and(warp::post())
        .and(crate::body::json(crate::body::MAX_BODY_BYTES))
        .and(crate::filters::with_app(app))
        .and_then(dev_signin);
    bare.or(files).unify().or(signin).unify().boxed()
}

/// Body of `POST /dev/signin`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The buyer's user id.
    pub name: String,
}

async fn dev_signin(body: SignIn, app: App) -> Result<warp::reply::Response, warp::Rejection> {
    let user = coordinator::UserId::parse(&body.name).map_err(|e| {
        ApiError::invalid("invalid_name", format!("name: {e}"))
            .with_details(serde_json::json!({"field": "name"}))
    })?;
    let token = app
        .keys
        .mint(&user, Role::Buyer, DEV_TOKEN_TTL)
        .map_err(|e| ApiError::unavailable("auth", e))?;
    Ok(warp::reply::with_status(
        warp::reply::json(&serde_json::json!({
            "token": token,
            "user_id": user,
            "role": "buyer",
            "expires_in": DEV_TOKEN_TTL.as_secs(),
        })),
        StatusCode::OK,
    )
    .into_response())
}
