//! The clinic web app, embedded at build time (see `build.rs`): `/` is the app's page,
//! revalidated on every load so a new node version is picked up at once; `/assets/*`
//! are content-hashed, so a clinic's browsers keep them for a year and load them once.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

mod table {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn find(path: &str) -> Option<(&'static str, &'static [u8])> {
    table::FILES
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, media, bytes)| (*media, *bytes))
}

fn file(media: &'static str, bytes: &'static [u8], cache: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(media)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        bytes,
    )
        .into_response()
}

/// `GET /`: the app.
pub async fn index() -> Response {
    match find("/index.html") {
        Some((media, bytes)) => file(media, bytes, "no-cache"),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /assets/{name}`: a script, stylesheet, font or image of the app.
pub async fn asset(Path(name): Path<String>) -> Response {
    match find(&format!("/assets/{name}")) {
        Some((media, bytes)) => file(media, bytes, IMMUTABLE),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_is_embedded_with_hashed_assets() {
        assert!(find("/index.html").is_some());
        let assets: Vec<_> = table::FILES
            .iter()
            .filter(|(p, _, _)| p.starts_with("/assets/"))
            .collect();
        assert!(assets.iter().any(|(p, _, _)| p.ends_with(".js")));
        assert!(assets.iter().any(|(p, _, _)| p.ends_with(".css")));
        assert!(table::FILES.iter().all(|(_, _, b)| !b.is_empty()));
    }
}
