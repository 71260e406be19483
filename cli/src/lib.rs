//! The `zdsync` command's library: the local Step Functions executor, the local run / redrive /
//! stage commands, and the sandbox server command. `main.rs` only parses arguments.

pub mod asl;
pub mod cloud;
pub mod local;
pub mod report;
pub mod sandbox_cmd;
