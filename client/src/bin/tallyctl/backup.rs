//! `tallyctl backup --to DIR`: streams an online, consistent backup of the leader's applied state
//! into a new directory: `state.snapshot` (the node's snapshot format, crc32-checked) and
//! `MANIFEST.json` (the applied index and term, the state digest, and each file's size and
//! SHA-256). `tally-node restore --from DIR` checks all of it before it uses any of it.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::Context;

/// The manifest's name, and the state file's.
pub const MANIFEST_FILE: &str = "MANIFEST.json";
pub const STATE_FILE: &str = "state.snapshot";
/// Version of the backup directory layout (`"version"` in the manifest).
pub const BACKUP_FORMAT_VERSION: u32 = 1;

pub async fn run(context: &Context, to: &Path) -> anyhow::Result<ExitCode> {
    if to.exists()
        && std::fs::read_dir(to)
            .with_context(|| format!("reading {}", to.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} exists and is not empty; a backup goes into a new (or empty) directory",
            to.display()
        );
    }
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let partial = to.join(format!("{STATE_FILE}.partial"));
    let result = stream_into(context, &partial).await;
    let (header, sha256, bytes) = match result {
        Ok(done) => done,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
    };
    let state = to.join(STATE_FILE);
    std::fs::rename(&partial, &state)
        .with_context(|| format!("renaming to {}", state.display()))?;
    let manifest = json!({
        "format": "tally-backup",
        "version": BACKUP_FORMAT_VERSION,
        "applied_index": header.applied_index,
        "applied_term": header.applied_term,
        "digest": header.digest,
        "created_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "files": [{"name": STATE_FILE, "bytes": bytes, "sha256": sha256}],
    });
    let manifest_path = to.join(MANIFEST_FILE);
    let text = serde_json::to_string_pretty(&manifest)? + "\n";
    let mut file = std::fs::File::create(&manifest_path)
        .with_context(|| format!("creating {}", manifest_path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    if let Ok(dir) = std::fs::File::open(to) {
        let _ = dir.sync_all();
    }
    if context.json {
        outln!("{manifest}");
    } else {
        outln!(
            "backup of applied index {} (term {}) in {}: {bytes} bytes, digest {}",
            header.applied_index,
            header.applied_term,
            to.display(),
            header.digest
        );
        outln!(
            "restore it with: tally-node restore --from {} --data NEW_DATA_DIR",
            to.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the streamed backup to `path` (synced); returns its header, SHA-256 and size.
async fn stream_into(
    context: &Context,
    path: &Path,
) -> anyhow::Result<(tally_proto::v1::BackupChunk, String, u64)> {
    let mut file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let header = context
        .client
        .backup(|chunk| {
            hasher.update(chunk);
            bytes += chunk.len() as u64;
            file.write_all(chunk)
        })
        .await
        .context("the backup failed; nothing was kept")?;
    file.sync_all()?;
    Ok((header, hex::encode(hasher.finalize()), bytes))
}
