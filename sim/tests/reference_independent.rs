//! The reference ledger must stay independent of the ledger it judges: it may use the node's
//! data types, result codes and limits, never its logic. A reference that called the node's
//! ledger code would agree with every bug in it.

use std::path::{Path, PathBuf};

/// Names of the node's ledger logic (and of the data types' helper methods, which are logic
/// too) that the reference must not use.
const FORBIDDEN: &[&str] = &[
    "LedgerBatch",
    "MemState",
    "LedgerState",
    "Overlay",
    "Mutations",
    "apply_",
    "ApplyContext",
    "LedgerFaults",
    "expire_pending",
    "release_pending",
    "ledger_totals",
    "ledger::apply",
    "ledger::mem",
    "storage::",
    "expires_at(",
    "is_post_or_void",
    "is_balancing",
    "respects_flags",
    "debits_total",
    "credits_total",
    "balance_at",
    "has_reserved",
    ".contains(",
    "is_committed",
    "TxnResult::failed",
    ".key()",
];

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn the_reference_uses_no_ledger_logic() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let entries = std::fs::read_dir(&src).expect("sim/src is readable");
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with("reference") {
            continue;
        }
        if path.is_dir() {
            sources(&path, &mut files);
        } else {
            files.push(path);
        }
    }
    assert!(
        files.iter().any(|f| f.ends_with("reference/mod.rs")),
        "the reference's sources were not found under {}",
        src.display()
    );
    let mut offences = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a reference source is readable");
        for (number, line) in text.lines().enumerate() {
            for name in FORBIDDEN {
                if line.contains(name) {
                    offences.push(format!("{}:{}: {name}: {line}", file.display(), number + 1));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "the reference must not use the node's ledger logic:\n{}",
        offences.join("\n")
    );
}
