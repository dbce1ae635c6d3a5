//! One outbound Redis connection per address for the life of the component instance.
//!
//! Spin gives an HTTP component a fresh instance per request, and every
//! `spin_sdk::redis::Connection::open` is a new TCP connection (a multiplexed client per
//! resource). A cart request makes a dozen store and lock calls, so they share one connection
//! per address instead of opening one each; the instance's end closes it.

use std::cell::RefCell;
use std::rc::Rc;

use spin_sdk::redis::{Connection, Error};

thread_local! {
    /// Open connections by address. One or two entries at most (store, a separate lock Redis).
    static OPEN: RefCell<Vec<(String, Rc<Connection>)>> = const { RefCell::new(Vec::new()) };
}

/// The open connection to `url`, opened on first use.
pub fn connection(url: &str) -> Result<Rc<Connection>, Error> {
    if let Some(open) = OPEN.with(|open| {
        open.borrow()
            .iter()
            .find(|(address, _)| address == url)
            .map(|(_, conn)| conn.clone())
    }) {
        return Ok(open);
    }
    let conn = Rc::new(Connection::open(url)?);
    OPEN.with(|open| open.borrow_mut().push((url.to_owned(), conn.clone())));
    Ok(conn)
}

/// Forgets the connection to `url` after a failure, so the next call reconnects instead of
/// reusing a broken one.
pub fn forget(url: &str) {
    OPEN.with(|open| open.borrow_mut().retain(|(address, _)| address != url));
}

/// Runs one command on the shared connection to `url`; a failed command drops the connection.
pub fn execute(
    url: &str,
    command: &str,
    arguments: &[spin_sdk::redis::RedisParameter],
) -> Result<Vec<spin_sdk::redis::RedisResult>, Error> {
    let conn = connection(url)?;
    let reply = conn.execute(command, arguments);
    if let Err(Error::Other(_)) = &reply {
        // Could be a server error reply on a healthy connection as well; reconnecting then
        // costs one connect and is harmless.
        forget(url);
    }
    reply
}

/// Describes a failure without echoing the URL (it may carry a password).
pub fn describe(error: &Error) -> String {
    match error {
        Error::InvalidAddress => {
            "not a valid Redis address, or not in allowed_outbound_hosts".to_owned()
        }
        Error::TooManyConnections => "too many connections".to_owned(),
        Error::TypeError => "type error".to_owned(),
        Error::Other(text) => text.clone(),
    }
}
