//! Watching and stopping the `reportbot` processes a test or benchmark
//! started (Linux `/proc`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::process::Child;

/// A `kB` field of `/proc/PID/status` (`VmRSS:`, `VmHWM:`), 0 if unreadable.
pub fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// User + system CPU time of a process, in clock ticks (1/100 s).
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after ')'.
    get(11) + get(12)
}

/// SIGTERM (the bot's clean stop), then wait up to `grace`; killed after.
pub async fn terminate(mut child: Child, grace: Duration) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

/// The address a bot's HTTP server listens on, from its JSON log (it
/// binds port 0, so the log is where the port is found).
pub fn listen_addr(log: &Path) -> Option<SocketAddr> {
    std::fs::read_to_string(log).ok()?.lines().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        (v.get("message")?.as_str()? == "HTTP server listening")
            .then(|| v.get("addr")?.as_str()?.parse().ok())?
    })
}
