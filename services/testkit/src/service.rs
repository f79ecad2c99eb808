//! A service running inside the test process until the test stops it: the
//! task and its cancellation token, and a stop that insists the service
//! drains and returns `Ok` in time (a hung or failing shutdown fails the test).

use std::future::Future;
use std::time::Duration;

use mamochi_common::shutdown::Shutdown;
use tokio::task::JoinHandle;

/// How long a service gets to drain and return after its token is cancelled.
const STOP_WITHIN: Duration = Duration::from_secs(60);

/// A service task and the token that stops it.
#[derive(Debug)]
pub struct InProcess {
    pub shutdown: Shutdown,
    task: JoinHandle<anyhow::Result<()>>,
}

impl InProcess {
    /// Spawns `run(token)` on the test's runtime.
    pub fn spawn<F, Fut>(run: F) -> Self
    where
        F: FnOnce(Shutdown) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let shutdown = Shutdown::new();
        let task = tokio::spawn(run(shutdown.clone()));
        Self { shutdown, task }
    }

    /// The service has not returned (it neither failed nor stopped).
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// Cancels the token and waits: the service must stop cleanly, in time.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.join().await.expect("service returns Ok after shutdown");
    }

    /// Ends the task at once, as a crash would: nothing drains or commits.
    pub async fn abort(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    /// Waits for the task to end (without cancelling it) and returns what
    /// the service returned; panics if it does not end in time or panicked.
    pub async fn join(self) -> anyhow::Result<()> {
        tokio::time::timeout(STOP_WITHIN, self.task)
            .await
            .expect("service stops in time")
            .expect("service task did not panic")
    }
}
