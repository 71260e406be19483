//! The `zdsync` command's library: the local Step Functions executor and (as they land) the
//! local run, redrive and sandbox commands. `main.rs` only parses arguments.

pub mod asl;
