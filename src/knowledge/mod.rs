//! Typed knowledge: the reports under `data/`, loaded and validated once.
//!
//! A data directory looks like this (the built-in one is `data/` of the crate,
//! compiled into the binary so it runs from any directory):
//!
//! ```text
//! institutions.json          institution names, English names and aliases
//! team_aliases.json          short names people type for teams (饺子队)
//! lexicon.json               the words that signal prizes, groups and intents
//! sources/<file>.txt         the published report texts
//! reports/<id>/report.json   the contest: name, year, final date, city
//! reports/<id>/awards.json   one row per award, with its source line
//! reports/<id>/prizes.json   prizes beyond the standard five (optional; see [`Levels`])
//! reports/<id>/facts.json    stated facts, each with verbatim evidence
//! reports/<id>/subjects.json what the facts are about, and the words for it
//! reports/<id>/texts.json    how the bot presents it: examples, a summary (optional)
//! reports/<id>/antifraud.json  scam topics, tips and cases (optional)
//! ```
//!
//! Every fact is checked against its report's text while loading, so a broken or
//! invented entry stops start-up with an error naming the file and the place.

mod levels;
mod lexicon;
mod load;
mod model;

pub use levels::{DeclError, Levels, PrizeDecl, PrizeId, STANDALONE};
pub use lexicon::{Lexicon, UnitClass};
pub use load::{DataError, read_prizes};
pub use model::*;

use std::collections::{BTreeMap, BTreeSet};

/// One published report and what was read out of it.
#[derive(Debug, Clone)]
pub struct Report {
    pub meta: ReportMeta,
    /// Its prize levels: the standard five and those its prizes.json declares.
    pub levels: Levels,
    pub awards: Vec<Award>,
    pub facts: Vec<Fact>,
    /// What the facts are about (subjects.json).
    pub subjects: Vec<Subject>,
    /// How the bot presents the report (texts.json).
    pub texts: ReportTexts,
    pub antifraud: AntiFraud,
    pub source_text: String,
}

impl Report {
    /// Prizes in the order of the award list.
    pub fn prizes(&self) -> Vec<Prize> {
        let mut seen = BTreeSet::new();
        self.awards
            .iter()
            .map(Award::prize)
            .filter(|p| seen.insert(*p))
            .collect()
    }

    /// Some row of the award list has this level.
    pub fn has_level(&self, level: Level) -> bool {
        self.awards.iter().any(|a| a.level == level)
    }
}

/// Everything the bot knows, validated.
#[derive(Debug, Clone)]
pub struct Knowledge {
    /// Newest contest first.
    pub reports: Vec<Report>,
    pub institutions: Vec<Institution>,
    /// Team name → short names people type for it.
    pub team_aliases: BTreeMap<String, Vec<String>>,
    pub lexicon: Lexicon,
    /// The prize levels of every report together (a declared id means the
    /// same prize in every report that declares it).
    pub levels: Levels,
}

impl Knowledge {
    /// The data compiled into the binary.
    pub fn builtin() -> Result<Self, DataError> {
        load::builtin()
    }

    /// Load every report under a data directory.
    pub fn load_dir(dir: &std::path::Path) -> Result<Self, DataError> {
        load::from_dir(dir)
    }

    /// The newest report (the one questions without a year are about).
    pub fn newest(&self) -> &Report {
        &self.reports[0]
    }

    /// Every person and team name in any award list.
    pub fn winner_names(&self) -> Vec<String> {
        let mut names: BTreeSet<String> = BTreeSet::new();
        for r in &self.reports {
            for a in &r.awards {
                names.insert(a.winner.clone());
            }
        }
        names.into_iter().collect()
    }

    pub fn institution(&self, name: &str) -> Option<&Institution> {
        self.institutions.iter().find(|i| i.name == name)
    }
}
