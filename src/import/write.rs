//! Writing a report's files: all checked before anything is written, each
//! written atomically (a temporary file renamed over it).

use super::meta::{check_file_name, check_id};
use super::{ImportError, Imported};
use std::fmt;
use std::path::{Path, PathBuf};

/// Choices for [`write_report_with`].
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Replace existing files whose content differs (otherwise that is an error).
    pub overwrite: bool,
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    Created,
    /// Existed with other content; replaced because overwriting was allowed.
    Replaced,
    /// Existed with the same content; left alone.
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub path: PathBuf,
    pub status: FileStatus,
}

/// The files of one report under the output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFiles {
    /// `<out>/reports/<id>`
    pub report_dir: PathBuf,
    /// report.json, awards.json, prizes.json (if any), the source text, then
    /// the page it was read from (HTML).
    pub files: Vec<WrittenFile>,
}

impl fmt::Display for WrittenFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, file) in self.files.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            let status = match file.status {
                FileStatus::Created => "created  ",
                FileStatus::Replaced => "replaced ",
                FileStatus::Unchanged => "unchanged",
            };
            write!(f, "{status} {}", file.path.display())?;
        }
        Ok(())
    }
}

/// Write `<out>/reports/<id>/{report,awards}.json` (and `prizes.json` when
/// the report declares prizes beyond the standard five) and `<out>/sources/<source>`.
/// An existing file with other content is an error ([`ImportError::Exists`]);
/// the same content is left alone.
pub fn write_report(imported: &Imported, out_dir: &Path) -> Result<WrittenFiles, ImportError> {
    write_report_with(imported, out_dir, &WriteOptions::default())
}

/// [`write_report`] with options (overwriting).
pub fn write_report_with(
    imported: &Imported,
    out_dir: &Path,
    options: &WriteOptions,
) -> Result<WrittenFiles, ImportError> {
    let meta = &imported.meta;
    check_id(&meta.id)?;
    check_file_name("source name", &meta.source)?;
    let report_dir = out_dir.join("reports").join(&meta.id);
    check_id_free(out_dir, &meta.id, &report_dir)?;

    let mut planned = vec![
        (report_dir.join("report.json"), imported.report_json()?),
        (report_dir.join("awards.json"), imported.awards_json()?),
    ];
    if let Some(prizes) = imported.prizes_json()? {
        planned.push((report_dir.join("prizes.json"), prizes));
    }
    planned.push((
        out_dir.join("sources").join(&meta.source),
        imported.source_text.clone(),
    ));
    // A page is kept beside the text read from it.
    if let Some((name, text)) = &imported.original {
        check_file_name("source name", name)?;
        planned.push((out_dir.join("sources").join(name), text.clone()));
    }
    // Check everything before writing anything.
    let mut files = Vec::new();
    for (path, content) in &planned {
        let status = match std::fs::read(path) {
            Ok(existing) if existing == content.as_bytes() => FileStatus::Unchanged,
            Ok(_) if options.overwrite => FileStatus::Replaced,
            Ok(_) => return Err(ImportError::Exists { path: path.clone() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileStatus::Created,
            Err(source) => {
                return Err(ImportError::Io {
                    path: path.clone(),
                    source,
                });
            }
        };
        files.push(WrittenFile {
            path: path.clone(),
            status,
        });
    }
    for ((path, content), file) in planned.iter().zip(&files) {
        if file.status != FileStatus::Unchanged {
            write_atomically(path, content.as_bytes())?;
        }
    }
    Ok(WrittenFiles { report_dir, files })
}

/// Another directory under `reports/` whose report.json has this id would make
/// the data directory fail to load.
fn check_id_free(out_dir: &Path, id: &str, report_dir: &Path) -> Result<(), ImportError> {
    let reports = out_dir.join("reports");
    let Ok(entries) = std::fs::read_dir(&reports) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        if dir == report_dir {
            continue;
        }
        let path = dir.join("report.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let other: Option<String> = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_string));
        if other.as_deref() == Some(id) {
            return Err(ImportError::IdTaken {
                id: id.to_string(),
                path,
            });
        }
    }
    Ok(())
}

fn write_atomically(path: &Path, content: &[u8]) -> Result<(), ImportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImportError::Io { path, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.import-tmp"));
    std::fs::write(&tmp, content).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        ImportError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}
