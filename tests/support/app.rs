//! `spawn_app()`: the real `reportbot` binary against a fresh fake Bot API
//! server, with its own database in a temporary directory.

use super::botapi::{FakeBotApi, Options};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// How to start the bot.
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    pub api: Options,
    /// Telegram user ids allowed to /announce.
    pub admins: Vec<u64>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Extra command-line arguments (before the subcommand).
    pub args: Vec<String>,
    /// Contents of a config file passed with --config.
    pub config: Option<String>,
}

pub struct TestApp {
    pub api: FakeBotApi,
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    opts: AppOptions,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(opts: AppOptions) -> TestApp {
    let api = FakeBotApi::start_with(opts.api.clone()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("reportbot.db");
    let mut app = TestApp {
        api,
        child: None,
        dir,
        db,
        opts,
    };
    app.start().await;
    app
}

/// A `reportbot` command with the test's environment (for CLI subcommands).
pub fn reportbot_command(api_url: &str, db: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reportbot"));
    cmd.env("TELOXIDE_TOKEN", "123456:TEST-TOKEN")
        .env("TELOXIDE_API_URL", api_url)
        .env("NO_PROXY", "127.0.0.1,localhost,::1")
        .env("no_proxy", "127.0.0.1,localhost,::1")
        .env("REPORTBOT_DB", db)
        .env_remove("REPORTBOT_CONFIG")
        .env_remove("REPORTBOT_DATA")
        .env("RUST_LOG", "info");
    cmd
}

impl TestApp {
    /// Subscribe private chats (Chinese) straight into the bot's database;
    /// the bot reads the audience when an announcement is confirmed, so it
    /// may be running. Returns how many were new.
    pub fn subscribe_private(&self, chats: &[i64]) -> u64 {
        use reportbot::store::{Language, NewSubscriber, SqliteStore, Store};
        let subs: Vec<NewSubscriber> = chats
            .iter()
            .map(|&chat_id| NewSubscriber::private(chat_id, Language::Zh))
            .collect();
        SqliteStore::open(&self.db)
            .and_then(|s| s.subscribe_many(&subs))
            .expect("subscribe in the bot's database")
    }

    /// Start (or restart) the bot process and wait until it polls.
    pub async fn start(&mut self) {
        let mut cmd = reportbot_command(&self.api.url(), &self.db);
        if !self.opts.admins.is_empty() {
            let list: Vec<String> = self.opts.admins.iter().map(|a| a.to_string()).collect();
            cmd.env("REPORTBOT_ADMINS", list.join(","));
        }
        for (k, v) in &self.opts.env {
            cmd.env(k, v);
        }
        if let Some(config) = &self.opts.config {
            let path = self.dir.path().join("config.toml");
            std::fs::write(&path, config).expect("write config");
            cmd.arg("--config").arg(path);
        }
        cmd.args(&self.opts.args);
        let log = std::fs::File::create(self.dir.path().join("bot.log")).expect("log file");
        cmd.stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let child = cmd.spawn().expect("spawn reportbot");
        self.child = Some(child);
        assert!(
            self.api.wait_for_poller(Duration::from_secs(20)).await,
            "the bot never polled; log:\n{}",
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bot.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// Send a signal (e.g. "TERM", "KILL") to the bot process.
    pub fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid() {
            let status = std::process::Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(pid.to_string())
                .status()
                .expect("kill");
            assert!(status.success(), "kill -{sig} {pid}");
        }
    }

    /// Wait for the process to exit; its exit code.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        match tokio::time::timeout(within, child.wait()).await {
            Ok(Ok(status)) => {
                self.child = None;
                status.code()
            }
            _ => None,
        }
    }

    /// kill -9 and wait for it to be gone.
    pub async fn kill_hard(&mut self) {
        self.signal("KILL");
        let _ = self.wait_exit(Duration::from_secs(10)).await;
        self.child = None;
    }
}
