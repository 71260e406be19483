//! Work on a full read's pages beside the reading: page n is encoded on a thread of its own
//! while page n + 1 is fetched, so the server's time and the stage's add up to the larger of
//! the two rather than their sum (a full read of 200 000 accounts or organizations is over a
//! thousand pages, each waited for and then worked on).

use std::sync::mpsc::{SyncSender, sync_channel};

use tokio::task::JoinHandle;

use crate::error::StageError;

/// Pages handed, in order, to a thread that folds them into a `T`.
pub(super) struct PageWorker<P, T, E> {
    pages: SyncSender<P>,
    done: JoinHandle<Result<T, E>>,
}

impl<P, T, E> PageWorker<P, T, E>
where
    P: Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    /// Starts the thread: `work` folds each page into `state`; the first error stops it.
    pub fn start(
        mut state: T,
        mut work: impl FnMut(&mut T, P) -> Result<(), E> + Send + 'static,
    ) -> Self {
        // One page waits while one is worked on: the reader runs a page ahead, no more, so a
        // worker slower than the reads holds them back instead of pages piling up in memory.
        let (pages, received) = sync_channel::<P>(1);
        let done = tokio::task::spawn_blocking(move || {
            for page in received {
                work(&mut state, page)?;
            }
            Ok(state)
        });
        PageWorker { pages, done }
    }

    /// Hands a page over (waiting while the worker is a page behind); `false` once the worker
    /// has stopped on an error, which [`PageWorker::finish`] answers.
    pub fn send(&self, page: P) -> bool {
        self.pages.send(page).is_ok()
    }

    /// [`PageWorker::send`] for a reader that stops on an error: the error it stops with is
    /// never the one reported ([`finished`] answers the worker's).
    pub fn hand_over(&self, page: P) -> Result<(), StageError> {
        if self.send(page) {
            Ok(())
        } else {
            Err(StageError::Retryable("the page worker stopped".into()))
        }
    }

    /// What the worker made of every page sent, once it has worked on the last.
    pub async fn finish(self) -> Result<T, E> {
        drop(self.pages);
        match self.done.await {
            Ok(result) => result,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(err) => panic!("the page worker was cancelled: {err}"),
        }
    }
}

/// The outcome of a read whose pages went to a worker: the worker's error first (the read
/// stops when the worker does, so its own error is then only that), else the read's, else what
/// the worker made.
pub(super) async fn finished<P, T, E>(
    worker: PageWorker<P, T, E>,
    read: Result<(), E>,
) -> Result<T, E>
where
    P: Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let made = worker.finish().await?;
    read.map(|()| made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pages_are_folded_in_order_and_the_first_error_stops_the_worker() {
        let worker = PageWorker::start(Vec::new(), |seen: &mut Vec<u32>, page: Vec<u32>| {
            seen.extend(page);
            Ok::<(), String>(())
        });
        for page in [vec![1, 2], vec![3], vec![], vec![4, 5]] {
            assert!(worker.send(page));
        }
        assert_eq!(finished(worker, Ok(())).await.unwrap(), [1, 2, 3, 4, 5]);

        let worker = PageWorker::start(0, |sum: &mut u32, page: u32| {
            if page == 3 {
                return Err(format!("page {page} is bad"));
            }
            *sum += page;
            Ok(())
        });
        let mut sent = 0;
        for page in 1..100 {
            if !worker.send(page) {
                break;
            }
            sent += 1;
        }
        assert!(sent < 99, "the reader stops once the worker has");
        let stopped = Err("the read stopped: the worker did".to_owned());
        assert_eq!(
            finished(worker, stopped).await.unwrap_err(),
            "page 3 is bad"
        );

        let worker = PageWorker::start(0, |sum: &mut u32, page: u32| {
            *sum += page;
            Ok::<(), String>(())
        });
        assert!(worker.send(1));
        let failed = Err("503 from the server".to_owned());
        assert_eq!(
            finished(worker, failed).await.unwrap_err(),
            "503 from the server"
        );
    }
}
