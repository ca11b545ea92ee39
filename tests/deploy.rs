//! The systemd unit in `data/deploy/` is used as it is: its command line is
//! one the binary accepts, every environment variable it (and the example
//! environment file) sets is one the binary reads, and together they make
//! valid settings for webhook mode.

use clap::Parser;
use reportbot::cli::{Cli, Command};
use reportbot::config::Settings;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

const UNIT: &str = include_str!("../data/deploy/reportbot.service");
const ENV_FILE: &str = include_str!("../data/deploy/reportbot.env.example");

/// `Key=value` lines of one section of a unit file (keys may repeat).
fn section(unit: &str, name: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for (n, line) in unit.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            assert!(line.ends_with(']'), "line {}: {line}", n + 1);
            inside = line == format!("[{name}]");
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("line {}: not Key=value: {line}", n + 1));
        if inside {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// Every environment variable the settings read.
fn names_read() -> BTreeSet<String> {
    let asked = RefCell::new(BTreeSet::new());
    let env = |k: &str| {
        asked.borrow_mut().insert(k.to_string());
        None
    };
    let _ = Settings::load_with(None, &env);
    let mut names = asked.into_inner();
    // Read by the command line (clap) and by the logging filter.
    for extra in ["REPORTBOT_CONFIG", "REPORTBOT_DATA", "RUST_LOG"] {
        names.insert(extra.to_string());
    }
    names
}

#[test]
fn the_unit_file_parses_and_runs_the_bot() {
    for s in ["Unit", "Service", "Install"] {
        assert!(!section(UNIT, s).is_empty(), "[{s}] missing");
    }
    let service = section(UNIT, "Service");
    let exec: Vec<&str> = service
        .iter()
        .filter(|(k, _)| k == "ExecStart")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(exec.len(), 1, "one ExecStart");
    let argv: Vec<&str> = exec[0].split_whitespace().collect();
    assert!(argv[0].starts_with('/'), "systemd needs an absolute path");
    assert!(argv[0].ends_with("/reportbot"), "{}", argv[0]);
    let cli = Cli::try_parse_from(argv.iter().map(|a| a.trim_matches('"')))
        .unwrap_or_else(|e| panic!("ExecStart is not a reportbot command line: {e}"));
    assert!(matches!(cli.command, Some(Command::Run) | None));
    assert!(
        service
            .iter()
            .any(|(k, v)| k == "KillSignal" && v == "SIGTERM"),
        "the bot stops gracefully on SIGTERM"
    );
}

#[test]
fn every_variable_of_the_unit_and_its_env_file_is_read_and_valid() {
    let known = names_read();
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in section(UNIT, "Service") {
        if k == "Environment" {
            let (name, value) = v.split_once('=').expect("Environment=NAME=value");
            env.insert(name.to_string(), value.to_string());
        }
    }
    for line in ENV_FILE.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once('=').expect("NAME=value");
        env.insert(name.to_string(), value.to_string());
    }
    for name in env.keys() {
        assert!(
            known.contains(name),
            "{name} is not read by reportbot: {known:?}"
        );
    }
    for needed in [
        "TELOXIDE_TOKEN",
        "REPORTBOT_DB",
        "REPORTBOT_LISTEN",
        "REPORTBOT_WEBHOOK_URL",
        "REPORTBOT_WEBHOOK_SECRET",
    ] {
        assert!(env.contains_key(needed), "{needed} is not set");
    }
    let lookup = |k: &str| env.get(k).cloned();
    let settings = Settings::load_with(None, &lookup)
        .unwrap_or_else(|e| panic!("the unit's settings are refused: {e}"));
    settings.require_listen_for_webhook().expect("listen set");
    settings.require_token().expect("token");
    assert!(settings.database().expect("database").is_postgres());
    let (path, _) = settings.http.webhook().expect("webhook mode");
    assert_eq!(path, "/telegram/hook");
}
