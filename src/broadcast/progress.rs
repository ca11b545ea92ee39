//! What the worker tells about an announcement while it goes out.

use crate::store::{AnnouncementId, AnnouncementState, Progress, ProgressMessage};
use std::time::Duration;

/// Where an announcement stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressReport {
    pub announcement: AnnouncementId,
    pub state: AnnouncementState,
    pub progress: Progress,
    /// Time to send what is pending at the configured rate (ignores other
    /// announcements queued ahead and retry waits).
    pub eta: Duration,
    /// The admin's message to edit, if one was registered.
    pub progress_message: Option<ProgressMessage>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BroadcastEvent {
    /// Every `progress_interval_ms` per announcement being sent, and once
    /// more when the worker stops.
    Progress(ProgressReport),
    /// Nothing pending any more: the announcement is `Done`.
    Finished(ProgressReport),
    /// Telegram refused the text itself; the announcement was cancelled.
    Aborted {
        report: ProgressReport,
        error: String,
    },
}
