//! End to end: passing tips on (issue 14) and formatted announcements — the
//! real `reportbot` binary against the fake Bot API of
//! `tests/support/botapi.rs`, driven as users and an admin would.
//!
//! - the "大字图片" / "转发给家人" buttons under tips answers;
//! - "大字图片" sends one photo: a multipart upload (a 1080 px PNG) the first
//!   time, the stored `file_id` afterwards (also after a restart), and an
//!   upload again when Telegram no longer knows the `file_id`;
//! - the share button's inline query, and inline mode's answer to it;
//! - `/announce` with bold, italic and a link arrives with those entities.

mod support;

use reportbot::store::{FileKey, SqliteStore, Store};
use serde_json::{Value, json};
use support::app::{AppOptions, TestApp, spawn_app, spawn_app_with};
use support::botapi::{BOT_ID, SentMessage, SentPhoto, TextOptions, UserSpec};
use support::e2e::{WAIT, ask, en_user, zh_user};

/// The raw buttons of a message's inline keyboard, row after row.
fn raw_buttons(m: &SentMessage) -> Vec<Value> {
    m.reply_markup
        .as_ref()
        .and_then(|k| k.get("inline_keyboard"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .cloned()
        .collect()
}

fn assert_no_rejections(app: &TestApp) {
    let r = app.api.rejections();
    assert!(
        r.is_empty(),
        "Telegram would refuse: {r:#?}\nlog:\n{}",
        app.log()
    );
}

/// Press `data` under `under` and wait for photo number `n` of the chat.
async fn press_for_photo(
    app: &TestApp,
    user: &UserSpec,
    under: &SentMessage,
    data: &str,
    n: usize,
) -> SentPhoto {
    let chat = user.private_chat();
    app.api.press_button(&chat, user, under.message_id, data);
    let photos = app.api.wait_for_photos(chat.id(), n, WAIT).await;
    assert!(
        photos.len() >= n,
        "no photo {n} after pressing {data:?}; messages: {:#?}\nrejections: {:#?}\nlog:\n{}",
        app.api
            .sent_messages(chat.id())
            .iter()
            .map(SentMessage::visible_text)
            .collect::<Vec<_>>(),
        app.api.rejections(),
        app.log()
    );
    photos[n - 1].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tips_answers_carry_a_picture_and_a_share_button_in_the_answers_language() {
    let app = spawn_app().await;
    let zh = zh_user(2101);
    let en = en_user(2102);
    for (user, question, picture, share, data, query) in [
        (
            &zh,
            "/tips 验证码",
            "大字图片",
            "转发给家人",
            "p:zh:verification_code",
            "tips 验证码",
        ),
        (
            &zh,
            "怎么防止老人被骗",
            "大字图片",
            "转发给家人",
            "p:zh:",
            "tips",
        ),
        (
            &en,
            "/tips courier",
            "Large-print picture",
            "Share with family",
            "p:en:courier",
            "tips courier",
        ),
        (
            &en,
            "/tips",
            "Large-print picture",
            "Share with family",
            "p:en:",
            "tips",
        ),
    ] {
        let answer = ask(&app, user, question).await;
        let buttons = raw_buttons(&answer);
        assert!(buttons.len() >= 3, "{question}: {buttons:#?}");
        assert_eq!(buttons[0]["text"], picture, "{question}");
        assert_eq!(buttons[0]["callback_data"], data, "{question}");
        assert_eq!(buttons[1]["text"], share, "{question}");
        let chosen = &buttons[1]["switch_inline_query_chosen_chat"];
        assert_eq!(chosen["query"], query, "{question}: {chosen}");
        assert_eq!(chosen["allow_user_chats"], true);
        assert_eq!(chosen["allow_group_chats"], true);
        // The topic buttons follow.
        assert!(
            buttons[2..].iter().all(|b| b["callback_data"]
                .as_str()
                .is_some_and(|d| d.starts_with("t:"))),
            "{question}: {buttons:#?}"
        );
    }
    // A topic button keeps the pass-on row, for the topic now shown.
    let tips = ask(&app, &zh, "/tips").await;
    app.api
        .press_button(&zh.private_chat(), &zh, tips.message_id, "t:courier");
    let edits = app.api.wait_for_edits(2101, 1, WAIT).await;
    let edit = edits.last().expect("the tips message was edited");
    let data: Vec<String> = edit.buttons().into_iter().filter_map(|(_, d)| d).collect();
    assert_eq!(data[0], "p:zh:courier", "{data:?}");
    assert_no_rejections(&app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_picture_is_uploaded_once_then_sent_by_file_id() {
    let mut app = spawn_app().await;
    let user = zh_user(2201);
    let tips = ask(&app, &user, "/tips 验证码").await;

    // First press: a multipart upload of the PNG, with a short caption.
    let first = press_for_photo(&app, &user, &tips, "p:zh:verification_code", 1).await;
    let upload = first.upload.clone().expect("the first picture is uploaded");
    assert_eq!(upload["png"]["width"], 1080, "{upload}");
    let height = upload["png"]["height"].as_u64().unwrap_or(0);
    assert!((1080..=6000).contains(&height), "{upload}");
    let size = upload["size"].as_u64().unwrap_or(0);
    assert!(size > 10_000 && size < 300 * 1024, "{size} bytes");
    assert_eq!(first.sent_file_id, None);
    let caption = first.caption.clone().unwrap_or_default();
    assert!(
        caption.contains("验证码") && caption.chars().count() <= 60,
        "{caption}"
    );

    // Second press: the same picture by its file_id, nothing uploaded.
    let second = press_for_photo(&app, &user, &tips, "p:zh:verification_code", 2).await;
    assert!(
        second.upload.is_none(),
        "uploaded twice: {:?}",
        second.upload
    );
    assert_eq!(second.sent_file_id.as_deref(), Some(first.file_id.as_str()));
    assert_eq!(second.caption, first.caption);
    // Both presses were answered (no spinning button), no text instead.
    let answers = app.api.wait_for_callback_answers(2, WAIT).await;
    assert_eq!(answers.len(), 2);
    assert_eq!(app.api.sent_messages(2201).len(), 1, "only the tips text");

    // The file_id is in the bot's database, under the bot and the card key.
    let catalog = reportbot::card::Catalog::check(
        &reportbot::knowledge::Knowledge::builtin().expect("built-in data"),
    );
    let key = catalog
        .key(Some("verification_code"), reportbot::engine::Lang::Zh)
        .expect("the card can be drawn")
        .to_string();
    let stored = SqliteStore::open(&app.db)
        .expect("open the bot's database")
        .uploaded_file(&FileKey {
            bot_id: BOT_ID as i64,
            key,
        })
        .expect("read the cache");
    assert_eq!(stored.as_deref(), Some(first.file_id.as_str()));

    // After a restart: still by file_id.
    app.kill_hard().await;
    app.start().await;
    let third = press_for_photo(&app, &user, &tips, "p:zh:verification_code", 3).await;
    assert_eq!(third.sent_file_id.as_deref(), Some(first.file_id.as_str()));

    // Telegram lost the file: the bot uploads again and keeps the new id.
    app.api.forget_uploaded_files();
    let fourth = press_for_photo(&app, &user, &tips, "p:zh:verification_code", 4).await;
    assert!(fourth.upload.is_some(), "not uploaded again");
    assert_ne!(fourth.file_id, first.file_id);
    let fifth = press_for_photo(&app, &user, &tips, "p:zh:verification_code", 5).await;
    assert_eq!(fifth.sent_file_id.as_deref(), Some(fourth.file_id.as_str()));

    // Another topic, another language: another picture.
    let en = en_user(2202);
    let courier = ask(&app, &en, "/tips courier").await;
    app.api
        .press_button(&en.private_chat(), &en, courier.message_id, "p:en:courier");
    let photos = app.api.wait_for_photos(2202, 1, WAIT).await;
    assert!(photos[0].upload.is_some());
    assert!(
        photos[0]
            .caption
            .as_deref()
            .unwrap_or("")
            .contains("courier"),
        "{:?}",
        photos[0].caption
    );
    // The one refused send is the lost file_id (injected by this test).
    let refused: Vec<_> = app
        .api
        .rejections()
        .into_iter()
        .filter(|r| !r.description.contains("wrong file identifier"))
        .collect();
    assert!(refused.is_empty(), "{refused:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_mode_answers_the_share_query_with_text_then_also_the_picture() {
    let app = spawn_app().await;
    let user = zh_user(2301);
    let results = |n: usize| {
        let api = app.api.handle();
        async move {
            let answers = api.wait_for_inline_answers(n, WAIT).await;
            assert!(answers.len() >= n, "no inline answer {n}");
            answers[n - 1].results.clone()
        }
    };

    // Before any picture was uploaded: the tips as text.
    app.api.inline_query(&user, "tips 验证码");
    let first = results(1).await;
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_eq!(first[0]["type"], "article");
    let text = first[0]["input_message_content"]["message_text"]
        .as_str()
        .unwrap_or("");
    assert!(text.contains("验证码") && text.contains("1. "), "{text}");
    assert!(
        first[0]["title"].as_str().unwrap_or("").contains("验证码"),
        "{}",
        first[0]
    );

    // Somebody pressed "picture": now the picture is offered too.
    let tips = ask(&app, &user, "/tips 验证码").await;
    let photo = press_for_photo(&app, &user, &tips, "p:zh:verification_code", 1).await;
    app.api.inline_query(&user, "tips 验证码");
    let second = results(2).await;
    assert_eq!(second.len(), 2, "{second:#?}");
    let picture = second
        .iter()
        .find(|r| r["type"] == "photo")
        .unwrap_or_else(|| panic!("no picture: {second:#?}"));
    assert_eq!(picture["photo_file_id"], json!(photo.file_id));
    assert!(
        picture["caption"].as_str().unwrap_or("").contains("验证码"),
        "{picture}"
    );

    // Other questions in inline mode are answered as before.
    app.api.inline_query(&user, "李彬");
    let other = results(3).await;
    assert_eq!(other.len(), 1);
    assert!(
        other[0]["input_message_content"]["message_text"]
            .as_str()
            .unwrap_or("")
            .contains("李彬")
    );
    assert_no_rejections(&app);
}

const ADMIN: u64 = 2400;

/// `(type, offset, length, url)` of each formatting entity of a message as
/// Telegram stores it.
fn formatting(entities: &Value) -> Vec<(String, u64, u64, Option<String>)> {
    let mut out: Vec<_> = entities
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] != "bot_command")
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_string(),
                e["offset"].as_u64().unwrap_or(0),
                e["length"].as_u64().unwrap_or(0),
                e["url"].as_str().map(str::to_string),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announcement_with_bold_and_a_link_arrives_formatted() {
    let app = spawn_app_with(AppOptions {
        admins: vec![ADMIN],
        ..AppOptions::default()
    })
    .await;
    let reader = zh_user(2401);
    let subscribed = ask(&app, &reader, "/subscribe").await;
    assert!(
        subscribed.visible_text().contains("订阅"),
        "{}",
        subscribed.visible_text()
    );

    // As the admin's Telegram client sends it: the text plus entities
    // (UTF-16 offsets from the start of the message).
    let admin = UserSpec::new(ADMIN, "Admin").lang("zh-hans");
    let text = "/announce 2023大赛 报名开始,<详情> 见官网 & 通知";
    let units = |s: &str| s.encode_utf16().count() as u64;
    let start = units("/announce ");
    let url = "https://example.com/contest?year=2023&group=bank";
    let entities = json!([
        {"type": "bot_command", "offset": 0, "length": 9},
        {"type": "bold", "offset": start, "length": units("2023大赛")},
        {"type": "italic", "offset": units("/announce 2023大赛 "), "length": units("报名开始")},
        {"type": "text_link", "offset": units("/announce 2023大赛 报名开始,<详情> "), "length": units("见官网"), "url": url},
    ]);
    app.api.send_text_with(
        &admin.private_chat(),
        &admin,
        text,
        TextOptions {
            entities: Some(entities.as_array().cloned().unwrap_or_default()),
            ..TextOptions::default()
        },
    );
    // The same formatting, counted from the start of the announcement.
    let mut expected = formatting(&entities);
    for e in &mut expected {
        e.1 -= start;
    }
    let visible = "2023大赛 报名开始,<详情> 见官网 & 通知";

    // The preview: exactly the text and formatting subscribers will get.
    let msgs = app.api.wait_for_messages(ADMIN as i64, 2, WAIT).await;
    assert!(
        msgs.len() >= 2,
        "no preview: {msgs:#?}\nlog:\n{}",
        app.log()
    );
    let body = &msgs[1];
    let shown = app
        .api
        .message_json(ADMIN as i64, body.message_id)
        .expect("the preview is stored");
    assert_eq!(shown["text"], visible);
    assert_eq!(
        formatting(&shown["entities"]),
        expected,
        "preview: {}",
        body.text
    );

    // Confirmed: the subscriber gets the same.
    let confirm = body
        .callback_data()
        .into_iter()
        .find(|d| d.starts_with("n:ok:"))
        .expect("a Confirm button");
    app.api
        .press_button(&admin.private_chat(), &admin, body.message_id, &confirm);
    let got = app.api.wait_for_messages(2401, 2, WAIT).await;
    assert!(
        got.len() >= 2,
        "not delivered: {got:#?}\nlog:\n{}",
        app.log()
    );
    let delivered = app
        .api
        .message_json(2401, got[1].message_id)
        .expect("the announcement is stored");
    assert_eq!(delivered["text"], visible);
    assert_eq!(
        formatting(&delivered["entities"]),
        expected,
        "delivered: {}",
        got[1].text
    );
    assert_eq!(got[1].text, body.text, "the preview is what was delivered");
    assert_no_rejections(&app);
}

/// Copy `src` (a report's directory) into `dst`.
fn copy_dir(src: &std::path::Path, dst: &std::path::Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for entry in std::fs::read_dir(src).expect("read data dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dst.join(entry.file_name())).expect("copy");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_picture_the_font_cannot_draw_is_sent_as_text_with_a_warning() {
    // The shipped data, with Korean (not in the font) in a courier tip.
    let data = tempfile::tempdir().expect("temp dir");
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    for file in ["institutions.json", "lexicon.json", "team_aliases.json"] {
        std::fs::copy(shipped.join(file), data.path().join(file)).expect("copy");
    }
    copy_dir(&shipped.join("sources"), &data.path().join("sources"));
    let report = data.path().join("reports/2022-zhejiang");
    copy_dir(&shipped.join("reports/2022-zhejiang"), &report);
    let path = report.join("antifraud.json");
    let mut antifraud: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    let tip = antifraud["tips"]
        .as_array_mut()
        .and_then(|t| t.iter_mut().find(|t| t["topic"] == "courier"))
        .expect("a courier tip");
    let zh = format!("{}한국", tip["zh"].as_str().unwrap_or(""));
    tip["zh"] = zh.into();
    std::fs::write(&path, antifraud.to_string()).expect("write");

    let app = spawn_app_with(AppOptions {
        env: vec![("REPORTBOT_DATA".into(), data.path().display().to_string())],
        ..AppOptions::default()
    })
    .await;
    let user = zh_user(2501);
    let tips = ask(&app, &user, "/tips 快递").await;
    assert!(
        tips.visible_text().contains("한국"),
        "{}",
        tips.visible_text()
    );
    // The button is there; pressing it sends the tips as text, no picture.
    assert_eq!(raw_buttons(&tips)[0]["callback_data"], "p:zh:courier");
    app.api
        .press_button(&user.private_chat(), &user, tips.message_id, "p:zh:courier");
    let msgs = app.api.wait_for_messages(2501, 2, WAIT).await;
    assert!(
        msgs.len() >= 2,
        "nothing sent: {:#?}\nlog:\n{}",
        app.api.rejections(),
        app.log()
    );
    assert_eq!(msgs[1].visible_text(), tips.visible_text());
    assert!(app.api.sent_photos(2501).is_empty());
    let log = app.log();
    assert!(
        log.contains("WARN") && log.contains("no large-print picture") && log.contains("U+D55C"),
        "{log}"
    );
    // The English card of the same topic has no Korean: a picture.
    let en = en_user(2502);
    let courier = ask(&app, &en, "/tips courier").await;
    app.api
        .press_button(&en.private_chat(), &en, courier.message_id, "p:en:courier");
    let photos = app.api.wait_for_photos(2502, 1, WAIT).await;
    assert_eq!(photos.len(), 1);
    assert_no_rejections(&app);
}
