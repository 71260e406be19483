//! Lambda function for the `gather-users` stage; the stage itself is `zdsync::stages`.

// mimalloc: the stages allocate many small strings and maps (docs/BENCHMARKS.md has its effect).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    zdsync::lambda::serve(zdsync::stages::Stage::GatherUsers).await
}
