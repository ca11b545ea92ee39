mod support;
use std::time::Duration;
use support::app::spawn_app;
use support::botapi::{ChatSpec, UserSpec};
use support::html::check_telegram_html;

#[tokio::test]
async fn start_and_a_question() {
    let app = spawn_app().await;
    let api = &app.api;
    let alice = UserSpec::new(1001, "Alice").lang("zh-hans");
    api.send_text(&ChatSpec::private(1001), &alice, "/start");
    api.send_text(&ChatSpec::private(1001), &alice, "李斌获得了什么奖");
    let msgs = api
        .wait_for_messages(1001, 2, Duration::from_secs(10))
        .await;
    assert_eq!(msgs.len(), 2, "log:\n{}", app.log());
    for m in &msgs {
        check_telegram_html(&m.text).unwrap();
    }
    assert!(
        msgs[1].visible_text().contains("李彬"),
        "{}",
        msgs[1].visible_text()
    );
    assert!(api.rejections().is_empty(), "{:?}", api.rejections());
}
