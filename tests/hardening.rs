//! Issue 10, end to end: one bad update, one flooder or one odd update shape
//! must never take the bot down. Each test drives the real `reportbot`
//! binary against the fake Bot API server (`tests/support/botapi.rs`), the
//! way Telegram would, and fails on the code before the fix.

mod support;

use support::app::{AppOptions, reportbot_command, spawn_app_with};
use support::e2e::{WAIT, ask, assert_clean, eventually, zh_user};

// ---------------------------------------------------------------------------
// 10. Settings

/// Runs `reportbot` with `env` (and an optional config file) and returns its
/// exit status and stderr. Start-up fails before any network traffic.
async fn start_up_error(env: &[(&str, &str)], config: Option<&str>) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = reportbot_command("http://127.0.0.1:9", &dir.path().join("bot.db"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(text) = config {
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).expect("write config");
        cmd.arg("--config").arg(path);
    }
    let out = tokio::time::timeout(WAIT, cmd.output())
        .await
        .expect("reportbot did not stop on a bad setting")
        .expect("run reportbot");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_negative_admin_id_is_refused_naming_the_setting() {
    let (ok, err) = start_up_error(&[("REPORTBOT_ADMINS", "-5")], None).await;
    assert!(!ok, "REPORTBOT_ADMINS=-5 was accepted; stderr:\n{err}");
    assert!(
        err.contains("REPORTBOT_ADMINS") && err.contains("-5"),
        "the error does not name the setting and the value:\n{err}"
    );
    let (ok, err) = start_up_error(&[], Some("[telegram]\nadmins = [12, -5]\n")).await;
    assert!(!ok, "admins = [-5] was accepted; stderr:\n{err}");
    assert!(
        err.contains("telegram.admins") && err.contains("-5"),
        "the error does not name the setting and the value:\n{err}"
    );
}

#[tokio::test]
async fn a_type_error_in_the_config_file_names_the_line_and_the_setting() {
    let (ok, err) = start_up_error(
        &[],
        Some("[flood]\nmax_messages = 5\n\n[telegram]\npolling_timeout_secs = \"ten\"\n"),
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("line 5") && err.contains("telegram.polling_timeout_secs"),
        "the error names neither the line nor the setting:\n{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "not one line:\n{err}");
}

#[tokio::test]
async fn a_start_up_error_names_its_cause_once() {
    let (ok, err) = start_up_error(&[("REPORTBOT_DB", "/nonexistent/dir/bot.db")], None).await;
    assert!(!ok);
    let lower = err.to_lowercase();
    assert_eq!(
        lower.matches("unable to open").count(),
        1,
        "the cause is repeated:\n{err}"
    );
    assert!(err.contains("/nonexistent/dir/bot.db"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line:\n{err}");

    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.toml");
    let (ok, err) = start_up_error(
        &[("REPORTBOT_CONFIG", missing.to_str().expect("utf-8 path"))],
        None,
    )
    .await;
    assert!(!ok);
    assert_eq!(
        err.matches("No such file or directory").count(),
        1,
        "the cause is repeated:\n{err}"
    );
}

/// The log goes to a file here (the test harness redirects stderr): no
/// terminal, so no colour codes.
#[tokio::test]
async fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let app = spawn_app_with(AppOptions::default()).await;
    let u = zh_user(10_001);
    let a = ask(&app, &u, "个人一等奖是谁").await;
    assert!(a.visible_text().contains("李彬"));
    assert!(
        eventually(WAIT, || app.log().contains("handled message")).await,
        "log:\n{}",
        app.log()
    );
    let log = app.log();
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape codes in a log file:\n{log:?}"
    );
    assert_clean(&app);
}
