//! A request's own connection, which a fault may close mid-request.

use std::sync::Arc;

use tokio::sync::Notify;

/// Lets a request's handler close the connection it arrived on.
#[derive(Clone)]
pub(crate) struct ConnectionKiller(Arc<Notify>);

impl ConnectionKiller {
    pub(crate) fn new() -> ConnectionKiller {
        ConnectionKiller(Arc::new(Notify::new()))
    }

    pub(crate) fn kill(&self) {
        self.0.notify_one();
    }

    /// Resolves when a handler asked for the connection to be closed.
    pub(crate) async fn notified(&self) {
        self.0.notified().await;
    }
}
