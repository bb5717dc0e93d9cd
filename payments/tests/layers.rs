//! Architecture invariant: the payment service is built in three layers, and imports point one
//! way only. `domain` (what a payment is) imports nothing of `flows` or `edges`; `flows` (what
//! happens to it) use the store and the PSP connectors but never the HTTP API, so a flow cannot
//! depend on how it was asked for.
//!
//! The check is textual: any path that names a forbidden module, in a `use` or inline, counts.

use std::path::{Path, PathBuf};

/// A layer, the folder it lives in, and the module paths its files must not name.
struct Rule {
    layer: &'static str,
    forbidden: &'static [&'static str],
}

const RULES: &[Rule] = &[
    Rule {
        layer: "domain",
        forbidden: &["flows", "edges"],
    },
    Rule {
        layer: "flows",
        forbidden: &["edges::api", "edges::dashboard"],
    },
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// Every `line: text` of `source` that names `crate::<module>` or climbs to it with `super::`.
fn violations(source: &str, forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (number, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for module in forbidden {
            let named = ["crate::", "tally_payments::"]
                .iter()
                .any(|root| code.contains(&format!("{root}{module}")))
                || code
                    .match_indices("super::")
                    .any(|(at, _)| climbs_to(&code[at..], module));
            if named {
                found.push(format!("{}: {}", number + 1, line.trim()));
            }
        }
    }
    found
}

/// Whether a path starting with `super::` goes through one or more `super::` and then `module`.
fn climbs_to(path: &str, module: &str) -> bool {
    let mut rest = path;
    while let Some(after) = rest.strip_prefix("super::") {
        rest = after;
    }
    rest.starts_with(module)
        && !rest[module.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
}

#[test]
fn domain_and_flows_import_only_downwards() {
    let mut problems = Vec::new();
    for rule in RULES {
        let mut files = Vec::new();
        rust_files(&src().join(rule.layer), &mut files);
        assert!(!files.is_empty(), "no files under src/{}", rule.layer);
        for file in files {
            let text = std::fs::read_to_string(&file).expect("source file");
            for line in violations(&text, rule.forbidden) {
                problems.push(format!("{} line {line}", file.display()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "imports against the layering (domain -> nothing above it; flows -> never the API):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_sees_forbidden_paths_in_every_form() {
    let domain = ["flows", "edges"];
    assert_eq!(violations("use crate::flows::Pay;", &domain).len(), 1);
    assert_eq!(
        violations("let s = crate::edges::store::Store::new();", &domain).len(),
        1
    );
    assert_eq!(
        violations("use super::super::edges::psp;", &domain).len(),
        1
    );
    assert_eq!(violations("use tally_payments::flows;", &domain).len(), 1);
    assert!(violations("use crate::domain::money::Currency;", &domain).is_empty());
    assert!(violations("// crate::flows in a comment", &domain).is_empty());
    assert!(violations("use super::flowsheet;", &domain).is_empty());

    let flows = ["edges::api"];
    assert_eq!(
        violations("use crate::edges::api::router;", &flows).len(),
        1
    );
    assert!(violations("use crate::edges::store::Txn;", &flows).is_empty());
}
