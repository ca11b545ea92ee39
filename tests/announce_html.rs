//! `reportbot announce --html`: pre-written Telegram HTML is checked, queued
//! as written and delivered with its formatting by the running bot; bad
//! markup is refused with the problem and its place, and nothing is queued.
//! The checker (`reportbot::markup`) is also compared with the fake Bot API's
//! re-implementation of Telegram's own HTML parser (`tests/support/html.rs`).

mod support;

use reportbot::markup;
use reportbot::store::{AnnouncementId, SqliteStore, Store};
use std::time::Duration;
use support::app::{AppOptions, TestApp, reportbot_command, spawn_app_with};
use support::botapi::Options;
use support::html::parse_telegram_html;

const FAST_CONFIG: &str = "[telegram]\nsend_timeout_secs = 1\n\n\
                           [broadcast]\nrate_per_sec = 25.0\npoll_interval_ms = 200\n";

async fn start_bot() -> TestApp {
    spawn_app_with(AppOptions {
        api: Options::default(),
        config: Some(FAST_CONFIG.to_string()),
        ..AppOptions::default()
    })
    .await
}

fn store(app: &TestApp) -> SqliteStore {
    SqliteStore::open(&app.db).expect("open the bot's database")
}

fn subscribe(app: &TestApp, chats: &[i64]) {
    app.subscribe_private(chats);
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn cli(app: &TestApp, args: &[&str]) -> Run {
    let out = reportbot_command(&app.api.url(), &app.db)
        .args(args)
        .output()
        .await
        .expect("run reportbot");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const HTML: &str = "<b>新一届大赛</b>报名开始:<i>截止 12 月 1 日</i>,\
                    <a href=\"https://example.com/apply?a=1&amp;b=2\">报名入口</a> &lt;限银行保险机构&gt;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_announcement_arrives_with_its_formatting() {
    let app = start_bot().await;
    let chats = [910_001, 910_002, 910_003];
    subscribe(&app, &chats);

    let run = cli(&app, &["announce", "--html", HTML]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("HTML checked: 3 tag(s)"),
        "{}",
        run.stdout
    );

    let delivered = app
        .api
        .wait_until(Duration::from_secs(10), |h| {
            chats
                .iter()
                .all(|&c| h.sent_messages(c).iter().any(|m| m.text == HTML))
        })
        .await;
    assert!(delivered, "not delivered; log:\n{}", app.log());
    for &c in &chats {
        let sent = app.api.sent_messages(c);
        let m = sent.iter().find(|m| m.text == HTML).expect("the message");
        assert_eq!(m.parse_mode.as_deref(), Some("HTML"));
        // What a Telegram client shows: bold, italic and a link, the
        // escaped brackets as text.
        let parsed = parse_telegram_html(&m.text).expect("Telegram parses it");
        let kinds: Vec<&str> = parsed.entities.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["bold", "italic", "text_link"]);
        assert_eq!(
            parsed.entities[2].url.as_deref(),
            Some("https://example.com/apply?a=1&b=2")
        );
        assert!(
            parsed.text.starts_with("新一届大赛报名开始"),
            "{}",
            parsed.text
        );
        assert!(parsed.text.ends_with("<限银行保险机构>"), "{}", parsed.text);
    }
    assert!(
        app.api.rejections().is_empty(),
        "{:?}",
        app.api.rejections()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_html_is_refused_with_its_place_and_nothing_is_queued() {
    let app = start_bot().await;
    subscribe(&app, &[920_001]);
    for (html, expected) in [
        (
            "<b>新一届大赛报名开始",
            "line 1, column 1: <b> opened at line 1, column 1 is never closed",
        ),
        ("<b>新一届</i>", "line 1, column 7: </i> found where </b>"),
        (
            "报名<br>开始",
            "line 1, column 3: <br> is not a tag Telegram supports",
        ),
        (
            "工行 & 建行",
            "line 1, column 4: a `&` that starts no entity must be written &amp;",
        ),
        (
            "<a href=\"javascript:alert(1)\">x</a>",
            "is not a link Telegram accepts",
        ),
    ] {
        let run = cli(&app, &["announce", "--html", html]).await;
        assert_eq!(run.code, Some(1), "{html}: {}", run.stdout);
        assert!(
            run.stderr.contains(expected) && run.stderr.contains("nothing was queued"),
            "{html}: {}",
            run.stderr
        );
    }
    // From a file: the message names the file.
    let file = app.dir.path().join("news.html");
    std::fs::write(&file, "第一行\n<b>第二行").unwrap();
    let path = file.to_str().unwrap();
    for args in [
        vec!["announce", "--html", path],
        vec!["announce", "--html", "--file", path],
    ] {
        let run = cli(&app, &args).await;
        assert_eq!(run.code, Some(1));
        assert!(
            run.stderr
                .contains(&format!("{path}: line 2, column 1: <b> opened")),
            "{}",
            run.stderr
        );
    }
    // A file name that names no file is not sent as the text "typo.html".
    let run = cli(&app, &["announce", "--html", "typo.html"]).await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("typo.html: no such file"),
        "{}",
        run.stderr
    );

    assert_eq!(store(&app).announcement(AnnouncementId(1)).unwrap(), None);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(app.api.sent_messages(920_001).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_from_a_file_is_queued_as_written_and_plain_text_stays_escaped() {
    let app = start_bot().await;
    let file = app.dir.path().join("news.html");
    std::fs::write(&file, format!("{HTML}\n")).unwrap();
    let run = cli(&app, &["announce", "--html", file.to_str().unwrap()]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let a = store(&app)
        .announcement(AnnouncementId(1))
        .unwrap()
        .expect("queued");
    assert_eq!(
        a.text_html, HTML,
        "queued as written, without the final newline"
    );

    // Without --html the same text is plain: every tag is escaped.
    let run = cli(&app, &["announce", "<b>x</b> & y"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let a = store(&app)
        .announcement(AnnouncementId(2))
        .unwrap()
        .expect("queued");
    assert_eq!(a.text_html, "&lt;b&gt;x&lt;/b&gt; &amp; y");
}

/// What `markup::check` accepts, Telegram's parser (as the fake Bot API
/// implements it) accepts too, with the same text length; what it refuses
/// beyond Telegram is listed and deliberate.
#[test]
fn the_checker_agrees_with_telegrams_parser() {
    let accepted = [
        HTML,
        "plain text",
        "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins>",
        "<s>s</s><strike>t</strike><del>d</del><tg-spoiler>x</tg-spoiler>",
        "<span class=\"tg-spoiler\">x</span><code>c</code><pre>p</pre>",
        "<pre><code class=\"language-rust\">fn main() {}</code></pre>",
        "<blockquote>q</blockquote><blockquote expandable>long</blockquote>",
        "<b>粗<i>斜<u>下划</u></i></b> &#128512; &#x41; &quot;q&quot; 1 &gt; 0",
        "<a href=\"tg://user?id=123\">someone</a> <a href=\"https://t.me/x\">t.me</a>",
        "<B>upper</B>",
        "line 1\nline 2\n<i>line 3</i>",
    ];
    for html in accepted {
        let ours = markup::check(html).unwrap_or_else(|e| panic!("{html:?}: {e}"));
        let telegram = parse_telegram_html(html).unwrap_or_else(|e| panic!("{html:?}: {e}"));
        assert_eq!(ours.text_units, telegram.utf16_len, "{html:?}");
    }
    let refused_by_both = [
        "<b>x",
        "<b>x</i>",
        "x</b>",
        "<br>",
        "<div>x</div>",
        "a < b",
        "a & b",
        "<span>x</span>",
    ];
    for html in refused_by_both {
        assert!(markup::check(html).is_err(), "{html:?} accepted");
        assert!(
            parse_telegram_html(html).is_err(),
            "{html:?}: Telegram accepts it"
        );
    }
    // Stricter than Telegram on purpose: Telegram shows unknown entities as
    // literal text, ignores unknown attributes and drops a link without a
    // target, which is never what an announcement's author meant.
    for html in ["a&nbsp;b", "<b class=\"x\">b</b>", "<a>x</a>"] {
        assert!(markup::check(html).is_err(), "{html:?} accepted");
    }
}
