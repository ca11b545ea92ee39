//! The shipped data against the report text: every name and number is in
//! the source, the counts per prize are right, nothing of the 荣誉榜 is missing.

use reportbot::knowledge::{Group, Kind, Knowledge, Level};
use std::collections::BTreeMap;

const SOURCE: &str = include_str!("../data/sources/2022-11-zhejiang-banking-insurance-news.txt");

fn knowledge() -> Knowledge {
    Knowledge::builtin().expect("the built-in data loads and validates")
}

#[test]
fn counts_per_prize_match_the_award_list() {
    let k = knowledge();
    let r = k.newest();
    let mut counts: BTreeMap<(Option<Group>, Kind, Level), usize> = BTreeMap::new();
    for a in &r.awards {
        *counts.entry((a.group, a.kind, a.level)).or_default() += 1;
    }
    for group in Group::ALL {
        for kind in Kind::ALL {
            for (level, n) in [
                (Level::First, 1),
                (Level::Second, 2),
                (Level::Third, 3),
                (Level::Excellence, 4),
            ] {
                assert_eq!(
                    counts.get(&(Some(group), kind, level)),
                    Some(&n),
                    "{group:?} {kind:?} {level:?}"
                );
            }
        }
    }
    assert_eq!(
        counts.get(&(None, Kind::Team, Level::MostPopular)),
        Some(&2)
    );
    assert_eq!(r.awards.len(), 42);
}

#[test]
fn every_row_of_the_award_list_is_in_the_data() {
    let k = knowledge();
    let r = k.newest();
    let lines: Vec<&str> = SOURCE.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == "荣誉榜")
        .expect("荣誉榜")
        + 1;
    let end = lines
        .iter()
        .position(|l| l.starts_with("王军表示"))
        .expect("end of list");
    let mut rows = 0;
    for (i, line) in lines.iter().enumerate().take(end).skip(start) {
        let line = line.trim();
        let heading = line.ends_with("机构组)") || line == "最佳人气奖";
        if line.is_empty() || heading {
            continue;
        }
        rows += 1;
        let n = i + 1;
        let a = r
            .awards
            .iter()
            .find(|a| a.line == n)
            .unwrap_or_else(|| panic!("line {n} {line:?} is missing"));
        assert!(
            line.contains(&a.institution) && line.contains(&a.winner),
            "line {n}: {line:?} vs {a:?}"
        );
    }
    assert_eq!(rows, r.awards.len(), "no row invented");
    // The row after the blank line inside 团体优胜奖(银行机构组).
    let dumpling = r
        .awards
        .iter()
        .find(|a| a.winner == "交通银行浙江省分行饺子队")
        .unwrap();
    assert_eq!(
        (dumpling.group, dumpling.kind, dumpling.level),
        (Some(Group::Bank), Kind::Team, Level::Excellence)
    );
}

#[test]
fn facts_tips_and_cases_quote_the_report() {
    let k = knowledge();
    let r = k.newest();
    assert!(r.facts.len() >= 30, "facts: {}", r.facts.len());
    for f in &r.facts {
        for e in &f.evidence {
            assert!(SOURCE.contains(e.as_str()), "fact {}: {e}", f.id);
        }
        for v in &f.values {
            assert!(
                f.evidence.iter().any(|e| e.contains(v.as_str())),
                "fact {}: value {v}",
                f.id
            );
        }
    }
    let af = &r.antifraud;
    for topic in [
        "courier",
        "verification_code",
        "screen_sharing",
        "frozen_account",
        "card_lending",
        "after_scam",
        "general",
    ] {
        assert!(
            af.tips.iter().filter(|t| t.topic == topic).count() >= 2,
            "tips for {topic}"
        );
    }
    for t in &af.tips {
        assert!(SOURCE.contains(t.evidence.as_str()), "tip {}", t.id);
    }
    assert_eq!(af.cases.len(), 2);
    for c in &af.cases {
        for e in &c.evidence {
            assert!(SOURCE.contains(e.as_str()), "case {}", c.id);
        }
    }
}

#[test]
fn contest_facts_are_the_reports_numbers() {
    let k = knowledge();
    let m = &k.newest().meta;
    assert_eq!(
        (m.year, m.final_date.as_str(), m.city.as_str()),
        (2022, "2022-11-22", "杭州")
    );
    assert_eq!(
        (m.teams, m.participants, m.finalists),
        (Some(66), Some(307), Some(20))
    );
    for needle in [
        "66个团队",
        "307位参赛选手",
        "20个团队",
        "11月22日",
        "在杭州举行",
        "2.7亿次",
        "5.8万亿元",
        "821.3万次",
        "57个部门",
    ] {
        assert!(SOURCE.contains(needle), "{needle}");
    }
}

#[test]
fn aliases_name_institutions_of_the_award_list() {
    let k = knowledge();
    let winners: Vec<&str> = k
        .newest()
        .awards
        .iter()
        .map(|a| a.institution.as_str())
        .collect();
    for inst in &k.institutions {
        assert!(
            winners.contains(&inst.name.as_str()),
            "{} is not in the award list",
            inst.name
        );
        assert!(!inst.aliases.is_empty(), "{} has no alias", inst.name);
    }
    for team in k.team_aliases.keys() {
        assert!(
            k.newest().awards.iter().any(|a| &a.winner == team),
            "{team}"
        );
    }
}
