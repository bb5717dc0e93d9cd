//! Architecture invariant: `node/src/ledger` does no IO and has no clock, rng or unordered maps.

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
fn ledger_does_no_io() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ledger");
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
        "forbidden in node/src/ledger:\n{}",
        violations.join("\n")
    );
}
