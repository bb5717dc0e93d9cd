//! `tally-node restore --from BACKUP --data NEWDIR`: checks a backup written by `tallyctl
//! backup` (its manifest, then each file's size and SHA-256, then the snapshot's own crc32) and
//! loads it into a new data directory as the starting state of a new cluster. The source cluster
//! is never contacted.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use tally_node::raft::restore_backup;
use tally_node::storage::RocksStorage;

/// What `tallyctl backup` writes as `MANIFEST.json`.
#[derive(Debug, Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    applied_index: u64,
    applied_term: u64,
    digest: String,
    files: Vec<ManifestFile>,
}

#[derive(Debug, Deserialize)]
struct ManifestFile {
    name: String,
    bytes: u64,
    sha256: String,
}

const MANIFEST_FILE: &str = "MANIFEST.json";
const STATE_FILE: &str = "state.snapshot";
const BACKUP_FORMAT_VERSION: u32 = 1;

#[derive(Args)]
pub struct RestoreArgs {
    /// The backup directory (from `tallyctl backup --to DIR`).
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
    /// The new node's data directory; it must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
}

pub fn run(args: RestoreArgs) -> ExitCode {
    match restore(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tally-node restore: {error}");
            ExitCode::FAILURE
        }
    }
}

fn restore(args: &RestoreArgs) -> Result<(), String> {
    let manifest = read_manifest(&args.from)?;
    for file in &manifest.files {
        check_file(&args.from, file)?;
    }
    let state = args.from.join(STATE_FILE);
    if !manifest.files.iter().any(|file| file.name == STATE_FILE) {
        return Err(format!(
            "{} lists no {STATE_FILE}",
            args.from.join(MANIFEST_FILE).display()
        ));
    }
    if args.data.exists()
        && std::fs::read_dir(&args.data)
            .map_err(|e| format!("reading {}: {e}", args.data.display()))?
            .next()
            .is_some()
    {
        return Err(format!(
            "{} is not empty: restore into a new data directory (the state of a node that has \
             one already is never overwritten)",
            args.data.display()
        ));
    }
    let storage = RocksStorage::open(&args.data)
        .map_err(|e| format!("creating {}: {e}", args.data.display()))?;
    let mut file =
        std::fs::File::open(&state).map_err(|e| format!("opening {}: {e}", state.display()))?;
    let digest = restore_backup(&storage, &mut file)
        .map_err(|e| format!("{} is damaged: {e}", state.display()))?;
    if digest != manifest.digest {
        return Err(format!(
            "the restored state's digest {digest} is not the manifest's {}: {} does not match \
             {}",
            manifest.digest,
            state.display(),
            args.from.join(MANIFEST_FILE).display()
        ));
    }
    println!(
        "restored applied index {} (term {}) of the backup into {}: digest {digest}",
        manifest.applied_index,
        manifest.applied_term,
        args.data.display()
    );
    println!(
        "restore the same backup into every node of the new cluster, start them, then form it \
         once with `tallyctl cluster init --nodes ...`; `tallyctl verify` reports this digest \
         until the first write"
    );
    Ok(())
}

fn read_manifest(dir: &Path) -> Result<Manifest, String> {
    let path = dir.join(MANIFEST_FILE);
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| format!("{} is damaged (not a backup manifest): {e}", path.display()))?;
    if manifest.format != "tally-backup" {
        return Err(format!("{} is not a Tally backup manifest", path.display()));
    }
    if manifest.version > BACKUP_FORMAT_VERSION {
        return Err(format!(
            "{} is backup format {}, newer than the {BACKUP_FORMAT_VERSION} this tally-node reads",
            path.display(),
            manifest.version
        ));
    }
    Ok(manifest)
}

/// Size and SHA-256 of one listed file; the error names the file.
fn check_file(dir: &Path, listed: &ManifestFile) -> Result<(), String> {
    if listed.name.contains('/') || listed.name.starts_with('.') {
        return Err(format!(
            "the manifest lists a file outside the backup: {:?}",
            listed.name
        ));
    }
    let path = dir.join(&listed.name);
    let mut file = std::fs::File::open(&path)
        .map_err(|e| format!("{} is missing or unreadable: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        bytes += read as u64;
    }
    let sha256: String = hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    if bytes != listed.bytes || sha256 != listed.sha256 {
        return Err(format!(
            "{} is damaged: {bytes} bytes with SHA-256 {sha256}, the manifest says {} bytes with \
             SHA-256 {}",
            path.display(),
            listed.bytes,
            listed.sha256
        ));
    }
    Ok(())
}
