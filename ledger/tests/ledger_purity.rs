//! Architecture invariant: `tally-ledger` does no IO and has no clock, rng or unordered maps.
//!
//! Two checks: its sources never mention an IO facility, and its `Cargo.toml` names no dependency
//! outside a short list of pure crates, so an IO crate cannot even be reached from the ledger.

use std::path::{Path, PathBuf};

/// Substrings that must not appear anywhere in the ledger's source, comments included, so that a
/// mention never hides a use.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "rocksdb",
    "tonic",
    "std::fs",
    "std::net",
    "std::time",
    "SystemTime",
    "Instant",
    "rand::",
    "HashMap",
    "HashSet",
    "f32",
    "f64",
    "std::thread",
];

/// The only crates the ledger may depend on (outside dev-dependencies): none of them does IO.
const DEPENDENCIES_ALLOWED: &[&str] = &["serde", "thiserror", "crc32fast"];

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read ledger dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn ledger_sources_do_no_io() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    files.sort();
    assert!(
        files.len() >= 5,
        "expected the ledger sources in {}",
        dir.display()
    );
    let mut violations = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read source");
        for (number, line) in text.lines().enumerate() {
            for token in FORBIDDEN.iter().filter(|token| line.contains(**token)) {
                violations.push(format!("{}:{}: {token}", file.display(), number + 1));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "forbidden in ledger/src:\n{}",
        violations.join("\n")
    );
}

/// The names of every non-dev dependency table in `manifest`: `[dependencies]`,
/// `[build-dependencies]` and their `[target.'cfg(..)'.*]` forms.
fn dependency_names(manifest: &toml::Table) -> Vec<String> {
    let mut tables: Vec<&toml::Table> = Vec::new();
    for key in ["dependencies", "build-dependencies"] {
        tables.extend(manifest.get(key).and_then(toml::Value::as_table));
    }
    let targets = manifest.get("target").and_then(toml::Value::as_table);
    for target in targets.into_iter().flat_map(|targets| targets.values()) {
        for key in ["dependencies", "build-dependencies"] {
            tables.extend(target.get(key).and_then(toml::Value::as_table));
        }
    }
    let mut names: Vec<String> = tables
        .into_iter()
        .flat_map(|table| table.keys().cloned())
        .collect();
    names.sort();
    names
}

#[test]
fn ledger_depends_only_on_pure_crates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let text = std::fs::read_to_string(&path).expect("read ledger/Cargo.toml");
    let manifest: toml::Table = text.parse().expect("ledger/Cargo.toml is TOML");
    let names = dependency_names(&manifest);
    assert!(
        names.iter().any(|name| name == "serde"),
        "expected serde among the ledger's dependencies, found {names:?}"
    );
    let extra: Vec<&String> = names
        .iter()
        .filter(|name| !DEPENDENCIES_ALLOWED.contains(&name.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "{} names dependencies outside the pure list {DEPENDENCIES_ALLOWED:?}: {extra:?}",
        path.display()
    );
}
