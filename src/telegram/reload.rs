//! Reloading the reports without a restart: on SIGHUP, and (with
//! `data.watch`) when a file under the data directory changes. A broken data
//! directory is logged and the bot keeps answering from what it had.

use super::App;
use crate::engine::{ContextLimits, Engine};
use crate::knowledge::Knowledge;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// Sizes and modification times of every file below `dir` (two levels deep
/// is all a data directory has, plus one for safety).
fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    fn walk(dir: &Path, depth: u8, out: &mut Vec<(PathBuf, u64, Option<SystemTime>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                if depth < 3 {
                    walk(&path, depth + 1, out);
                }
            } else {
                out.push((path, meta.len(), meta.modified().ok()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, 0, &mut out);
    out.sort();
    out
}

fn reload(app: &App, dir: &Path) {
    match Knowledge::load_dir(dir) {
        Ok(k) => {
            let c = &app.settings.conversation;
            let engine = Engine::new(Arc::new(k)).with_limits(ContextLimits {
                ttl: Duration::from_secs(c.ttl_secs),
                max_turns: c.max_turns,
            });
            let ids: Vec<String> = engine
                .knowledge()
                .reports
                .iter()
                .map(|r| r.meta.id.clone())
                .collect();
            app.replace_engine(Arc::new(engine));
            tracing::info!(reports = ?ids, "reports reloaded");
        }
        Err(e) => {
            tracing::error!(error = %e, "reload failed; still answering from the previous data")
        }
    }
}

pub async fn watch(app: Arc<App>, dir: PathBuf, mut stop: watch::Receiver<bool>) {
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut last = fingerprint(&dir);
    loop {
        #[cfg(unix)]
        let hup_signal = async {
            match hup.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hup_signal = std::future::pending::<()>();
        tokio::select! {
            _ = stop.changed() => return,
            _ = hup_signal => {
                tracing::info!("SIGHUP: reloading reports");
                reload(&app, &dir);
                last = fingerprint(&dir);
            }
            _ = tokio::time::sleep(Duration::from_secs(2)), if app.settings.data.watch => {
                let now = fingerprint(&dir);
                if now != last {
                    // Let a writer finish (import writes several files).
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    last = fingerprint(&dir);
                    reload(&app, &dir);
                }
            }
        }
    }
}
