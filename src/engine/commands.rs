//! `/cmd[@bot] args` typed as text behaves like the command (the Telegram
//! transport routes real commands here too, so both read alike).

use super::Engine;
use super::answer::{Intent, PrizeFilter, Reply};
use super::context::Turn;
use super::resolve::Decision;
use super::understand::parse;
use std::time::Instant;

impl Engine {
    pub(super) fn command(
        &self,
        message: &str,
        prev: Option<&Turn>,
        now: Instant,
    ) -> Option<Decision> {
        let text = message.trim_start();
        let rest = text.strip_prefix('/').or_else(|| text.strip_prefix('／'))?;
        let (head, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let name = head.split('@').next().unwrap_or("").to_ascii_lowercase();
        let args = args.trim();
        let plain = |r: Reply, i: Intent| Some(Decision::plain(r, i));
        match name.as_str() {
            "start" => match args {
                "tips" | "antifraud" => plain(self.tips(None, false), Intent::Tips),
                "awards" => plain(self.winners(0, PrizeFilter::default()), Intent::Awards),
                "subscribe" => plain(Reply::Subscribe, Intent::Subscribe),
                _ => plain(Reply::Welcome, Intent::Start),
            },
            "help" => plain(Reply::Help, Intent::Help),
            "about" => plain(Reply::About, Intent::About),
            "reports" => plain(Reply::Reports, Intent::Reports),
            "awards" => plain(self.winners(0, PrizeFilter::default()), Intent::Awards),
            "subscribe" => plain(Reply::Subscribe, Intent::Subscribe),
            "unsubscribe" => plain(Reply::Unsubscribe, Intent::Unsubscribe),
            "tips" => {
                let p = parse(&self.index, args);
                let topic = self.best_topic(&p).map(|(t, _)| t);
                let after = p.cue(super::index::Cue::AfterScam);
                plain(self.tips(topic.as_deref(), after), Intent::Tips)
            }
            "winner" | "who" | "ask" => {
                if args.is_empty() {
                    return plain(Reply::Help, Intent::Help);
                }
                let p = parse(&self.index, args);
                // A bare name after /winner is a lookup even without "获得".
                let report = self.report_for(&p);
                let d = match prev.and_then(|t| self.follow_up(&p, t, now, report)) {
                    Some(d) => d,
                    None => self.fresh(&p, now, report),
                };
                if d.intent == Intent::Fallback
                    && let Some(name) = p.unknown_name.clone()
                {
                    return plain(Reply::NotFound { name }, Intent::NotFound);
                }
                Some(d)
            }
            _ => plain(Reply::Help, Intent::Help),
        }
    }
}
