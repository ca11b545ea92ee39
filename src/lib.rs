//! # reportbot
//!
//! A Telegram bot that answers people's questions about published reports:
//! who won which prize, what a person, team or institution won, facts about the
//! contest, and anti-fraud tips for elderly relatives.
//!
//! Data flows one way, one module per step:
//!
//! - [`knowledge`]: `data/` → typed, validated knowledge (every fact checked
//!   against the report text while loading).
//! - [`engine`]: a message → its clauses → parsed (cues, names, claims) → an
//!   [`engine::Query`] (operator, subject, filter, claims) → executed → an
//!   [`engine::Answer`] (verdict, [`engine::Reply`], notices); conversation
//!   context is a value passed in and out (and encoded for the store).
//! - [`render`]: a reply → Telegram HTML or plain text.
//! - transports: [`cli`] (`reportbot ask`, `reportbot chat`, `announce`,
//!   `import`, `tips-card`, `webhook`) and [`telegram`] (long polling or
//!   webhook, keyboards, inline mode, flood protection).
//! - [`card`]: large-print tips pictures; [`markup`]: checked Telegram HTML;
//!   [`import`]: published pages → data files.
//! - [`store`]: subscribers, announcements and the delivery outbox (SQLite,
//!   or PostgreSQL for several instances).
//! - [`broadcast`]: the paced, crash-safe delivery worker.
//! - [`config`] and [`telemetry`]: settings in one typed struct, logging set
//!   up in one place; [`metrics`]: what is counted, in one place.
//! - [`http`]: the HTTP server — `/healthz`, `/readyz`, `/metrics`, and in
//!   webhook mode the endpoint Telegram posts updates to.

pub mod broadcast;
pub mod card;
pub mod cli;
pub mod config;
pub mod engine;
pub mod http;
pub mod import;
pub mod knowledge;
pub mod markup;
pub mod metrics;
pub mod publish;
pub mod render;
pub mod store;
pub mod telegram;
pub mod telemetry;

pub use engine::{Context, Engine};
pub use render::Answered;
