//! The snapshot file: every pair of the state-machine spaces, framed and checksummed.
//!
//! Layout: `MAGIC`, `[meta length: u32 LE][meta]`, then items `[1][space: u8][key length: u32]
//! [key][value length: u32][value]`, then `[0]`, then the crc32 of everything before it. The
//! receiver checks the trailing crc32 before it touches its state.

use std::io::{BufReader, BufWriter, Read, SeekFrom, Write};

use super::{Blob, KeyRange, ReadView, Space, StorageError, WriteBatch};

const MAGIC: &[u8; 8] = b"TALLYSN1";
const ITEM: u8 = 1;
const END: u8 = 0;
/// Keys of every space are shorter than this, so a range up to it clears a whole space.
const KEY_BYTES_BOUND: usize = 1024;

fn corrupt(reason: impl Into<String>) -> StorageError {
    StorageError::Corrupt {
        space: "snapshot",
        reason: reason.into(),
    }
}

fn io(error: std::io::Error) -> StorageError {
    StorageError::Io(error.to_string())
}

/// Writes `meta` and every pair of the state-machine spaces of `view`; returns the bytes written.
pub fn write_snapshot(
    view: &dyn ReadView,
    meta: &[u8],
    blob: &mut dyn Blob,
) -> Result<u64, StorageError> {
    let mut out = Crc32Writer {
        inner: BufWriter::new(blob),
        hasher: crc32fast::Hasher::new(),
        bytes: 0,
    };
    out.write_all(MAGIC).map_err(io)?;
    write_chunk(&mut out, meta).map_err(io)?;
    for space in Space::STATE_MACHINE {
        let mut failure = None;
        view.scan(space, &KeyRange::all(), false, &mut |key, value| {
            let written = out
                .write_all(&[ITEM, space as u8])
                .and_then(|()| write_chunk(&mut out, key))
                .and_then(|()| write_chunk(&mut out, value));
            if let Err(error) = written {
                failure = Some(error);
            }
            failure.is_none()
        })?;
        if let Some(error) = failure {
            return Err(io(error));
        }
    }
    out.write_all(&[END]).map_err(io)?;
    let crc = out.hasher.clone().finalize();
    let bytes = out.bytes + 4;
    let mut inner = out.inner;
    inner.write_all(&crc.to_le_bytes()).map_err(io)?;
    inner.flush().map_err(io)?;
    Ok(bytes)
}

fn write_chunk(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    let length =
        u32::try_from(bytes.len()).map_err(|_| std::io::Error::other("item over 4 GiB"))?;
    out.write_all(&length.to_le_bytes())?;
    out.write_all(bytes)
}

struct Crc32Writer<W: Write> {
    inner: W,
    hasher: crc32fast::Hasher,
    bytes: u64,
}

impl<W: Write> Write for Crc32Writer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Checks the whole file's crc32 and returns its metadata bytes.
pub fn verify_snapshot(blob: &mut dyn Blob) -> Result<Vec<u8>, StorageError> {
    let length = blob.seek(SeekFrom::End(0)).map_err(io)?;
    if length < (MAGIC.len() + 4 + 1 + 4) as u64 {
        return Err(corrupt(format!("file of {length} bytes is too short")));
    }
    blob.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut reader = BufReader::new(&mut *blob);
    let mut hasher = crc32fast::Hasher::new();
    let mut remaining = length - 4;
    let mut buffer = vec![0u8; 64 * 1024];
    while remaining > 0 {
        let want = remaining.min(buffer.len() as u64) as usize;
        reader.read_exact(&mut buffer[..want]).map_err(io)?;
        hasher.update(&buffer[..want]);
        remaining -= want as u64;
    }
    let mut stored = [0u8; 4];
    reader.read_exact(&mut stored).map_err(io)?;
    let computed = hasher.finalize();
    if u32::from_le_bytes(stored) != computed {
        return Err(corrupt(format!(
            "crc32 mismatch: stored {:08x}, computed {computed:08x}",
            u32::from_le_bytes(stored)
        )));
    }
    drop(reader);
    blob.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut reader = BufReader::new(&mut *blob);
    let mut magic = [0u8; 8];
    reader.read_exact(&mut magic).map_err(io)?;
    if &magic != MAGIC {
        return Err(corrupt("not a Tally snapshot (bad magic)"));
    }
    read_chunk(&mut reader, 1 << 20)
}

fn read_chunk(reader: &mut impl Read, limit: usize) -> Result<Vec<u8>, StorageError> {
    let mut length = [0u8; 4];
    reader.read_exact(&mut length).map_err(io)?;
    let length = u32::from_le_bytes(length) as usize;
    if length > limit {
        return Err(corrupt(format!("item of {length} bytes exceeds {limit}")));
    }
    let mut bytes = vec![0u8; length];
    reader.read_exact(&mut bytes).map_err(io)?;
    Ok(bytes)
}

/// Builds the one batch that replaces the whole state-machine state with the snapshot's.
/// Call [`verify_snapshot`] first.
pub fn snapshot_to_batch(blob: &mut dyn Blob) -> Result<WriteBatch, StorageError> {
    let mut batch = WriteBatch::default();
    for space in Space::STATE_MACHINE {
        batch.delete_range(space, Vec::new(), vec![0xff; KEY_BYTES_BOUND]);
    }
    blob.seek(SeekFrom::Start(MAGIC.len() as u64)).map_err(io)?;
    let mut reader = BufReader::new(blob);
    read_chunk(&mut reader, 1 << 20)?;
    loop {
        let mut tag = [0u8; 1];
        reader.read_exact(&mut tag).map_err(io)?;
        match tag[0] {
            END => return Ok(batch),
            ITEM => {
                let mut space = [0u8; 1];
                reader.read_exact(&mut space).map_err(io)?;
                let space = Space::from_u8(space[0])
                    .filter(|space| Space::STATE_MACHINE.contains(space))
                    .ok_or_else(|| corrupt(format!("unknown space {}", space[0])))?;
                let key = read_chunk(&mut reader, KEY_BYTES_BOUND)?;
                let value = read_chunk(&mut reader, 1 << 24)?;
                batch.put(space, key, value);
            }
            other => return Err(corrupt(format!("unknown item tag {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::storage::Visitor;

    struct Pairs(Vec<(Space, Vec<u8>, Vec<u8>)>);

    impl ReadView for Pairs {
        fn get(&self, _: Space, _: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
            Ok(None)
        }

        fn scan(
            &self,
            space: Space,
            _: &KeyRange,
            _: bool,
            visit: Visitor<'_>,
        ) -> Result<(), StorageError> {
            for (item_space, key, value) in &self.0 {
                if *item_space == space && !visit(key, value) {
                    break;
                }
            }
            Ok(())
        }
    }

    #[test]
    fn round_trip_and_corruption_is_detected() {
        let view = Pairs(vec![
            (Space::Accounts, vec![1], vec![10, 11]),
            (Space::Records, vec![2, 3], vec![]),
            (Space::RaftLog, vec![9], vec![9]),
        ]);
        let mut blob = Cursor::new(Vec::new());
        write_snapshot(&view, b"meta", &mut blob).unwrap();
        assert_eq!(verify_snapshot(&mut blob).unwrap(), b"meta");
        let batch = snapshot_to_batch(&mut blob).unwrap();
        let puts: Vec<_> = batch
            .ops
            .iter()
            .filter_map(|op| match op {
                crate::storage::WriteOp::Put { space, key, .. } => Some((*space, key.clone())),
                _ => None,
            })
            .collect();
        // The Raft log is not part of the state machine and is never carried.
        assert_eq!(
            puts,
            vec![(Space::Accounts, vec![1]), (Space::Records, vec![2, 3])]
        );

        let bytes = blob.into_inner();
        for index in [0, 9, bytes.len() / 2, bytes.len() - 1] {
            let mut broken = bytes.clone();
            broken[index] ^= 1;
            assert!(
                verify_snapshot(&mut Cursor::new(broken)).is_err(),
                "flip at {index}"
            );
        }
    }
}
