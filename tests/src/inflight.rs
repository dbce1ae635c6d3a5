//! Counting component instances still running. A component may keep working after its
//! response is complete (the cart's outbox relay does, as Spin allows); tests that inspect
//! stores afterwards wait for that work with `wait_idle`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

#[derive(Default)]
pub struct InFlight {
    running: AtomicUsize,
    idle: Notify,
}

/// Held by a running instance's task; dropping it marks the instance finished.
pub struct Running(Arc<InFlight>);

impl InFlight {
    pub fn start(self: &Arc<Self>) -> Running {
        self.running.fetch_add(1, Ordering::SeqCst);
        Running(self.clone())
    }

    pub fn count(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Resolves once no instance is running; panics (failing the test with a message) if
    /// instances are still running after 60 s, rather than hanging the whole run.
    pub async fn wait_idle(&self) {
        let limit = std::time::Duration::from_secs(60);
        if tokio::time::timeout(limit, self.wait_idle_unbounded())
            .await
            .is_err()
        {
            panic!(
                "{} component instance(s) still running after {limit:?}: after-response work hangs",
                self.count()
            );
        }
    }

    async fn wait_idle_unbounded(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Register before checking, so a finish between the check and the await is seen.
            notified.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
