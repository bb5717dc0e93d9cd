//! `scripts/install-deps --check` decides whether libclang (for the build), `ip` and `nft` (for
//! the partition test) and `chromium` and `chromedriver` (for the dashboard's browser tests) are
//! present by looking for the files; `TALLY_DEPS_ROOT` points it at a fake tree.

use std::path::Path;
use std::process::Command;

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-deps")
}

/// Runs `install-deps --check` against a tree holding `files` (executables under a `bin`
/// directory); returns whether it passed and what it said is missing.
fn check(files: &[&str]) -> (bool, String) {
    let root = tempfile::tempdir().unwrap();
    for file in files {
        let path = root.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"").unwrap();
        if file.contains("bin/") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    let output = Command::new("bash")
        .arg(script())
        .arg("--check")
        .env("TALLY_DEPS_ROOT", root.path())
        .env_remove("LIBCLANG_PATH")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    match output.status.code() {
        Some(0) => {
            assert!(stderr.is_empty(), "{stderr}");
            (true, stderr)
        }
        Some(1) => {
            assert!(stderr.contains("missing: "), "{stderr}");
            (false, stderr)
        }
        other => panic!("install-deps --check exited with {other:?}: {stderr}"),
    }
}

/// True when `install-deps --check` does not report libclang missing in a tree of `files`.
fn finds_libclang(files: &[&str]) -> bool {
    !check(files).1.contains("libclang-dev")
}

/// The partition test's tools, where Debian 12 installs them.
const NETWORK_TOOLS: &[&str] = &["usr/sbin/ip", "usr/sbin/nft"];
/// The browser tests' programs, where Debian 12 installs them.
const BROWSER: &[&str] = &["usr/bin/chromium", "usr/bin/chromedriver"];

#[test]
fn libclang_cpp_alone_is_not_libclang() {
    // The stock Debian Rust image: libclang-cpp ships, libclang does not.
    assert!(!finds_libclang(&[
        "usr/lib/llvm-14/lib/libclang-cpp.so.14",
        "usr/lib/x86_64-linux-gnu/libclang-cpp.so.14",
        "usr/lib/llvm-14/lib/libLLVM-14.so",
    ]));
}

#[test]
fn an_empty_tree_has_no_libclang() {
    assert!(!finds_libclang(&[]));
}

#[test]
fn libclang_is_found_where_debian_installs_it() {
    assert!(finds_libclang(&["usr/lib/llvm-14/lib/libclang.so.1"]));
    assert!(finds_libclang(&["usr/lib/llvm-16/lib/libclang.so"]));
    assert!(finds_libclang(&[
        "usr/lib/x86_64-linux-gnu/libclang-14.so.1"
    ]));
    assert!(finds_libclang(&[
        "usr/lib/aarch64-linux-gnu/libclang-15.so.15.0.7"
    ]));
    assert!(finds_libclang(&[
        "usr/lib/llvm-14/lib/libclang-cpp.so.14",
        "usr/lib/llvm-14/lib/libclang-14.so",
    ]));
}

#[test]
fn ip_and_nft_are_looked_for_in_the_sbin_and_bin_directories() {
    let (ok, missing) = check(&[]);
    assert!(!ok);
    assert!(missing.contains("package iproute2"), "{missing}");
    assert!(missing.contains("package nftables"), "{missing}");

    for tools in [
        ["usr/sbin/ip", "usr/sbin/nft"],
        ["sbin/ip", "sbin/nft"],
        ["bin/ip", "usr/bin/nft"],
    ] {
        let (_, missing) = check(&tools);
        assert!(!missing.contains("iproute2"), "{tools:?}: {missing}");
        assert!(!missing.contains("nftables"), "{tools:?}: {missing}");
    }
    // Only nft: iproute2 is still reported, and the other way round.
    let (_, missing) = check(&["usr/sbin/nft"]);
    assert!(missing.contains("package iproute2") && !missing.contains("nftables"));
    let (_, missing) = check(&["usr/sbin/ip"]);
    assert!(missing.contains("package nftables") && !missing.contains("iproute2"));
    // A file that is not executable, or a directory, is not the program.
    let (_, missing) = check(&["usr/sbin/ip", "usr/lib/nft", "usr/sbin/nft/readme"]);
    assert!(missing.contains("package nftables"), "{missing}");
}

#[test]
fn everything_present_passes_the_check_silently() {
    let mut files = vec!["usr/lib/llvm-14/lib/libclang.so.1"];
    files.extend_from_slice(NETWORK_TOOLS);
    files.extend_from_slice(BROWSER);
    assert_eq!(check(&files), (true, String::new()));
    // Without libclang the check fails, whatever else is there.
    let (ok, missing) = check(NETWORK_TOOLS);
    assert!(!ok);
    assert!(missing.contains("libclang-dev"), "{missing}");
}

#[test]
fn chromium_and_chromedriver_are_each_looked_for() {
    let mut files = vec!["usr/lib/llvm-14/lib/libclang.so.1"];
    files.extend_from_slice(NETWORK_TOOLS);
    let (ok, missing) = check(&files);
    assert!(!ok);
    assert!(missing.contains("package chromium)"), "{missing}");
    assert!(missing.contains("package chromium-driver"), "{missing}");
    files.push("usr/bin/chromium");
    let (ok, missing) = check(&files);
    assert!(!ok);
    assert!(!missing.contains("package chromium)"), "{missing}");
    assert!(missing.contains("package chromium-driver"), "{missing}");
    files.pop();
    files.push("usr/bin/chromedriver");
    let (_, missing) = check(&files);
    assert!(missing.contains("package chromium)") && !missing.contains("chromium-driver"));
}
