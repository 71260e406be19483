//! Lambda function for the `gather-contacts` stage; the stage itself is `zdsync::stages`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    zdsync::lambda::serve(zdsync::stages::Stage::GatherContacts).await
}
