//! Work that can wait until the response has been sent (pruning superseded versions,
//! bookkeeping). Queued during the request, run by the handler after the response.

use std::cell::RefCell;

type Job = Box<dyn FnOnce()>;

thread_local! {
    static JOBS: RefCell<Vec<Job>> = RefCell::new(Vec::new());
}

/// Queues `job` to run after the response.
pub fn defer(job: impl FnOnce() + 'static) {
    JOBS.with(|jobs| jobs.borrow_mut().push(Box::new(job)));
}

/// Runs every queued job, in order.
pub fn run_all() {
    let jobs = JOBS.with(|jobs| std::mem::take(&mut *jobs.borrow_mut()));
    for job in jobs {
        job();
    }
}
