//! The OpenAPI 3.1 documents, one per listener, both written by `scripts/gen-openapi.py`: the
//! public API's (`GET /openapi.json` on the public listener) and the admin listener's
//! (`GET /admin/openapi.json` on the admin listener only, so the public document never
//! advertises it). Each names its own listener as its one server, from the configuration:
//! `http.public_url` when set (the address clients reach, e.g. behind a TLS proxy), else the
//! address the listener is bound to. They are rendered once, when the listeners are bound.

use std::net::SocketAddr;

use bytes::Bytes;

/// The public API's document as generated (no `servers`: they are the configuration's).
pub const PUBLIC: &str = include_str!("../openapi.json");
/// The admin listener's document as generated.
pub const ADMIN: &str = include_str!("../openapi-admin.json");

/// Both documents, each with its listener as its server, serialised.
#[derive(Debug, Clone)]
pub struct Docs {
    /// Served at `/openapi.json` on the public listener.
    pub public: Bytes,
    /// Served at `/admin/openapi.json` on the admin listener.
    pub admin: Bytes,
}

impl Docs {
    /// The documents naming `public_url` and `admin_url` as their servers.
    pub fn new(public_url: &str, admin_url: &str) -> Self {
        Self {
            public: with_server(PUBLIC, public_url, "the public API"),
            admin: with_server(
                ADMIN,
                admin_url,
                "the admin listener: keep it off the public network",
            ),
        }
    }

    /// The documents of listeners bound to `public` and `admin`; `public_url` (configured)
    /// names the public one instead of its bound address when set.
    pub fn for_listeners(public_url: Option<&str>, public: SocketAddr, admin: SocketAddr) -> Self {
        let public = match public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => listener_url(public),
        };
        Self::new(&public, &listener_url(admin))
    }
}

impl Default for Docs {
    /// Before the listeners are bound: the server is wherever the document was fetched from.
    fn default() -> Self {
        Self::new("/", "/")
    }
}

/// `http://` and the bound address; relative (`/`, the server the document came from) when the
/// listener is bound to every interface, whose address (`0.0.0.0`) no client can reach.
pub fn listener_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        "/".to_owned()
    } else {
        format!("http://{addr}")
    }
}

fn with_server(document: &'static str, url: &str, description: &str) -> Bytes {
    let mut doc: serde_json::Value = match serde_json::from_str(document) {
        Ok(doc) => doc,
        // The documents are compiled in and parsed by the tests: never reached.
        Err(_) => return Bytes::from_static(document.as_bytes()),
    };
    doc["servers"] = serde_json::json!([{ "url": url, "description": description }]);
    Bytes::from(serde_json::to_vec(&doc).unwrap_or_else(|_| document.as_bytes().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_document_names_its_own_listener() {
        let docs = Docs::for_listeners(
            None,
            "127.0.0.1:8181".parse().expect("addr"),
            "10.1.2.3:9191".parse().expect("addr"),
        );
        let public: serde_json::Value = serde_json::from_slice(&docs.public).expect("json");
        let admin: serde_json::Value = serde_json::from_slice(&docs.admin).expect("json");
        assert_eq!(public["servers"][0]["url"], "http://127.0.0.1:8181");
        assert_eq!(admin["servers"][0]["url"], "http://10.1.2.3:9191");
        assert_eq!(public["servers"].as_array().map(Vec::len), Some(1));

        let behind_proxy = Docs::for_listeners(
            Some("https://tickets.example.com/"),
            "0.0.0.0:8080".parse().expect("addr"),
            "0.0.0.0:9090".parse().expect("addr"),
        );
        let public: serde_json::Value = serde_json::from_slice(&behind_proxy.public).expect("json");
        let admin: serde_json::Value = serde_json::from_slice(&behind_proxy.admin).expect("json");
        assert_eq!(public["servers"][0]["url"], "https://tickets.example.com");
        assert_eq!(
            admin["servers"][0]["url"], "/",
            "0.0.0.0 is no address to call"
        );
    }
}
