//! Publishing a report: the announcement subscribers get when a new contest's
//! results are added, built from the report's own data.

use crate::knowledge::{Level, Report};
use crate::render::escape_html;

/// The dedupe key that makes publishing the same report twice announce once.
pub fn dedupe_key(report_id: &str) -> String {
    format!("report:{report_id}")
}

/// Telegram HTML: the contest's name and date, the first prizes, how to ask.
pub fn announcement(report: &Report) -> String {
    let m = &report.meta;
    let mut lines = vec![
        format!("📢 <b>{}</b> 获奖名单已发布", escape_html(&m.contest)),
        escape_html(&format!("决赛:{} {}", m.final_date, m.city)),
        String::new(),
    ];
    // The first prizes, and any prize ranked above them (a 特等奖).
    let first = report.levels.rank(Level::First);
    for prize in report
        .prizes()
        .into_iter()
        .filter(|p| report.levels.rank(p.level) <= first)
    {
        let winners: Vec<String> = report
            .awards
            .iter()
            .filter(|a| a.prize() == prize)
            .map(|a| format!("{} {}", a.institution, a.winner))
            .collect();
        lines.push(format!(
            "<b>{}</b>:{}",
            escape_html(&prize.full_label_zh(&report.levels)),
            escape_html(&winners.join("、"))
        ));
    }
    lines.push(String::new());
    lines.push("发送 /awards 浏览完整荣誉榜,或直接提问,例如“个人一等奖是谁?”。".to_string());
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::Knowledge;

    #[test]
    fn announcement_names_contest_date_and_first_prizes() {
        let k = Knowledge::builtin().unwrap();
        let text = announcement(k.newest());
        for must in [
            "2022浙江银行业保险业数字化改革数据应用创新大赛",
            "2022-11-22",
            "杭州",
            "工银浙里队",
            "李彬",
            "国寿新速度队",
            "郭允正",
            "/awards",
        ] {
            assert!(text.contains(must), "{must}: {text}");
        }
        assert!(!text.contains("郭胜"), "only first prizes");
    }
}
