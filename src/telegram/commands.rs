//! The bot's commands and the command menu (Chinese by default, English for
//! users whose Telegram language is English).

use teloxide::types::BotCommand;
use teloxide::utils::command::BotCommands;

#[derive(BotCommands, Clone, Debug, PartialEq)]
#[command(rename_rule = "lowercase", description = "命令:")]
pub enum Command {
    #[command(description = "欢迎和示例")]
    Start(String),
    #[command(description = "帮助")]
    Help,
    #[command(description = "浏览荣誉榜")]
    Awards,
    #[command(description = "查询奖项或名字,如 /winner 李彬")]
    Winner(String),
    #[command(description = "帮老人防诈骗的提示")]
    Tips(String),
    #[command(description = "已收录的报道")]
    Reports,
    #[command(description = "数据来源")]
    About,
    #[command(description = "订阅新大赛公告")]
    Subscribe,
    #[command(description = "取消订阅")]
    Unsubscribe,
    #[command(description = "订阅状态")]
    Status,
    #[command(description = "管理员:发布公告")]
    Announce(String),
}

/// The menu in Chinese (default) — everything but the admin command.
pub fn menu_zh() -> Vec<BotCommand> {
    // teloxide writes "/start"; Telegram wants the bare name.
    Command::bot_commands()
        .into_iter()
        .map(|c| BotCommand::new(c.command.trim_start_matches('/'), c.description))
        .filter(|c| c.command != "announce")
        .collect()
}

/// The same menu in English.
pub fn menu_en() -> Vec<BotCommand> {
    [
        ("start", "Welcome and examples"),
        ("help", "Help"),
        ("awards", "Browse the award list"),
        ("winner", "Look up a prize or a name, e.g. /winner 李彬"),
        ("tips", "Anti-fraud tips for elderly relatives"),
        ("reports", "Reports I know"),
        ("about", "Where the data comes from"),
        ("subscribe", "Get new contest announcements"),
        ("unsubscribe", "Stop announcements"),
        ("status", "Subscription status"),
    ]
    .into_iter()
    .map(|(c, d)| BotCommand::new(c, d))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menus_match_and_are_valid() {
        let zh = menu_zh();
        let en = menu_en();
        assert_eq!(zh.len(), en.len());
        for (a, b) in zh.iter().zip(&en) {
            assert_eq!(
                a.command.trim_start_matches('/'),
                b.command.trim_start_matches('/')
            );
            assert!(!a.description.is_empty() && a.description.chars().count() <= 256);
        }
    }

    #[test]
    fn parses_with_bot_name() {
        assert_eq!(
            Command::parse("/winner@reportbot_test_bot 李彬", "reportbot_test_bot").ok(),
            Some(Command::Winner("李彬".into()))
        );
        assert!(Command::parse("/help@other_bot", "reportbot_test_bot").is_err());
    }
}
