//! Progress events, and announcements that are finished.

use super::{Broadcaster, RunState};
use crate::broadcast::progress::{BroadcastEvent, ProgressReport};
use crate::store::{AnnouncementId, AnnouncementState};
use std::time::Instant;

impl Broadcaster {
    pub(super) fn emit(&self, event: BroadcastEvent) {
        if let Some(tx) = &self.events {
            // Nobody listening is fine.
            let _ = tx.send(event);
        }
    }

    pub(super) async fn report(&self, id: AnnouncementId) -> Option<ProgressReport> {
        let fetched = self
            .blocking(move |s| Ok((s.progress(id)?, s.announcement(id)?)))
            .await;
        match fetched {
            Ok((progress, Some(a))) => Some(ProgressReport {
                announcement: id,
                state: a.state,
                progress,
                eta: self.settings.eta(progress.pending),
                progress_message: a.progress_message,
            }),
            Ok((_, None)) => None,
            Err(e) => {
                tracing::warn!(announcement = %id, error = %e, "cannot read progress");
                None
            }
        }
    }

    /// Progress events for announcements with news, at most one per
    /// `progress_interval` each (`all`: every one with news, now).
    pub(super) async fn report_due(&self, st: &mut RunState, all: bool) {
        let now = Instant::now();
        let interval = self.settings.progress_interval();
        let due: Vec<AnnouncementId> = st
            .dirty
            .iter()
            .copied()
            .filter(|id| {
                all || st
                    .last_report
                    .get(id)
                    .is_none_or(|t| now.duration_since(*t) >= interval)
            })
            .collect();
        for id in due {
            st.dirty.remove(&id);
            st.last_report.insert(id, now);
            if let Some(report) = self.report(id).await {
                if report.state != AnnouncementState::Queued {
                    st.texts.remove(&id);
                }
                self.emit(BroadcastEvent::Progress(report));
            }
        }
    }

    /// Queued announcements with nothing pending become `Done`.
    pub(super) async fn finish_completed(&self, st: &mut RunState) {
        let queued = match self.blocking(|s| s.pending_announcements()).await {
            Ok(queued) => queued,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list queued announcements");
                return;
            }
        };
        for a in queued {
            let id = a.id;
            match self.blocking(move |s| s.complete_if_done(id)).await {
                Ok(true) => {
                    st.texts.remove(&id);
                    st.dirty.remove(&id);
                    st.last_report.remove(&id);
                    if let Some(report) = self.report(id).await {
                        tracing::info!(
                            announcement = %id,
                            sent = report.progress.sent,
                            blocked = report.progress.blocked,
                            failed = report.progress.failed,
                            "announcement delivered"
                        );
                        self.emit(BroadcastEvent::Finished(report));
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(announcement = %id, error = %e, "cannot finish"),
            }
        }
    }
}
