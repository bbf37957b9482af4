//! Embeds the clinic web app (`node/web/dist`, built by `npm run build` in node/web and
//! committed) into the binary: writes a table of every file, its media type and its
//! bytes, so the node serves the app with nothing on disk and nothing from a CDN.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut files = Vec::new();
    walk(&dist, &mut files);
    files.sort();
    if !files.iter().any(|f| f.ends_with("index.html")) {
        panic!(
            "{} holds no index.html: build the web app (npm ci && npm run build in node/web)",
            dist.display()
        );
    }
    let mut table = String::from("pub static FILES: &[(&str, &str, &[u8])] = &[\n");
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let rel = file
            .strip_prefix(&dist)
            .expect("a file under dist/")
            .to_string_lossy()
            .replace('\\', "/");
        let media = media_type(&rel).unwrap_or_else(|| panic!("no media type for {rel}"));
        let _ = writeln!(
            table,
            "    ({:?}, {:?}, include_bytes!({:?})),",
            format!("/{rel}"),
            media,
            file.canonicalize().expect("a readable file")
        );
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("web_assets.rs");
    std::fs::write(out, table).expect("write the asset table");
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}

fn media_type(path: &str) -> Option<&'static str> {
    let ext = path.rsplit('.').next()?;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
}
