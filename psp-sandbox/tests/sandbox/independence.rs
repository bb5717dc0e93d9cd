//! Architecture invariant: the sandbox PSP knows nothing of tally-pay. `tally-psp-sandbox` does
//! not depend on `tally-payments`, directly or through another workspace crate, in any kind of
//! dependency (normal, dev or build), so it can only speak to tally-pay over HTTP.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

const SANDBOX: &str = "tally-psp-sandbox";
const PAYMENTS: &str = "tally-payments";

/// Every workspace member and the names of its direct dependencies, from `cargo metadata`.
fn workspace_dependencies() -> BTreeMap<String, BTreeSet<String>> {
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
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let packages = metadata["packages"].as_array().expect("a package list");
    packages
        .iter()
        .map(|package| {
            let name = package["name"].as_str().expect("a package name").to_owned();
            let dependencies = package["dependencies"].as_array().expect("dependencies");
            let names = dependencies
                .iter()
                .map(|dependency| dependency["name"].as_str().expect("a name").to_owned())
                .collect();
            (name, names)
        })
        .collect()
}

#[test]
fn the_sandbox_psp_does_not_depend_on_tally_payments() {
    let workspace = workspace_dependencies();
    assert!(workspace.contains_key(SANDBOX) && workspace.contains_key(PAYMENTS));
    // Walk the workspace crates the sandbox reaches; crates.io crates cannot lead back.
    let mut reached = BTreeSet::from([SANDBOX.to_owned()]);
    let mut paths = vec![vec![SANDBOX.to_owned()]];
    while let Some(path) = paths.pop() {
        let last = path.last().expect("a path is never empty");
        for dependency in &workspace[last] {
            let mut longer = path.clone();
            longer.push(dependency.clone());
            assert_ne!(
                dependency,
                PAYMENTS,
                "{SANDBOX} must not depend on {PAYMENTS}: {}",
                longer.join(" -> ")
            );
            if workspace.contains_key(dependency) && reached.insert(dependency.clone()) {
                paths.push(longer);
            }
        }
    }
    // The walk did see the workspace: the sandbox loads its certificates with tally-tls.
    assert!(reached.contains("tally-tls"), "{reached:?}");
}
