//! Architecture invariant: tally-pay never sees protobuf. `tally-payments` has no dependency of any
//! kind (normal, dev or build) on `tally-proto`: it talks to the cluster through `tally-client`,
//! whose calls take and return the ledger's own types (`tally-ledger`).

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

const PAYMENTS: &str = "tally-payments";
const FORBIDDEN: &[&str] = &["tally-proto"];

/// `cargo metadata` of the workspace (its members only).
fn workspace_metadata() -> Value {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

/// The direct dependencies of `package` (any kind) whose name is in `forbidden`, each as
/// `name (kind)`. Panics when `package` is not in the metadata, so a renamed crate cannot make
/// the check pass by finding nothing.
fn forbidden_dependencies(metadata: &Value, package: &str, forbidden: &[&str]) -> Vec<String> {
    let packages = metadata["packages"].as_array().expect("a package list");
    let found = packages
        .iter()
        .find(|candidate| candidate["name"] == package)
        .unwrap_or_else(|| panic!("{package} is not a workspace member"));
    let dependencies = found["dependencies"].as_array().expect("dependencies");
    dependencies
        .iter()
        .filter_map(|dependency| {
            let name = dependency["name"].as_str().expect("a dependency name");
            let kind = dependency["kind"].as_str().unwrap_or("normal");
            forbidden
                .contains(&name)
                .then(|| format!("{name} ({kind})"))
        })
        .collect()
}

#[test]
fn tally_payments_does_not_depend_on_tally_proto() {
    let metadata = workspace_metadata();
    let found = forbidden_dependencies(&metadata, PAYMENTS, FORBIDDEN);
    assert!(
        found.is_empty(),
        "{PAYMENTS} must reach the ledger through tally-client's ledger types, not protobuf; \
         remove from payments/Cargo.toml: {found:?}"
    );
    // The check did read the real manifest: the client is a dependency.
    let client = forbidden_dependencies(&metadata, PAYMENTS, &["tally-client"]);
    assert_eq!(client, ["tally-client (normal)"]);
}

#[test]
fn the_checker_finds_a_forbidden_dependency_of_any_kind() {
    let metadata = json!({
        "packages": [
            {
                "name": PAYMENTS,
                "dependencies": [
                    {"name": "tally-client", "kind": null},
                    {"name": "tally-proto", "kind": "dev"},
                ],
            },
            {"name": "tally-client", "dependencies": [{"name": "tally-proto", "kind": null}]},
        ],
    });
    assert_eq!(
        forbidden_dependencies(&metadata, PAYMENTS, FORBIDDEN),
        ["tally-proto (dev)"]
    );
    // Only the package's own dependencies count: the client may use protobuf.
    let clean = json!({
        "packages": [
            {"name": PAYMENTS, "dependencies": [{"name": "tally-client", "kind": null}]},
            {"name": "tally-client", "dependencies": [{"name": "tally-proto", "kind": null}]},
        ],
    });
    assert!(forbidden_dependencies(&clean, PAYMENTS, FORBIDDEN).is_empty());
    let missing =
        std::panic::catch_unwind(|| forbidden_dependencies(&clean, "tally-pay", FORBIDDEN));
    assert!(
        missing.is_err(),
        "an unknown package must not pass as clean"
    );
}
