//! `zdsync`: the operator command. Subcommands arrive with the stages (local run, redrive,
//! one stage, sandbox); until then it only reports its version.
fn main() {
    println!("zdsync {}", env!("CARGO_PKG_VERSION"));
}
