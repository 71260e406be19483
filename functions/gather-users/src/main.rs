//! Lambda function for the `gather-users` stage; the stage itself is `zdsync::stages`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    zdsync::lambda::serve(zdsync::stages::Stage::GatherUsers).await
}
