//! Noticing that the database file was deleted or replaced under the open
//! connection, and recovering from it.
//!
//! An open SQLite connection keeps reading and writing its file even after
//! `rm reportbot.db*`: the inode lives on until the connection closes, so
//! every commit "succeeds" into a file nobody will ever open again. Before
//! each use the store compares the identity (device, inode) of the file it
//! opened with the file now at the path; when they differ:
//!
//! - the path is empty (deleted): the open connection still sees every
//!   committed row, so `VACUUM INTO` writes all of it to the path, and the
//!   store reopens that file: nothing is lost;
//! - another file is at the path (replaced, e.g. a restored backup): the
//!   store opens that one, as an operator who put it there expects.
//!
//! Either way an ERROR is logged, and the call that noticed fails with
//! [`StoreError::Unavailable`] (the bot says "temporarily unavailable"
//! instead of confirming something that never reached the disk).

use crate::store::{StoreError, StoreResult};
use rusqlite::Connection;
use std::path::Path;

/// Which file a path names: (device, inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

/// The identity of the file at `path` now; `None` if there is none.
#[cfg(unix)]
pub fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| FileId {
        dev: m.dev(),
        ino: m.ino(),
    })
}

#[cfg(not(unix))]
pub fn file_id(_path: &Path) -> Option<FileId> {
    None
}

/// What happened to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Deleted,
    Replaced,
}

/// Compare the file opened (`opened`) with what is at `path` now.
pub fn check(path: &Path, opened: Option<FileId>) -> Option<Change> {
    let opened = opened?;
    match file_id(path) {
        Some(now) if now == opened => None,
        Some(_) => Some(Change::Replaced),
        None => Some(Change::Deleted),
    }
}

/// Write everything the open connection sees to `path` (which must not
/// exist): the recovery of a deleted file.
pub fn restore_to(conn: &Connection, path: &Path) -> StoreResult<()> {
    let target = path.to_str().ok_or_else(|| {
        StoreError::Unavailable(format!("{} is not a UTF-8 path", path.display()))
    })?;
    conn.execute("VACUUM INTO ?1", [target]).map_err(|e| {
        StoreError::Unavailable(format!(
            "cannot write the database back to {}: {e}",
            path.display()
        ))
    })?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_or_replaced_file_is_noticed() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.db");
        std::fs::write(&path, b"x")?;
        // Held open, as SQLite holds its file: the inode cannot be reused.
        let _handle = std::fs::File::open(&path)?;
        let opened = file_id(&path);
        assert!(opened.is_some());
        assert_eq!(check(&path, opened), None);
        std::fs::remove_file(&path)?;
        assert_eq!(check(&path, opened), Some(Change::Deleted));
        std::fs::write(dir.path().join("b.db"), b"y")?;
        std::fs::rename(dir.path().join("b.db"), &path)?;
        assert_eq!(check(&path, opened), Some(Change::Replaced));
        // In memory: nothing to compare.
        assert_eq!(check(&path, None), None);
        Ok(())
    }
}
