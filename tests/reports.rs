//! Several contests: import a second report (clearly marked test data, the
//! made-up "2099浙江测试大赛"), answer across contests, reload the running bot
//! without a restart, and announce a new report once.

mod support;

use reportbot::Engine;
use reportbot::knowledge::Knowledge;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use support::app::{AppOptions, reportbot_command, spawn_app_with};
use support::botapi::{ChatSpec, UserSpec};

/// TEST DATA, not a real report.
const REPORT_2099: &str = "2099浙江测试大赛顺利举办(测试数据,非真实报道)

荣誉榜

团体一等奖（银行机构组）
测试银行杭州分行 未来一号队

個人一等獎(銀行機構組)
工商银行浙江省分行 李彬

团体一等奖(保险机构组)
测试保险浙江分公司 星辰队

11月5日,由测试机构主办的2099浙江测试大赛在宁波举行。
";

const SOURCE_2022: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/sources/2022-11-zhejiang-banking-insurance-news.txt"
);

async fn import(dir: &Path, db: &Path, file: &Path, publish: bool) -> std::process::Output {
    let mut cmd = reportbot_command("http://127.0.0.1:9", db);
    cmd.arg("import").arg(file).arg("--out").arg(dir);
    if publish {
        cmd.arg("--publish");
    }
    cmd.output().await.expect("run reportbot import")
}

fn write_2099(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("r2099-test.txt");
    std::fs::write(&path, REPORT_2099).unwrap();
    path
}

#[tokio::test]
async fn import_selects_years_and_newest_by_default() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let db = tmp.path().join("x.db");
    let out = import(&data, &db, Path::new(SOURCE_2022), false).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("银行机构组: 20 rows in 8 prizes"),
        "{summary}"
    );
    let out = import(&data, &db, &write_2099(tmp.path()), false).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Import knows the award list; facts and tips of 2022 are hand-checked data.
    for f in [
        "facts.json",
        "subjects.json",
        "antifraud.json",
        "texts.json",
    ] {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("data/reports/2022-zhejiang")
            .join(f);
        std::fs::copy(shipped, data.join("reports/2022-zhejiang").join(f)).unwrap();
    }

    let engine = Engine::new(Arc::new(Knowledge::load_dir(&data).unwrap()));
    assert_eq!(engine.knowledge().newest().meta.id, "2099-zhejiang");
    let newest = engine.ask("团体一等奖是谁");
    assert!(
        newest.text.contains("2099浙江测试大赛") && newest.text.contains("未来一号队"),
        "{}",
        newest.text
    );
    assert!(!newest.text.contains("工银浙里队"), "{}", newest.text);
    let old = engine.ask("2022年团体一等奖是谁");
    assert!(
        old.text.contains("工银浙里队") && !old.text.contains("未来一号队"),
        "{}",
        old.text
    );
    let every = engine.ask("李彬历届获得了什么奖");
    assert!(
        every.text.contains("2099浙江测试大赛")
            && every
                .text
                .contains("2022浙江银行业保险业数字化改革数据应用创新大赛"),
        "{}",
        every.text
    );
    let reports = engine.ask("/reports");
    assert!(
        reports.text.find("2099").unwrap() < reports.text.find("2022浙江").unwrap(),
        "{}",
        reports.text
    );
    // Anti-fraud tips still come from the 2022 report, without duplicates.
    let tips = engine.ask("/tips");
    let lines: Vec<&str> = tips
        .text
        .lines()
        .filter(|l| l.starts_with(char::is_numeric))
        .collect();
    let mut unique = lines.clone();
    unique.sort();
    unique.dedup();
    assert!(
        !lines.is_empty() && unique.len() == lines.len(),
        "{}",
        tips.text
    );
}

#[tokio::test]
async fn malformed_reports_are_refused_with_line_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let db = tmp.path().join("x.db");
    let bad = tmp.path().join("bad.txt");
    std::fs::write(
        &bad,
        REPORT_2099.replace(
            "测试银行杭州分行 未来一号队",
            "测试银行杭州分行 未来一号队\n这一行 放不进 任何奖项",
        ),
    )
    .unwrap();
    let out = import(&data, &db, &bad, false).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("line 7"), "{text}");
    assert!(!data.join("reports").exists(), "nothing written");
    let not_report = tmp.path().join("notes.txt");
    std::fs::write(&not_report, "今天天气很好。\n").unwrap();
    let out = import(&data, &db, &not_report, false).await;
    assert!(!out.status.success());
    assert!(!out.stderr.is_empty());
    // A broken data file stops the bot with the file and the place.
    let out = import(&data, &db, Path::new(SOURCE_2022), false).await;
    assert!(out.status.success());
    let awards = data.join("reports/2022-zhejiang/awards.json");
    let text = std::fs::read_to_string(&awards)
        .unwrap()
        .replacen("\"first\"", "\"fifth\"", 1);
    std::fs::write(&awards, text).unwrap();
    let out = reportbot_command("http://127.0.0.1:9", &db)
        .arg("--data")
        .arg(&data)
        .args(["ask", "李彬"])
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    // A level that is neither standard nor declared in prizes.json.
    assert!(
        err.contains("awards.json: line 2 (award #1) field `level`: prize \"fifth\""),
        "{err}"
    );
}

#[tokio::test]
async fn running_bot_reloads_and_announces_a_new_report_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let scratch_db = tmp.path().join("scratch.db");
    let out = import(&data, &scratch_db, Path::new(SOURCE_2022), false).await;
    assert!(out.status.success());
    let opts = AppOptions {
        args: vec!["--data".into(), data.display().to_string()],
        config: Some("[broadcast]\npoll_interval_ms = 200\n".into()),
        ..AppOptions::default()
    };
    let app = spawn_app_with(opts).await;
    let api = &app.api;
    let user = UserSpec::new(77, "Wang").lang("zh-hans");
    let chat = ChatSpec::private(77);
    api.send_text(&chat, &user, "/subscribe");
    api.send_text(&chat, &user, "团体一等奖是谁");
    let msgs = api.wait_for_messages(77, 2, Duration::from_secs(10)).await;
    assert!(
        msgs[1].visible_text().contains("工银浙里队"),
        "{:?}",
        msgs[1].visible_text()
    );

    let out = import(&data, &app.db, &write_2099(tmp.path()), true).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The announcement arrives, and the bot answers about 2099 without a restart.
    let msgs = api.wait_for_messages(77, 3, Duration::from_secs(10)).await;
    let announcement = msgs[2].visible_text();
    assert!(
        announcement.contains("2099浙江测试大赛")
            && announcement.contains("未来一号队")
            && announcement.contains("/awards"),
        "{announcement}"
    );
    let reloaded = api
        .wait_until(Duration::from_secs(10), |api| {
            api.send_text(&chat, &user, "团体一等奖是谁");
            std::thread::sleep(Duration::from_millis(400));
            api.sent_messages(77)
                .last()
                .is_some_and(|m| m.visible_text().contains("未来一号队"))
        })
        .await;
    assert!(reloaded, "bot did not reload; log:\n{}", app.log());
    // Publishing the same report again does not announce it again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = api.sent_messages(77).len();
    let out = import(&data, &app.db, &write_2099(tmp.path()), true).await;
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("not announcing again"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let announcements = api
        .sent_messages(77)
        .iter()
        .filter(|m| m.visible_text().contains("获奖名单已发布"))
        .count();
    assert_eq!(announcements, 1);
    assert_eq!(api.sent_messages(77).len(), before);
    assert!(api.rejections().is_empty(), "{:?}", api.rejections());
}
