//! The stages of a run (SPEC §2): each reads artifacts, applies `rules`, calls the APIs it needs
//! and writes its artifacts. Lambda binaries, the local executor and tests all call [`run`]; only
//! the way the [`StageContext`] is built differs.
//!
//! Inputs and outputs are small JSON objects (ids, dates, keys and counts): Step Functions caps a
//! payload at 256 KB, and the data lives in the artifact store.

pub mod artifacts;
mod compare;
mod context;
mod gather_accounts;
mod gather_contacts;
mod gather_orgs;
mod gather_users;
mod guard;
mod input;
mod io;
mod page_worker;
pub(crate) mod process;
pub mod report;
mod runner;
mod salesforce_feeds;
mod snapshots;
mod stats;
pub mod summarize;
mod sync;
mod table;

pub use context::{Executions, HowItEnded, RunningExecution, StageContext};
pub use guard::{GuardInput, GuardOutput, RunOptions};
pub use input::{ExecutionContext, RunInput, StageOutput};
pub use io::allow_deletions;
pub use runner::{run, run_measured};
pub use stats::StageStats;
pub use summarize::latest_run;
pub use table::{Needs, Stage};
