//! Shared helpers for end-to-end tests and benchmarks.
//!
//! Include with `mod support;` from a file in `tests/` (or
//! `#[path = "../tests/support/mod.rs"] mod support;` from `benches/`).
#![allow(dead_code)]

pub mod app;
pub mod botapi;
pub mod e2e;
pub mod html;
pub mod pg;
pub mod process;
