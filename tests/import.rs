//! `reportbot import`: report text → data files, checked against the shipped
//! 2022 report and a made-up 2099 one.

use reportbot::import::{
    FileStatus, ImportError, ImportOptions, WriteOptions, import_report, import_report_with,
    write_report, write_report_with,
};
use reportbot::knowledge::{Award, Group, Kind, Knowledge, Level, ReportMeta};
use std::path::{Path, PathBuf};

const SOURCE_2022: &str = "2022-11-zhejiang-banking-insurance-news.txt";

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text_2022() -> String {
    read(&data().join("sources").join(SOURCE_2022))
}

/// TEST DATA, not a real report: the 2099 contest does not exist. It has
/// full-width brackets, a traditional heading, a blank line inside a section,
/// a row with several spaces, one with a full-width space, one with a tab, and
/// one malformed line (14) inside the list.
const TEST_2099_LINES: &[&str] = &[
    "2099浙江测试大赛顺利举办",                                // 1
    "",                                                        // 2
    "测试数据:这不是真实的报道,仅供 reportbot 导入测试使用。", // 3
    "",                                                        // 4
    "荣誉榜",                                                  // 5
    "",                                                        // 6
    "团体一等奖（银行机构组）",                                // 7
    "测试银行甲分行    甲队",                                  // 8
    "",                                                        // 9
    "團體二等獎（銀行機構組）",                                // 10
    "测试银行乙分行 乙队",                                     // 11
    "",                                                        // 12
    "测试银行丙分行\u{3000}丙队",                              // 13
    "测试银行丁分行",                                          // 14
    "测试银行戊分行 戊队",                                     // 15
    "",                                                        // 16
    "个人一等奖(保险机构组)",                                  // 17
    "测试保险己公司\t张测试",                                  // 18
    "",                                                        // 19
    "最佳人气奖",                                              // 20
    "测试银行甲分行 测试“甲”队",                               // 21
    "",                                                        // 22
    "本次大赛有来自全省12个团队的48位参赛选手参加,最终决出6个团队进入决赛。", // 23
    "",                                                        // 24
    "11月5日,由测试单位主办的2099浙江测试大赛在宁波举行。",    // 25
];
const SOURCE_2099: &str = "2099-11-test-report.txt";

fn text_2099() -> String {
    TEST_2099_LINES.join("\n") + "\n"
}

fn award(
    group: Option<Group>,
    kind: Kind,
    level: Level,
    institution: &str,
    winner: &str,
    line: usize,
) -> Award {
    Award {
        group,
        kind,
        level,
        institution: institution.to_string(),
        winner: winner.to_string(),
        line,
    }
}

#[test]
fn the_2022_report_round_trips_exactly() {
    let text = text_2022();
    let imported = import_report(&text, SOURCE_2022).expect("import 2022");
    assert!(imported.problems.is_empty(), "{:?}", imported.problems);

    let shipped_dir = data().join("reports/2022-zhejiang");
    let shipped_awards: Vec<Award> =
        serde_json::from_str(&read(&shipped_dir.join("awards.json"))).unwrap();
    assert_eq!(imported.awards, shipped_awards);

    let shipped: ReportMeta =
        serde_json::from_str(&read(&shipped_dir.join("report.json"))).unwrap();
    let m = &imported.meta;
    assert_eq!(m.id, shipped.id);
    assert_eq!(m.title, shipped.title);
    assert_eq!(m.contest, shipped.contest);
    assert_eq!(m.year, shipped.year);
    assert_eq!(m.final_date, shipped.final_date);
    assert_eq!(m.city, shipped.city);
    assert_eq!(m.published, shipped.published);
    assert_eq!(m.source, shipped.source);
    assert_eq!(m.teams, shipped.teams);
    assert_eq!(m.participants, shipped.participants);
    assert_eq!(m.finalists, shipped.finalists);
    assert_eq!(imported.award_list, (5, 82));

    assert_eq!(
        imported.summary.headline(),
        "银行机构组: 20 rows in 8 prizes; 保险机构组: 20 rows in 8 prizes; 最佳人气奖: 2 rows"
    );
    // The summary shows every row under its group and prize, with its line.
    let summary = imported.summary.to_string();
    assert!(
        summary.contains(
            "银行机构组\n  团体一等奖 (1 row)\n    line 8: 工商银行浙江省分行 | 工银浙里队\n"
        ),
        "{summary}"
    );
    assert!(
        summary.ends_with("最佳人气奖 (2 rows)\n  line 81: 浙江农商联合银行 | 农商助农队\n  line 82: 平安财险浙江分公司 | 平安风控专家队"),
        "{summary}"
    );

    // Byte for byte, as written.
    let out = tempfile::tempdir().unwrap();
    let written = write_report(&imported, out.path()).expect("write 2022");
    assert_eq!(written.report_dir, out.path().join("reports/2022-zhejiang"));
    assert!(
        written
            .files
            .iter()
            .all(|f| f.status == FileStatus::Created)
    );
    for name in ["report.json", "awards.json"] {
        assert_eq!(
            std::fs::read(out.path().join("reports/2022-zhejiang").join(name)).unwrap(),
            std::fs::read(shipped_dir.join(name)).unwrap(),
            "{name}"
        );
    }
    assert_eq!(
        std::fs::read(out.path().join("sources").join(SOURCE_2022)).unwrap(),
        text.as_bytes()
    );
    // Importing into the shipped layout again changes nothing.
    let again = write_report(&imported, out.path()).unwrap();
    assert!(
        again
            .files
            .iter()
            .all(|f| f.status == FileStatus::Unchanged)
    );
}

#[test]
fn a_new_report_is_imported_with_its_problems() {
    let imported = import_report(&text_2099(), SOURCE_2099).expect("import 2099");
    let bank = Some(Group::Bank);
    assert_eq!(
        imported.awards,
        vec![
            award(bank, Kind::Team, Level::First, "测试银行甲分行", "甲队", 8),
            award(
                bank,
                Kind::Team,
                Level::Second,
                "测试银行乙分行",
                "乙队",
                11
            ),
            award(
                bank,
                Kind::Team,
                Level::Second,
                "测试银行丙分行",
                "丙队",
                13
            ),
            award(
                bank,
                Kind::Team,
                Level::Second,
                "测试银行戊分行",
                "戊队",
                15
            ),
            award(
                Some(Group::Insurance),
                Kind::Individual,
                Level::First,
                "测试保险己公司",
                "张测试",
                18
            ),
            award(
                None,
                Kind::Team,
                Level::MostPopular,
                "测试银行甲分行",
                "测试“甲”队",
                21
            ),
        ]
    );
    assert_eq!(imported.problems.len(), 1, "{:?}", imported.problems);
    assert_eq!(imported.problems[0].line, 14);
    assert_eq!(imported.problems[0].text, "测试银行丁分行");
    assert_eq!(imported.summary.problems, imported.problems);
    assert_eq!(imported.award_list, (5, 21));

    let m = &imported.meta;
    assert_eq!(m.id, "2099-zhejiang");
    assert_eq!(m.title, "2099浙江测试大赛顺利举办");
    assert_eq!(m.contest, "2099浙江测试大赛");
    assert_eq!(m.year, 2099);
    assert_eq!(m.final_date, "2099-11-05");
    assert_eq!(m.city, "宁波");
    assert_eq!(m.published, "2099-11");
    assert_eq!(m.source, SOURCE_2099);
    assert_eq!(
        (m.teams, m.participants, m.finalists),
        (Some(12), Some(48), Some(6))
    );

    let summary = imported.summary.to_string();
    let mut lines = summary.lines();
    assert_eq!(
        lines.next(),
        Some("银行机构组: 4 rows in 2 prizes; 保险机构组: 1 row in 1 prize; 最佳人气奖: 1 row")
    );
    let mut lines = lines.skip_while(|l| !l.ends_with("in the award list:"));
    assert_eq!(lines.next(), Some("1 problem in the award list:"));
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("  line 14: 测试银行丁分行 — ")),
        "{summary}"
    );
}

#[test]
fn written_reports_load_and_the_newest_comes_first() {
    let out = tempfile::tempdir().unwrap();
    let r2022 = import_report(&text_2022(), SOURCE_2022).unwrap();
    let r2099 = import_report(&text_2099(), SOURCE_2099).unwrap();
    write_report(&r2022, out.path()).unwrap();
    let written = write_report(&r2099, out.path()).unwrap();
    assert_eq!(
        written
            .files
            .iter()
            .map(|f| f.path.clone())
            .collect::<Vec<_>>(),
        vec![
            out.path().join("reports/2099-zhejiang/report.json"),
            out.path().join("reports/2099-zhejiang/awards.json"),
            out.path().join("sources").join(SOURCE_2099),
        ]
    );

    let k = Knowledge::load_dir(out.path()).expect("the written directory loads");
    assert_eq!(k.reports.len(), 2);
    assert_eq!(k.newest().meta.id, "2099-zhejiang");
    assert_eq!(k.newest().awards, r2099.awards);
    assert_eq!(k.reports[1].meta.id, "2022-zhejiang");
    assert_eq!(k.reports[1].awards, r2022.awards);
    assert!(k.institution("测试银行甲分行").is_some());
}

#[test]
fn existing_files_are_not_overwritten_silently() {
    let out = tempfile::tempdir().unwrap();
    let first = import_report(&text_2099(), SOURCE_2099).unwrap();
    write_report(&first, out.path()).unwrap();

    let changed_text = text_2099().replace("乙队", "乙新队");
    let changed = import_report(&changed_text, SOURCE_2099).unwrap();
    let err = write_report(&changed, out.path()).unwrap_err();
    let awards = out.path().join("reports/2099-zhejiang/awards.json");
    match &err {
        ImportError::Exists { path } => assert_eq!(path, &awards),
        other => panic!("expected Exists, got {other:?}"),
    }
    assert!(err.to_string().contains("awards.json"), "{err}");
    // Nothing was written: the old awards are still there.
    assert!(read(&awards).contains("\"乙队\""));

    let written =
        write_report_with(&changed, out.path(), &WriteOptions { overwrite: true }).unwrap();
    let statuses: Vec<FileStatus> = written.files.iter().map(|f| f.status).collect();
    assert_eq!(
        statuses,
        [
            FileStatus::Unchanged,
            FileStatus::Replaced,
            FileStatus::Replaced
        ]
    );
    assert!(read(&awards).contains("\"乙新队\""));
    Knowledge::load_dir(out.path()).expect("loads after overwriting");

    // The same id in another directory would make the data fail to load.
    std::fs::rename(
        out.path().join("reports/2099-zhejiang"),
        out.path().join("reports/renamed"),
    )
    .unwrap();
    assert!(matches!(
        write_report(&changed, out.path()),
        Err(ImportError::IdTaken { .. })
    ));
}

#[test]
fn an_explicit_id_wins() {
    let options = ImportOptions {
        id: Some("2099-test".to_string()),
        ..ImportOptions::default()
    };
    let imported = import_report_with(&text_2099(), SOURCE_2099, &options).unwrap();
    assert_eq!(imported.meta.id, "2099-test");
    let out = tempfile::tempdir().unwrap();
    let written = write_report(&imported, out.path()).unwrap();
    assert_eq!(written.report_dir, out.path().join("reports/2099-test"));

    for bad in ["", "../x", "Upper", "a/b", "-x"] {
        let options = ImportOptions {
            id: Some(bad.to_string()),
            ..ImportOptions::default()
        };
        assert!(
            matches!(
                import_report_with(&text_2099(), SOURCE_2099, &options),
                Err(ImportError::InvalidName { .. })
            ),
            "{bad:?}"
        );
    }
    for bad in ["", "../x.txt", "dir/x.txt", ".hidden"] {
        assert!(
            matches!(
                import_report(&text_2099(), bad),
                Err(ImportError::InvalidName { .. })
            ),
            "{bad:?}"
        );
    }
}

fn not_a_report(text: &str) -> String {
    match import_report(text, "x.txt") {
        Err(ImportError::NotAReport { reason }) => reason,
        other => panic!("expected NotAReport for {text:?}, got {other:?}"),
    }
}

#[test]
fn texts_that_are_not_reports_are_refused() {
    assert!(not_a_report("").contains("empty"));
    assert!(not_a_report(" \n\u{3000}\n\n").contains("empty"));
    assert!(not_a_report("今天天气很好。\n明天也是。\n").contains("荣誉榜"));
    let reason = not_a_report("标题\n\n荣誉榜\n\n本届比赛没有评奖。\n");
    assert!(reason.contains("line 3"), "{reason}");
    let reason =
        not_a_report("标题\n荣誉榜\n团体一等奖(银行机构组)\n\n这里是正文,不是获奖名单。\n");
    assert!(reason.contains("no rows"), "{reason}");
    let err = import_report("", "x.txt").unwrap_err();
    assert!(err.to_string().starts_with("not a report: "), "{err}");
}

#[test]
fn nothing_in_the_list_is_dropped_silently() {
    // TEST DATA.
    let text = [
        "2099浙江测试大赛顺利举办",             // 1
        "荣誉榜",                               // 2
        "测试银行 队零",                        // 3 row before any heading
        "团体一等奖(银行机构组)",               // 4 heading without rows
        "团体二等奖(银行机构组)",               // 5
        "测试银行甲 甲队",                      // 6
        "测试银行甲 甲队",                      // 7 duplicate
        "测试银行乙 乙队 多余",                 // 8 three fields
        "一等奖(保险机构组)",                   // 9 no 团体/个人
        "测试保险丙 丙队",                      // 10 under an unreadable heading
        "",                                     // 11
        "这里是正文,获奖名单结束了。",          // 12 the list ends
        "正文还在继续。",                       // 13
        "个人一等奖(保险机构组)",               // 14 a heading after the end
        "测试保险丁 丁某",                      // 15
        "11月5日,2099浙江测试大赛在宁波举行。", // 16
    ]
    .join("\n");
    let imported = import_report(&text, "x.txt").unwrap();
    assert_eq!(imported.awards.len(), 1);
    assert_eq!(imported.awards[0].line, 6);
    let lines: Vec<usize> = imported.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, [3, 4, 7, 8, 9, 10, 14], "{:#?}", imported.problems);
    assert!(
        imported.problems[6].why.contains("line 12"),
        "{:?}",
        imported.problems[6]
    );
    assert_eq!(imported.meta.teams, None);
    assert_eq!(imported.award_list, (2, 10));

    // A sentence inside the list, followed by a heading, is a problem, not
    // the end; a remark about the order (排名不分先后) is no entry and no problem.
    let text = [
        "2099浙江测试大赛顺利举办",             // 1
        "荣誉榜",                               // 2
        "最佳人气奖",                           // 3
        "测试银行 测试队",                      // 4
        "",                                     // 5
        "以下为个人奖项,请核对。",              // 6
        "个人一等奖(银行机构组)",               // 7
        "（排名不分先后）",                     // 8
        "测试银行 张测试",                      // 9
        "注:以上排名不分先后。",                // 10
        "个人二等奖(银行机构组)",               // 11
        "测试银行 李测试",                      // 12
        "11月5日,2099浙江测试大赛在宁波举行。", // 13
    ]
    .join("\n");
    let imported = import_report(&text, "x.txt").unwrap();
    assert_eq!(imported.awards.len(), 3);
    let lines: Vec<usize> = imported.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, [6]);
}

#[test]
fn a_report_without_its_final_names_what_is_missing() {
    let text = "2099浙江测试大赛顺利举办\n荣誉榜\n最佳人气奖\n测试银行 测试队\n";
    let err = import_report(text, "x.txt").unwrap_err();
    assert!(matches!(err, ImportError::Missing { .. }), "{err:?}");
    assert!(err.to_string().contains("举行"), "{err}");

    let text = "2099浙江测试大赛顺利举办\n荣誉榜\n最佳人气奖\n测试银行 测试队\n\n13月5日,2099浙江测试大赛在宁波举行。\n";
    match import_report(text, "x.txt") {
        Err(ImportError::Line { line: 6, .. }) => {}
        other => panic!("expected an error on line 6, got {other:?}"),
    }
}

#[test]
fn windows_line_ends_and_a_byte_order_mark_change_nothing() {
    let plain = import_report(&text_2099(), SOURCE_2099).unwrap();
    let windows = format!("\u{feff}{}", text_2099().replace('\n', "\r\n"));
    let imported = import_report(&windows, SOURCE_2099).unwrap();
    assert_eq!(imported.awards, plain.awards);
    assert_eq!(imported.problems, plain.problems);
    assert_eq!(imported.meta.title, plain.meta.title);
    let out = tempfile::tempdir().unwrap();
    write_report(&imported, out.path()).unwrap();
    assert_eq!(
        std::fs::read(out.path().join("sources").join(SOURCE_2099)).unwrap(),
        windows.as_bytes()
    );
    Knowledge::load_dir(out.path()).expect("loads");
}

// ---------------------------------------------------------------------------
// Next year's results as pages really publish them: one fixture per layout
// under tests/fixtures/import/, each with a hand-written `.expected` file:
//
//   # contest: …          the contest name the page states
//   # final: DATE CITY     the final's date and city
//   # counts: T P F        teams, participants, finalists (optional)
//   # option: KEY VALUE    an import option (date, city, format)
//   LINE<TAB>PRIZE<TAB>INSTITUTION<TAB>WINNER   every row, in page order
//
// Round trip: import → write next to the shipped 2022 report → load with
// Knowledge::load_dir → ask the engine for every prize cell → exactly that
// cell's rows, and no winner of another cell.

use reportbot::Engine;
use reportbot::import::Format;
use std::collections::BTreeSet;
use std::sync::Arc;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import")
}

#[derive(Debug, Default)]
struct Expected {
    contest: String,
    final_date: String,
    city: String,
    counts: Option<(Option<u32>, Option<u32>, Option<u32>)>,
    options: ImportOptions,
    /// (line, prize label, institution, winner)
    rows: Vec<(usize, String, String, String)>,
}

fn expected(name: &str) -> Expected {
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    let path = fixtures().join(format!("{stem}.expected"));
    let mut e = Expected::default();
    for (n, line) in read(&path).lines().enumerate() {
        let place = || format!("{}:{}", path.display(), n + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let (key, value) = rest
                .split_once(": ")
                .unwrap_or_else(|| panic!("{}", place()));
            match key {
                "contest" => e.contest = value.to_string(),
                "final" => {
                    let (d, c) = value.split_once(' ').unwrap();
                    e.final_date = d.to_string();
                    e.city = c.to_string();
                }
                "counts" => {
                    let n: Vec<Option<u32>> = value.split(' ').map(|v| v.parse().ok()).collect();
                    e.counts = Some((n[0], n[1], n[2]));
                }
                "option" => {
                    let (k, v) = value.split_once(' ').unwrap();
                    match k {
                        "date" => e.options.final_date = Some(v.to_string()),
                        "city" => e.options.city = Some(v.to_string()),
                        "format" => e.options.format = Some(v.parse::<Format>().unwrap()),
                        other => panic!("{}: unknown option {other}", place()),
                    }
                }
                other => panic!("{}: unknown key {other}", place()),
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 4, "{}: {line:?}", place());
        e.rows.push((
            f[0].parse().unwrap_or_else(|_| panic!("{}", place())),
            f[1].to_string(),
            f[2].to_string(),
            f[3].to_string(),
        ));
    }
    assert!(!e.rows.is_empty(), "{}: no rows", path.display());
    e
}

/// A data directory with the shipped 2022 report in it.
fn data_dir_with_2022() -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let r2022 = import_report(&text_2022(), SOURCE_2022).unwrap();
    write_report(&r2022, out.path()).unwrap();
    out
}

/// The `· institution winner` lines of an answer.
fn listed(answer: &str) -> BTreeSet<String> {
    answer
        .lines()
        .filter_map(|l| l.strip_prefix("· "))
        .map(str::to_string)
        .collect()
}

fn round_trip(name: &str) {
    let text = read(&fixtures().join(name));
    let e = expected(name);
    let imported =
        import_report_with(&text, name, &e.options).unwrap_or_else(|err| panic!("{name}: {err}"));
    assert!(
        imported.problems.is_empty(),
        "{name}:\n{}",
        imported.summary
    );
    let got: Vec<(usize, String, String, String)> = imported
        .awards
        .iter()
        .map(|a| {
            (
                a.line,
                a.prize().full_label_zh(&imported.levels),
                a.institution.clone(),
                a.winner.clone(),
            )
        })
        .collect();
    assert_eq!(got, e.rows, "{name}:\n{}", imported.summary);
    let m = &imported.meta;
    assert_eq!(m.contest, e.contest, "{name}");
    assert_eq!(m.year, 2023, "{name}");
    assert_eq!(m.id, "2023-zhejiang", "{name}");
    assert_eq!(m.final_date, e.final_date, "{name}");
    assert_eq!(m.city, e.city, "{name}");
    if let Some(counts) = e.counts {
        assert_eq!((m.teams, m.participants, m.finalists), counts, "{name}");
    }

    let out = data_dir_with_2022();
    write_report(&imported, out.path()).unwrap_or_else(|err| panic!("{name}: {err}"));
    let k = Knowledge::load_dir(out.path()).unwrap_or_else(|err| panic!("{name}: {err}"));
    assert_eq!(k.newest().meta.id, "2023-zhejiang");
    assert_eq!(k.reports.len(), 2);
    let engine = Engine::new(Arc::new(k));

    let cells: BTreeSet<&str> = e.rows.iter().map(|r| r.1.as_str()).collect();
    for cell in cells {
        let question = format!("{cell}是谁");
        let answer = engine.ask(&question).text;
        let want: BTreeSet<String> = e
            .rows
            .iter()
            .filter(|r| r.1 == cell)
            .map(|r| format!("{} {}", r.2, r.3))
            .collect();
        assert_eq!(listed(&answer), want, "{name}: {question}\n{answer}");
        for other in e.rows.iter().filter(|r| r.1 != cell) {
            if want.iter().any(|w| w.ends_with(&format!(" {}", other.3))) {
                continue; // the same team won this cell too
            }
            assert!(
                !answer.contains(&other.3),
                "{name}: {question} names {} of {}\n{answer}",
                other.3,
                other.1
            );
        }
    }
}

#[test]
fn layout_classic_2022_style() {
    round_trip("2023-classic.txt");
}

#[test]
fn layout_inline_rows_under_numbered_group_sections() {
    round_trip("2023-inline-sections.txt");
}

#[test]
fn layout_numbered_headings_with_winner_then_institution() {
    round_trip("2023-numbered.txt");
}

#[test]
fn layout_text_table_aligned_with_spaces() {
    round_trip("2023-aligned.txt");
}

#[test]
fn layout_text_table_aligned_with_tabs() {
    round_trip("2023-tab-aligned.txt");
}

#[test]
fn layout_markdown_tables_under_section_headings() {
    round_trip("2023-markdown.md");
}

#[test]
fn layout_csv_with_header_in_another_order_and_date_from_options() {
    round_trip("2023-results.csv");
}

#[test]
fn layout_tab_separated_export_with_merged_cells() {
    round_trip("2023-excel-export.tsv");
}

#[test]
fn layout_html_news_page_list_in_paragraphs() {
    round_trip("2023-news-p.html");
}

#[test]
fn layout_html_traditional_cms_page_list_in_br_lines() {
    round_trip("2023-cms-traditional.htm");
}

#[test]
fn layout_html_table_with_merged_cells() {
    round_trip("2023-news-table.html");
}

#[test]
fn the_stored_source_of_a_page_is_its_article_text_and_the_page_is_kept() {
    let name = "2023-news-p.html";
    let html = read(&fixtures().join(name));
    let imported = import_report(&html, name).unwrap();
    assert_eq!(imported.format, Format::Html);
    assert_eq!(imported.meta.source, "2023-news-p.txt");
    let text = &imported.source_text;
    // Page furniture is not article text; entities are decoded.
    for absent in [
        "首页",
        "2022年大赛获奖名单",
        "版权所有",
        "统计代码",
        "分享到",
        "&nbsp;",
        "<p>",
    ] {
        assert!(!text.contains(absent), "{absent:?} in\n{text}");
    }
    assert!(text.starts_with("2023浙江银行业保险业数字化改革数据应用创新大赛举行\n"));
    assert!(text.contains(
        "\n团体二等奖：人保财险浙江省分公司 人保“数智风控”队；平安产险浙江分公司 平安智赔先锋队\n"
    ));
    // Every row's line names it, as the loader checks.
    let lines: Vec<&str> = text.lines().collect();
    for a in &imported.awards {
        let line = lines[a.line - 1].replace(' ', "");
        assert!(
            line.contains(&a.institution) && line.contains(&a.winner),
            "{a:?}"
        );
    }
    let out = tempfile::tempdir().unwrap();
    let written = write_report(&imported, out.path()).unwrap();
    assert_eq!(written.files.len(), 4);
    assert_eq!(
        read(&out.path().join("sources/2023-news-p.html")),
        html,
        "the page is kept as given"
    );
    assert_eq!(read(&out.path().join("sources/2023-news-p.txt")), *text);
    // A row that is not on its line in the stored text does not load.
    let awards = out.path().join("reports/2023-zhejiang/awards.json");
    let forged = read(&awards).replace("\"陈思远\", \"line\": 9", "\"陈思远\", \"line\": 8");
    std::fs::write(&awards, forged).unwrap();
    let err = Knowledge::load_dir(out.path()).unwrap_err().to_string();
    assert!(err.contains("does not name 浙商银行 陈思远"), "{err}");
}

#[test]
fn layout_new_prizes_under_group_sections() {
    round_trip("2023-new-prizes.txt");
}

#[test]
fn layout_html_table_with_a_grand_prize_and_a_best_creativity_award() {
    round_trip("2023-grand-prize.html");
}

/// The 2022 report and the 2023 page with a 特等奖 and a 最佳创意奖, loaded.
fn engine_with_new_prizes() -> (Engine, tempfile::TempDir) {
    let name = "2023-grand-prize.html";
    let imported = import_report(&read(&fixtures().join(name)), name).unwrap();
    let out = data_dir_with_2022();
    write_report(&imported, out.path()).unwrap();
    let k = Knowledge::load_dir(out.path()).unwrap();
    (Engine::new(Arc::new(k)), out)
}

#[test]
fn new_prizes_are_declared_in_prizes_json_never_mapped_to_other_prizes() {
    let name = "2023-new-prizes.txt";
    let imported = import_report(&read(&fixtures().join(name)), name).unwrap();
    assert!(imported.problems.is_empty(), "{}", imported.summary);
    // 特等奖 is not 一等奖, 优秀奖 is not 优胜奖 (the lexicon's reading for questions).
    let levels: Vec<&str> = imported.awards.iter().map(|a| a.level.name()).collect();
    assert_eq!(
        levels,
        [
            "grand",
            "first",
            "first",
            "first",
            "best_creativity",
            "merit",
            "most_popular"
        ]
    );
    assert_eq!(
        imported.prizes_json().unwrap().as_deref(),
        Some(concat!(
            "[\n",
            r#"  {"id":"grand","zh":"特等奖","en":"Grand Prize","above":"first","by_group":true,"by_kind":true,"aliases":["特等","special prize"]},"#,
            "\n",
            r#"  {"id":"best_creativity","zh":"最佳创意奖","en":"Best Creativity Award","by_group":false,"by_kind":false,"aliases":["最佳创意","创意奖","most creative"]},"#,
            "\n",
            r#"  {"id":"merit","zh":"优秀奖","en":"Merit Award","below":"third","by_group":true,"by_kind":true,"aliases":[]}"#,
            "\n]\n"
        ))
    );
    let summary = imported.summary.to_string();
    assert!(
        summary.contains("3 prizes beyond the standard five (written to prizes.json):\n  特等奖 `grand` \"Grand Prize\": ranks above 一等奖; by group and 团体/个人\n"),
        "{summary}"
    );
    let out = tempfile::tempdir().unwrap();
    let written = write_report(&imported, out.path()).unwrap();
    assert_eq!(
        written.files[2].path,
        out.path().join("reports/2023-zhejiang/prizes.json")
    );
    let k = Knowledge::load_dir(out.path()).unwrap();
    assert_eq!(k.newest().levels.declared().len(), 3);

    // A page without new prizes writes no prizes.json.
    let plain = import_report(&text_2099(), SOURCE_2099).unwrap();
    assert_eq!(plain.prizes_json().unwrap(), None);
}

#[test]
fn the_bot_answers_new_prizes_and_ranks_them_by_their_declared_rank() {
    let (engine, _dir) = engine_with_new_prizes();
    let ask = |q: &str| engine.ask(q).text;

    let a = ask("特等奖是谁");
    assert_eq!(
        listed(&a),
        BTreeSet::from([
            "浙商银行 数智先锋队".to_string(),
            "中国人寿浙江省分公司 国寿数智领航队".to_string(),
            "宁波银行 欧阳文杰".to_string(),
        ]),
        "{a}"
    );
    assert!(a.contains("团体特等奖(银行机构组)"), "{a}");
    for other in ["杭银数据队", "沈嘉怡", "温银数字化先锋队"] {
        assert!(!a.contains(other), "{other} in\n{a}");
    }
    let a = ask("最佳创意奖给了谁");
    assert_eq!(
        listed(&a),
        BTreeSet::from(["温州银行 温银数字化先锋队".to_string()]),
        "{a}"
    );
    let a = ask("Who won the grand prize in the banking group?");
    assert!(a.contains("Team Grand Prize (Banking group)"), "{a}");
    assert!(
        a.contains("数智先锋队") && !a.contains("国寿数智领航队"),
        "{a}"
    );

    // The 2022 report has no 特等奖: it says so, and names nobody.
    let a = ask("2022年特等奖是谁");
    assert!(a.starts_with("报道中没有“特等奖”这个奖项。"), "{a}");
    assert!(a.contains("最佳人气奖"), "{a}");
    for name in ["数智先锋队", "工银浙里队", "李彬"] {
        assert!(!a.contains(name), "{name} in\n{a}");
    }

    // Ranked by the declaration: 特等奖 above 一等奖; a standalone award last.
    let a = ask("数智先锋队和杭银数据队谁的奖更好");
    assert!(a.lines().next().unwrap_or("").contains("数智先锋队"), "{a}");
    let a = ask("欧阳文杰和沈嘉怡谁的奖更好");
    assert!(a.lines().next().unwrap_or("").contains("欧阳文杰"), "{a}");
    let a = ask("温银数字化先锋队和甬数智汇队谁的奖更好");
    assert!(
        !a.starts_with("一样"),
        "two standalone awards are not the same:\n{a}"
    );

    // "还有呢" after the 特等奖 list: the next rank, the 一等奖.
    let mut ctx = reportbot::Context::default();
    engine.converse(&mut ctx, "团体特等奖(银行机构组)是谁");
    let a = engine.converse(&mut ctx, "还有呢").text;
    assert!(a.contains("杭银数据队") && a.contains("团体一等奖"), "{a}");

    // The prize list after "no such prize" shows the new prizes of the new report.
    let a = ask("金奖是谁");
    assert!(a.contains("特等奖") && a.contains("最佳创意奖"), "{a}");
}

#[test]
fn a_broken_prize_declaration_names_its_file_line_and_field() {
    let (_, dir) = engine_with_new_prizes();
    let prizes = dir.path().join("reports/2023-zhejiang/prizes.json");
    let good = read(&prizes);
    let load_err = || Knowledge::load_dir(dir.path()).unwrap_err().to_string();

    std::fs::write(
        &prizes,
        good.replace(r#""above":"first""#, r#""above":"most_popular""#),
    )
    .unwrap();
    let err = load_err();
    assert!(
        err.ends_with(r#"prizes.json: line 2 (prize "grand") field `above`: "most_popular" is a standalone award, not a rank"#),
        "{err}"
    );
    std::fs::write(
        &prizes,
        good.replace(r#""zh":"最佳创意奖""#, r#""zh":"最佳人气奖""#),
    )
    .unwrap();
    let err = load_err();
    assert!(
        err.contains(r#"prizes.json: line 3 (prize "best_creativity") field `zh`"#),
        "{err}"
    );
    std::fs::write(&prizes, good.replace(r#""id":"grand""#, r#""id":"Grand""#)).unwrap();
    let err = load_err();
    assert!(err.contains("prizes.json:2:"), "{err}");

    // An award row may only name a declared or a standard prize.
    std::fs::remove_file(&prizes).unwrap();
    let err = load_err();
    assert!(
        err.contains("awards.json: line 2 (award #1) field `level`: prize \"grand\" is not declared in prizes.json"),
        "{err}"
    );
    // One id is one prize in every report.
    std::fs::write(&prizes, &good).unwrap();
    Knowledge::load_dir(dir.path()).expect("loads again");
}

#[test]
fn options_set_what_the_page_does_not_state_or_override_it() {
    let name = "2023-results.csv";
    let text = read(&fixtures().join(name));
    // A CSV states no final: the importer says what to pass.
    let err = import_report(&text, name).unwrap_err().to_string();
    assert!(err.contains("date and city of the final"), "{err}");
    let options = ImportOptions {
        final_date: Some("2023-11-21".into()),
        city: Some("宁波".into()),
        year: Some(2023),
        ..ImportOptions::default()
    };
    let imported = import_report_with(&text, name, &options).unwrap();
    assert_eq!(
        (
            imported.meta.final_date.as_str(),
            imported.meta.city.as_str()
        ),
        ("2023-11-21", "宁波")
    );
    // Given values win over the page's.
    let page = read(&fixtures().join("2023-classic.txt"));
    let imported = import_report_with(
        &page,
        "2023-classic.txt",
        &ImportOptions {
            city: Some("宁波".into()),
            ..ImportOptions::default()
        },
    )
    .unwrap();
    assert_eq!(imported.meta.city, "宁波");
    assert_eq!(imported.meta.final_date, "2023-11-21");
    for (options, what) in [
        (
            ImportOptions {
                final_date: Some("2023-02-30".into()),
                ..ImportOptions::default()
            },
            "date",
        ),
        (
            ImportOptions {
                contest: Some("2023某某大赛".into()),
                ..ImportOptions::default()
            },
            "contest",
        ),
    ] {
        let err = import_report_with(&page, "2023-classic.txt", &options).unwrap_err();
        assert!(
            matches!(err, ImportError::InvalidOption { .. }) && err.to_string().contains(what),
            "{err}"
        );
    }
    // A table without the contest's name anywhere cannot be a report: the
    // loader checks that the text names its contest.
    let bare: String = text.lines().skip(1).collect::<Vec<_>>().join("\n");
    let err = import_report_with(&bare, "bare.csv", &options).unwrap_err();
    assert!(err.to_string().contains("contest name"), "{err}");
}

fn reportbot(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_reportbot"))
        .args(args)
        .env_remove("REPORTBOT_DATA")
        .env_remove("REPORTBOT_CONFIG")
        .output()
        .expect("run reportbot")
}

#[test]
fn the_command_prints_the_summary_and_writes_only_when_asked() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let page = fixtures().join("2023-news-table.html");
    let page = page.to_str().unwrap();

    // --dry-run: the summary, nothing written.
    let run = reportbot(&["import", page, "--out", dir, "--dry-run"]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("final 2023-11-21 in 杭州; read as HTML"),
        "{stdout}"
    );
    assert!(
        stdout.contains("银行机构组\n  团体一等奖 (1 row)\n    line 6: 浙商银行 | 数智先锋队"),
        "{stdout}"
    );
    assert!(stdout.contains("dry run: nothing was written"), "{stdout}");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);

    // Problems: listed with their lines, nothing written, a non-zero exit.
    // TEST DATA: line 7 has a prize without 团体 or 个人.
    let pages = tempfile::tempdir().unwrap();
    let broken = pages.path().join("2099-broken.txt");
    std::fs::write(
        &broken,
        "2099浙江测试大赛顺利举办\n荣誉榜\n团体一等奖(银行机构组)\n测试银行 测试队\n最佳人气奖\n测试银行 测试队\n一等奖(保险机构组)\n测试保险 测试保险队\n11月5日,2099浙江测试大赛在宁波举行。\n",
    )
    .unwrap();
    let broken = broken.to_str().unwrap();
    let run = reportbot(&["import", broken, "--out", dir]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stdout.contains("line 7: 一等奖(保险机构组) — 一等奖 without 团体 or 个人"),
        "{stdout}"
    );
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);

    // --allow-problems writes the rest; the directory loads.
    let run = reportbot(&["import", broken, "--out", dir, "--allow-problems"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let k = Knowledge::load_dir(out.path()).unwrap();
    assert_eq!(k.newest().awards.len(), 2);

    // New prizes: declared and written; --prizes gives what the page does not say.
    let out3 = tempfile::tempdir().unwrap();
    let own = pages.path().join("prizes.json");
    std::fs::write(
        &own,
        "[\n  {\"id\": \"special\", \"zh\": \"特等奖\", \"en\": \"Special Prize\", \"above\": \"first\"}\n]\n",
    )
    .unwrap();
    let new = fixtures().join("2023-new-prizes.txt");
    let run = reportbot(&[
        "import",
        new.to_str().unwrap(),
        "--out",
        out3.path().to_str().unwrap(),
        "--prizes",
        own.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("特等奖 `special` \"Special Prize\""),
        "{stdout}"
    );
    let k = Knowledge::load_dir(out3.path()).unwrap();
    assert_eq!(k.newest().awards[0].level.name(), "special");

    // The date and city can be given for a table that does not state them.
    let csv = fixtures().join("2023-results.csv");
    let out2 = tempfile::tempdir().unwrap();
    let run = reportbot(&[
        "import",
        csv.to_str().unwrap(),
        "--out",
        out2.path().to_str().unwrap(),
        "--date",
        "2023-11-21",
        "--city",
        "杭州",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let k = Knowledge::load_dir(out2.path()).unwrap();
    assert_eq!(k.newest().meta.final_date, "2023-11-21");
}
