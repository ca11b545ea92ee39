//! Settings: one typed struct, read from a TOML file and then the environment.
//!
//! Order of precedence: built-in defaults < `--config FILE` / `REPORTBOT_CONFIG`
//! < environment (`TELOXIDE_TOKEN`, `TELOXIDE_API_URL`, `REPORTBOT_DB`,
//! `REPORTBOT_ADMINS`, `REPORTBOT_LOG_FORMAT`, `REPORTBOT_LISTEN`,
//! `REPORTBOT_WEBHOOK_URL`, `REPORTBOT_WEBHOOK_SECRET`). Every error names
//! the setting.

use crate::broadcast::BroadcastSettings;
use crate::store::Database;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Why settings could not be read. Never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("setting `{setting}`: {message}")]
    Invalid {
        setting: &'static str,
        message: String,
    },
}

fn invalid(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        message: message.into(),
    }
}

/// The bot token. Its `Debug` never shows the secret.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Token(String);

impl Token {
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_empty() {
            "Token(<unset>)"
        } else {
            "Token(<redacted>)"
        })
    }
}

/// The webhook's secret token. Its `Debug` never shows it.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelegramSettings {
    pub token: Token,
    pub api_url: String,
    /// Long-polling timeout of getUpdates, seconds.
    pub polling_timeout_secs: u64,
    /// Telegram user ids allowed to /announce.
    pub admins: Vec<i64>,
    /// How often a reply is tried before it is given up (429 waits do not count).
    pub reply_attempts: u32,
    /// Time limit of one send attempt, seconds (teloxide stalls 10 s on a 5xx).
    pub send_timeout_secs: u64,
    /// Updates waiting in one chat's queue; more are dropped (and logged)
    /// rather than stall every other chat.
    pub max_queued_per_chat: usize,
    /// Updates in progress at once, all chats together; more wait at
    /// Telegram until there is room (memory stays flat under a burst).
    pub max_in_progress: usize,
    /// At most one message per this many milliseconds in one chat (Telegram
    /// answers faster sends with 429).
    pub chat_interval_ms: u64,
    /// At most this many messages in any second, all chats together.
    pub sends_per_sec: u32,
}

impl Default for TelegramSettings {
    fn default() -> Self {
        TelegramSettings {
            token: Token::default(),
            api_url: "https://api.telegram.org".into(),
            polling_timeout_secs: 10,
            admins: Vec::new(),
            reply_attempts: 5,
            send_timeout_secs: 4,
            max_queued_per_chat: 24,
            max_in_progress: 64,
            chat_interval_ms: 1000,
            sends_per_sec: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FloodSettings {
    /// More than this many messages from one user within `window_secs` …
    pub max_messages: u32,
    pub window_secs: u64,
    /// … gets one polite notice, then silence for this long.
    pub cooldown_secs: u64,
}

impl Default for FloodSettings {
    fn default() -> Self {
        FloodSettings {
            max_messages: 20,
            window_secs: 10,
            cooldown_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConversationSettings {
    /// A follow-up question may lean on the last answer for this long.
    pub ttl_secs: u64,
    pub max_turns: u32,
    /// Upper bound of conversations kept in memory (oldest dropped first).
    pub max_contexts: usize,
}

impl Default for ConversationSettings {
    fn default() -> Self {
        ConversationSettings {
            ttl_secs: 600,
            max_turns: 20,
            max_contexts: 100_000,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// A SQLite file, or `postgres://USER@HOST:PORT/DB` (see [`Database`]).
    pub database: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataSettings {
    /// A data directory with reports; the built-in data when unset.
    pub dir: Option<PathBuf>,
    /// Reload the data directory when its files change (checked every 2 s).
    pub watch: bool,
}

impl Default for DataSettings {
    fn default() -> Self {
        DataSettings {
            dir: None,
            watch: true,
        }
    }
}

/// The HTTP server (health, metrics) and webhook mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// `HOST:PORT` of the HTTP server (`/healthz`, `/readyz`, `/metrics`,
    /// and the webhook). None: no server. Env: `REPORTBOT_LISTEN`. Port 0
    /// takes a free port (the log names it).
    pub listen: Option<String>,
    /// The public URL Telegram posts updates to (`https://HOST/PATH`):
    /// set, the bot serves `POST PATH` instead of polling. Env:
    /// `REPORTBOT_WEBHOOK_URL`.
    pub webhook_url: Option<String>,
    /// Telegram sends it in `X-Telegram-Bot-Api-Secret-Token`; 1–256 of
    /// `A-Z a-z 0-9 _ -`. Env: `REPORTBOT_WEBHOOK_SECRET`.
    pub webhook_secret: Option<Secret>,
    /// Connections Telegram opens at once (`reportbot webhook set`), 1–100.
    pub max_connections: u8,
    /// Kinds of update Telegram sends (`reportbot webhook set`), as the
    /// Bot API names them.
    pub allowed_updates: Vec<String>,
    /// Largest webhook body accepted; a bigger one is answered 400.
    pub max_body_bytes: usize,
    /// An instance that took an update and died holds it this long; then
    /// another instance handles Telegram's redelivery. Longer than the
    /// slowest reply (its retries and waits included).
    pub update_lease_secs: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: None,
            webhook_url: None,
            webhook_secret: None,
            max_connections: 40,
            allowed_updates: [
                "message",
                "callback_query",
                "inline_query",
                "my_chat_member",
            ]
            .map(String::from)
            .to_vec(),
            max_body_bytes: 1 << 20,
            update_lease_secs: 30,
        }
    }
}

impl HttpSettings {
    /// The webhook's path and secret when webhook mode is on.
    pub fn webhook(&self) -> Option<(String, &Secret)> {
        let url = self.webhook_url.as_deref()?;
        let secret = self.webhook_secret.as_ref()?;
        Some((webhook_path(url)?, secret))
    }
}

/// The path of a webhook URL (`https://host/path` → `/path`).
fn webhook_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    // A query string is not part of the route.
    let path = path.split(['?', '#']).next().unwrap_or("/");
    Some(path.to_string())
}

/// Telegram's rule for a webhook secret token.
fn valid_secret(s: &str) -> bool {
    (1..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
}

/// All settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub telegram: TelegramSettings,
    pub storage: StorageSettings,
    pub data: DataSettings,
    pub log: LogSettings,
    pub flood: FloodSettings,
    pub conversation: ConversationSettings,
    pub broadcast: BroadcastSettings,
    pub http: HttpSettings,
}

impl Settings {
    /// Read the file (if any), then apply the environment, then validate.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Self::load_with(file, &env)
    }

    /// As [`Settings::load`], with the environment given (for tests).
    pub fn load_with(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let mut s = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                Self::from_toml(path, &text)?
            }
            None => Settings::default(),
        };
        if let Some(t) = env("TELOXIDE_TOKEN") {
            s.telegram.token = Token(t);
        }
        if let Some(u) = env("TELOXIDE_API_URL") {
            s.telegram.api_url = u;
        }
        if let Some(dir) = env("REPORTBOT_DATA") {
            s.data.dir = Some(PathBuf::from(dir));
        }
        if let Some(db) = env("REPORTBOT_DB") {
            s.storage.database = Some(db);
        }
        if let Some(list) = env("REPORTBOT_ADMINS") {
            s.telegram.admins = parse_admins(&list)?;
        }
        if let Some(listen) = env("REPORTBOT_LISTEN") {
            s.http.listen = Some(listen);
        }
        if let Some(url) = env("REPORTBOT_WEBHOOK_URL") {
            s.http.webhook_url = Some(url);
        }
        if let Some(secret) = env("REPORTBOT_WEBHOOK_SECRET") {
            s.http.webhook_secret = Some(Secret(secret));
        }
        if let Some(f) = env("REPORTBOT_LOG_FORMAT") {
            s.log.format = match f.to_ascii_lowercase().as_str() {
                "json" => LogFormat::Json,
                "text" => LogFormat::Text,
                other => {
                    return Err(invalid(
                        "REPORTBOT_LOG_FORMAT",
                        format!("expected text or json, got {other:?}"),
                    ));
                }
            };
        }
        s.validate()?;
        Ok(s)
    }

    /// Parse a config file. An error names the file, the line and the
    /// setting (`config.toml: line 5: setting \`telegram.polling_timeout_secs\`: …`).
    pub fn from_toml(path: &Path, text: &str) -> Result<Settings, ConfigError> {
        serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
            let setting = e.path().to_string();
            let e = e.into_inner();
            let place = e
                .span()
                .map(|span| {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    format!("line {line}: ")
                })
                .unwrap_or_default();
            // The path is "." when the error is not inside a setting (syntax).
            let named = if setting.is_empty() || setting == "." {
                String::new()
            } else {
                format!("setting `{setting}`: ")
            };
            // Never echo what was written for the token.
            let message = if setting == "telegram.token" {
                "expected a string".to_string()
            } else {
                let lines: Vec<&str> = e.message().lines().map(str::trim).collect();
                lines
                    .into_iter()
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(": ")
            };
            ConfigError::Syntax {
                path: path.to_path_buf(),
                message: format!("{place}{named}{message}"),
            }
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let t = &self.telegram;
        let url = t.api_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
            return Err(invalid(
                "telegram.api_url / TELOXIDE_API_URL",
                format!("not an http(s) URL: {url:?}"),
            ));
        }
        if let Some(bad) = t.admins.iter().find(|id| **id <= 0) {
            return Err(invalid(
                "telegram.admins",
                format!("{bad} is not a Telegram user id (user ids are positive)"),
            ));
        }
        if t.polling_timeout_secs > 50 {
            return Err(invalid("telegram.polling_timeout_secs", "at most 50"));
        }
        if t.reply_attempts == 0 {
            return Err(invalid("telegram.reply_attempts", "must be at least 1"));
        }
        if t.send_timeout_secs == 0 {
            return Err(invalid("telegram.send_timeout_secs", "must be at least 1"));
        }
        if t.sends_per_sec == 0 {
            return Err(invalid("telegram.sends_per_sec", "must be at least 1"));
        }
        if url.contains("api.telegram.org") && t.sends_per_sec > 30 {
            return Err(invalid(
                "telegram.sends_per_sec",
                "Telegram allows at most 30 messages per second",
            ));
        }
        if !(1..=1000).contains(&t.max_queued_per_chat) {
            return Err(invalid("telegram.max_queued_per_chat", "must be 1 to 1000"));
        }
        if !(1..=100_000).contains(&t.max_in_progress) {
            return Err(invalid("telegram.max_in_progress", "must be 1 to 100000"));
        }
        let f = &self.flood;
        if f.max_messages == 0 || f.window_secs == 0 {
            return Err(invalid(
                "flood.max_messages / flood.window_secs",
                "must be at least 1",
            ));
        }
        if self.conversation.max_contexts == 0 {
            return Err(invalid("conversation.max_contexts", "must be at least 1"));
        }
        self.database()?;
        self.validate_http()?;
        self.broadcast
            .validate()
            .map_err(|e| invalid("broadcast", e.to_string()))?;
        if self.broadcast.lease_secs <= t.send_timeout_secs {
            return Err(invalid(
                "broadcast.lease_secs",
                "must be more than telegram.send_timeout_secs (a send must end within its lease)",
            ));
        }
        if url.contains("api.telegram.org")
            && self.broadcast.rate_per_sec > crate::broadcast::TELEGRAM_RATE_PER_SEC
        {
            return Err(invalid(
                "broadcast.rate_per_sec",
                "Telegram allows at most 30 messages per second",
            ));
        }
        Ok(())
    }

    fn validate_http(&self) -> Result<(), ConfigError> {
        let h = &self.http;
        if let Some(listen) = &h.listen
            && listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(invalid(
                "http.listen / REPORTBOT_LISTEN",
                format!("expected HOST:PORT with an IP address, like 0.0.0.0:8080; got {listen:?}"),
            ));
        }
        if let Some(url) = &h.webhook_url {
            if webhook_path(url).is_none_or(|p| p.len() < 2) {
                return Err(invalid(
                    "http.webhook_url / REPORTBOT_WEBHOOK_URL",
                    format!("expected https://PUBLIC-HOST/PATH; got {url:?}"),
                ));
            }
            if h.webhook_secret.is_none() {
                return Err(invalid(
                    "http.webhook_secret / REPORTBOT_WEBHOOK_SECRET",
                    "webhook mode needs a secret (1-256 of A-Z a-z 0-9 _ -)",
                ));
            }
        }
        if let Some(secret) = &h.webhook_secret
            && !valid_secret(secret.expose())
        {
            return Err(invalid(
                "http.webhook_secret / REPORTBOT_WEBHOOK_SECRET",
                "1-256 characters, only A-Z a-z 0-9 _ - (Telegram's rule)",
            ));
        }
        if let Some(bad) = h.allowed_updates.iter().find(|k| {
            serde_json::from_value::<teloxide::types::AllowedUpdate>(serde_json::Value::from(
                k.as_str(),
            ))
            .is_err()
        }) {
            return Err(invalid(
                "http.allowed_updates",
                format!("{bad:?} is not a kind of update of the Bot API"),
            ));
        }
        if !(1..=100).contains(&h.max_connections) {
            return Err(invalid("http.max_connections", "must be 1 to 100"));
        }
        if h.max_body_bytes < 1024 {
            return Err(invalid("http.max_body_bytes", "must be at least 1024"));
        }
        if h.update_lease_secs <= self.telegram.send_timeout_secs {
            return Err(invalid(
                "http.update_lease_secs",
                "must be more than telegram.send_timeout_secs",
            ));
        }
        Ok(())
    }

    /// Running the bot in webhook mode needs an address to serve it on
    /// (`reportbot webhook set` does not).
    pub fn require_listen_for_webhook(&self) -> Result<(), ConfigError> {
        if self.http.webhook_url.is_some() && self.http.listen.is_none() {
            return Err(invalid(
                "http.listen / REPORTBOT_LISTEN",
                "webhook mode needs the address to serve it on (HOST:PORT)",
            ));
        }
        Ok(())
    }

    /// The token, or the one-line error that stops start-up.
    pub fn require_token(&self) -> Result<&Token, ConfigError> {
        if self.telegram.token.is_empty() {
            return Err(invalid(
                "TELOXIDE_TOKEN",
                "missing: set the bot token from @BotFather (or telegram.token in the config file)",
            ));
        }
        if !self.telegram.token.expose().contains(':') {
            return Err(invalid(
                "TELOXIDE_TOKEN",
                "does not look like a bot token (expected <id>:<secret>)",
            ));
        }
        Ok(&self.telegram.token)
    }

    /// The database: `storage.database` / `REPORTBOT_DB`, by default the
    /// SQLite file `reportbot.db`.
    pub fn database(&self) -> Result<Database, ConfigError> {
        let value = self.storage.database.as_deref().unwrap_or("reportbot.db");
        Database::parse(value).map_err(|e| invalid("storage.database / REPORTBOT_DB", e))
    }
}

fn parse_admins(list: &str) -> Result<Vec<i64>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.parse::<i64>() {
            Ok(id) if id > 0 => Ok(id),
            Ok(_) => Err(invalid(
                "REPORTBOT_ADMINS",
                format!("{s} is not a Telegram user id (user ids are positive)"),
            )),
            Err(_) => Err(invalid(
                "REPORTBOT_ADMINS",
                format!("{s:?} is not a Telegram user id"),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn example_config_parses() {
        let text = include_str!("../config.example.toml");
        let s = Settings::from_toml(Path::new("config.example.toml"), text).unwrap();
        assert_eq!(s.flood.max_messages, 20);
    }

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k: &str| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn webhook_settings() {
        let ok = env_of(&[
            ("REPORTBOT_LISTEN", "127.0.0.1:8080"),
            ("REPORTBOT_WEBHOOK_URL", "https://bot.example/tg/hook?x=1"),
            ("REPORTBOT_WEBHOOK_SECRET", "s3cr-et_X"),
        ]);
        let s = Settings::load_with(None, &ok).unwrap();
        let (path, secret) = s.http.webhook().unwrap();
        assert_eq!(path, "/tg/hook");
        assert_eq!(secret.expose(), "s3cr-et_X");
        assert!(
            !format!("{s:?}").contains("s3cr-et_X"),
            "the secret is shown"
        );
        let cases: [(&'static [(&'static str, &'static str)], &str); 5] = [
            (&[("REPORTBOT_LISTEN", "localhost")], "REPORTBOT_LISTEN"),
            (
                &[
                    ("REPORTBOT_WEBHOOK_URL", "https://bot.example/h"),
                    ("REPORTBOT_WEBHOOK_SECRET", "x"),
                ],
                "REPORTBOT_LISTEN",
            ),
            (
                &[
                    ("REPORTBOT_LISTEN", "127.0.0.1:1"),
                    ("REPORTBOT_WEBHOOK_URL", "https://bot.example/h"),
                ],
                "REPORTBOT_WEBHOOK_SECRET",
            ),
            (
                &[
                    ("REPORTBOT_LISTEN", "127.0.0.1:1"),
                    ("REPORTBOT_WEBHOOK_URL", "https://bot.example/h"),
                    ("REPORTBOT_WEBHOOK_SECRET", "no spaces"),
                ],
                "REPORTBOT_WEBHOOK_SECRET",
            ),
            (
                &[
                    ("REPORTBOT_LISTEN", "127.0.0.1:1"),
                    ("REPORTBOT_WEBHOOK_URL", "bot.example/h"),
                    ("REPORTBOT_WEBHOOK_SECRET", "x"),
                ],
                "REPORTBOT_WEBHOOK_URL",
            ),
        ];
        for (pairs, setting) in cases {
            let err = Settings::load_with(None, &env_of(pairs))
                .and_then(|s| s.require_listen_for_webhook())
                .unwrap_err()
                .to_string();
            assert!(err.contains(setting), "{err}");
            assert!(!err.contains("no spaces"), "the secret is echoed: {err}");
        }
    }

    #[test]
    fn errors_name_line_and_setting() {
        let err = Settings::from_toml(
            Path::new("c.toml"),
            "[telegram]\npolling_timeout_secs = \"x\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("c.toml: line 2:"), "{err}");
        assert!(
            err.to_string()
                .contains("setting `telegram.polling_timeout_secs`"),
            "{err}"
        );
        let err = Settings::from_toml(Path::new("c.toml"), "[telegram]\ntoken = 12345\n")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("12345"), "the token is echoed: {err}");
        let err =
            Settings::from_toml(Path::new("c.toml"), "[flood]\nmax_mesages = 3\n").unwrap_err();
        assert!(err.to_string().contains("max_mesages"), "{err}");
    }

    #[test]
    fn environment_overrides_and_token_is_redacted() {
        let env = |k: &str| match k {
            "TELOXIDE_TOKEN" => Some("123:SECRET".to_string()),
            "REPORTBOT_ADMINS" => Some("1, 2".to_string()),
            _ => None,
        };
        let s = Settings::load_with(None, &env).unwrap();
        assert_eq!(s.telegram.admins, vec![1, 2]);
        assert!(!format!("{s:?}").contains("SECRET"));
        assert!(s.require_token().is_ok());
        let s = Settings::load_with(None, &no_env).unwrap();
        let err = s.require_token().unwrap_err().to_string();
        assert!(err.contains("TELOXIDE_TOKEN"), "{err}");
        let fast = |k: &str| (k == "TELOXIDE_TOKEN").then(|| "1:x".to_string());
        let mut s = Settings::load_with(None, &fast).unwrap();
        s.broadcast.rate_per_sec = 40.0;
        let err = s.validate().unwrap_err().to_string();
        assert!(
            err.contains("broadcast.rate_per_sec"),
            "Telegram's own limit: {err}"
        );
        s.telegram.api_url = "http://127.0.0.1:8081".into();
        assert!(s.validate().is_ok(), "a local Bot API server may take more");
        let pg = |k: &str| (k == "REPORTBOT_DB").then(|| "postgres://bot@10.0.0.5:5433/rb".into());
        assert!(
            Settings::load_with(None, &pg)
                .unwrap()
                .database()
                .unwrap()
                .is_postgres()
        );
        let typo = |k: &str| (k == "REPORTBOT_DB").then(|| "postgres://bot@h:port/rb".into());
        let err = Settings::load_with(None, &typo).unwrap_err().to_string();
        assert!(err.contains("REPORTBOT_DB"), "{err}");
        assert_eq!(
            Settings::load_with(None, &no_env)
                .unwrap()
                .database()
                .unwrap(),
            Database::Sqlite("reportbot.db".into())
        );
        let bad = |k: &str| (k == "REPORTBOT_ADMINS").then(|| "12,abc".to_string());
        assert!(
            Settings::load_with(None, &bad)
                .unwrap_err()
                .to_string()
                .contains("REPORTBOT_ADMINS")
        );
        for list in ["-5", "0", "7,-5"] {
            let neg = |k: &str| (k == "REPORTBOT_ADMINS").then(|| list.to_string());
            let err = Settings::load_with(None, &neg).unwrap_err().to_string();
            assert!(err.contains("REPORTBOT_ADMINS"), "{list}: {err}");
        }
        let err = Settings::from_toml(Path::new("c.toml"), "[telegram]\nadmins = [-5]\n")
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("telegram.admins") && err.contains("-5"),
            "{err}"
        );
    }
}
