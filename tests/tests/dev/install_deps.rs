//! `scripts/install-deps --check` decides whether libclang is present by looking for the files
//! bindgen loads; `TALLY_DEPS_ROOT` points it at a fake tree.

use std::path::Path;
use std::process::Command;

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-deps")
}

/// Runs `install-deps --check` against a tree holding `files`; true when it finds libclang.
fn finds_libclang(files: &[&str]) -> bool {
    let root = tempfile::tempdir().unwrap();
    for file in files {
        let path = root.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"").unwrap();
    }
    let output = Command::new("bash")
        .arg(script())
        .arg("--check")
        .env("TALLY_DEPS_ROOT", root.path())
        .env_remove("LIBCLANG_PATH")
        .output()
        .unwrap();
    match output.status.code() {
        Some(0) => true,
        Some(1) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains("libclang-dev"), "{stderr}");
            false
        }
        other => panic!(
            "install-deps --check exited with {other:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

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
