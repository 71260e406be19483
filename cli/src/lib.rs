//! The `zdsync` command's library: the local Step Functions executor, the local run / redrive /
//! stage commands, reading a finished run, the sandbox server command and the Lambda Invoke
//! proxy. `main.rs` only
//! parses arguments.

pub mod asl;
pub mod bench;
pub mod cloud;
pub mod lambda_proxy;
pub mod local;
pub mod report;
pub mod runs;
pub mod sandbox_cmd;
