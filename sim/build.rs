//! Declares the `tokio_unstable` cfg (set by `.cargo/config.toml`) so rustc knows it.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(tokio_unstable)");
    println!("cargo::rerun-if-changed=build.rs");
}
