//! A real (small) SOQL implementation: lexer → parser → check against the org's describe →
//! evaluation over the fixture's records. Queries are never matched as whole strings, so any
//! query in the grammar of [`parser`] behaves as Salesforce would, within the documented
//! subset.

pub mod ast;
pub mod describe;
pub mod error;
pub mod eval;
pub mod lexer;
pub mod parser;

pub use error::{Position, SoqlError};
pub use eval::{ChildRows, CompiledQuery, ResultRow, compile};

#[cfg(test)]
mod tests;
