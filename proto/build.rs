//! Compiles the .proto files with a vendored protoc, so a fresh machine needs no system protoc.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    let files = [
        "proto/tally/v1/ledger.proto",
        "proto/tally/v1/admin.proto",
        "proto/tally/v1/raft.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    // The descriptor set lets tests enumerate every RPC (each must have a role on the node).
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("tally_descriptor.bin"))
        .compile_protos(&files, &["proto"])?;
    Ok(())
}
