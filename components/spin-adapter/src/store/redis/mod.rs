//! Documents and records in Redis, shared by every instance that names the same `store_url`.
//!
//! Round trips per operation (each is one command or one atomic script):
//!
//! | operation          | Redis                                                   | round trips |
//! |--------------------|---------------------------------------------------------|-------------|
//! | `read-head`        | script: GET head, GET its body                          | 1           |
//! | `compare-and-swap` | script: check head, SET body, SET head, DEL old body    | 1           |
//! | `get`/`set`/`delete` | GET / SET / DEL                                       | 1           |
//! | `get-many`         | MGET (per key on a cluster's cross-slot refusal)        | 1 (cluster: keys) |
//! | `increment`        | INCRBY                                                  | 1           |
//! | `increment-many`   | script: INCRBY each (per hash slot on a cluster)        | 1 (cluster: 1 + slots) |
//! | `list-keys`        | SCAN MATCH prefix COUNT 1000 until `limit` or the end   | keyspace / 1000 |
//!
//! Versions are consecutive here: the script writes version `expected + 1` only while the
//! head is at `expected`, so a loser writes nothing and no version is spent or reused.
//! Layout: [`layout`]; scripts: [`scripts`].

mod layout;
mod reply;
mod scripts;
mod transport;
mod wire;

use std::collections::{BTreeMap, BTreeSet};

pub use transport::{Native, Rest, Transport};

use super::Store;
use crate::exports::storefront::cart::documents::{Document, StoreError, SwapError};
use reply::{Head, Swap};
use wire::{Arg, Command, CommandError, Reply};

/// Keys a `SCAN` call looks at (a hint to Redis; it bounds the work of one call).
const SCAN_COUNT: i64 = 1000;

pub struct RedisStore<T: Transport> {
    transport: T,
}

impl<T: Transport> RedisStore<T> {
    pub fn new(transport: T) -> Self {
        RedisStore { transport }
    }

    /// Runs a command, describing a failure as the contract's store error.
    fn run(&self, command: Command) -> Result<Vec<Reply>, StoreError> {
        let label = command.label;
        self.transport
            .execute(command)
            .map_err(|e| command_error(label, e))
    }

    /// Runs a command and reads its reply with `parse`.
    fn run_parsed<R>(
        &self,
        command: Command,
        parse: impl FnOnce(&[Reply]) -> Result<R, String>,
    ) -> Result<R, StoreError> {
        let label = command.label;
        let reply = self.run(command)?;
        parse(&reply).map_err(|e| StoreError::Unavailable(format!("redis store {label}: {e}")))
    }
}

impl<T: Transport> Store for RedisStore<T> {
    fn read_head(&self, key: &str) -> Result<Option<Document>, StoreError> {
        match self.run_parsed(scripts::read_head(key), reply::head)? {
            Head::Absent => Ok(None),
            Head::Present { version, body } => Ok(Some(Document { version, body })),
            Head::BodyMissing(version) => Err(StoreError::Unavailable(format!(
                "document {key}: head names version {version} but its body is missing"
            ))),
        }
    }

    fn compare_and_swap(&self, key: &str, expected: u64, body: &[u8]) -> Result<u64, SwapError> {
        let Some(next) = expected.checked_add(1) else {
            return Err(SwapError::Store(StoreError::Invalid(format!(
                "document {key}: no version after {expected}"
            ))));
        };
        let command = scripts::compare_and_swap(key, expected, next, body);
        match self
            .run_parsed(command, reply::swap)
            .map_err(SwapError::Store)?
        {
            Swap::Swapped(version) => Ok(version),
            Swap::Conflict(current) => Err(SwapError::Conflict(current)),
        }
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let get = Command::new("GET", vec![Arg::from(layout::kv_key(key))]);
        match self.run_parsed(get, reply::value)? {
            None => Ok(None),
            Some(stored) => layout::decode_stored(&stored)
                .map(Some)
                .map_err(|e| StoreError::Unavailable(format!("record {key}: {e}"))),
        }
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let args = vec![
            Arg::from(layout::kv_key(key)),
            Arg::Bytes(layout::encode_record(value)),
        ];
        self.run_parsed(Command::new("SET", args), reply::ok)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let del = Command::new("DEL", vec![Arg::from(layout::kv_key(key))]);
        self.run_parsed(del, reply::integer).map(|_| ())
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        let args = vec![Arg::from(layout::kv_key(key)), Arg::Int(delta)];
        self.run_parsed(Command::new("INCRBY", args), reply::integer)
    }

    fn increment_many(&self, deltas: &[(String, i64)]) -> Result<(), StoreError> {
        let counters: Vec<(String, i64)> = deltas
            .iter()
            .map(|(key, delta)| (layout::kv_key(key), *delta))
            .collect();
        let all = scripts::increment_many(&counters);
        let label = all.label;
        match self.transport.execute(all) {
            Ok(reply) => parse_count(label, &reply),
            // A cluster refuses keys of several slots before running anything: run one script
            // per slot instead. A single Redis (or Upstash) never gets here.
            Err(e) if e.is_cross_slot() => {
                for group in by_slot(counters).values() {
                    let reply = self.run(scripts::increment_many(group))?;
                    parse_count(label, &reply)?;
                }
                Ok(())
            }
            Err(e) => Err(command_error(label, e)),
        }
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let args: Vec<Arg> = keys.iter().map(|k| Arg::from(layout::kv_key(k))).collect();
        let stored = match self.transport.execute(Command::new("MGET", args)) {
            Ok(reply) => reply::values(&reply, keys.len())
                .map_err(|e| StoreError::Unavailable(format!("redis store MGET: {e}")))?,
            // A cluster refuses keys of several slots: read them one by one instead. A single
            // Redis (or Upstash) never gets here.
            Err(e) if e.is_cross_slot() => {
                return keys.iter().map(|key| self.get(key)).collect();
            }
            Err(e) => return Err(command_error("MGET", e)),
        };
        keys.iter()
            .zip(stored)
            .map(|(key, value)| match value {
                None => Ok(None),
                Some(stored) => layout::decode_stored(&stored)
                    .map(Some)
                    .map_err(|e| StoreError::Unavailable(format!("record {key}: {e}"))),
            })
            .collect()
    }

    fn list_keys(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let pattern = layout::kv_pattern(prefix);
        let mut found = Vec::new();
        let mut seen = BTreeSet::new();
        let mut cursor = "0".to_owned();
        loop {
            let args = vec![
                Arg::from(cursor.as_str()),
                Arg::from("MATCH"),
                Arg::from(pattern.as_str()),
                Arg::from("COUNT"),
                Arg::Int(SCAN_COUNT),
            ];
            let (next, keys) = self.run_parsed(Command::new("SCAN", args), reply::scan)?;
            for redis_key in keys {
                let Some(key) = layout::kv_contract_key(&redis_key) else {
                    continue;
                };
                // SCAN may return a key more than once.
                if key.starts_with(prefix) && seen.insert(key.clone()) {
                    found.push(key);
                    if found.len() >= limit {
                        return Ok(found);
                    }
                }
            }
            if next == "0" {
                return Ok(found);
            }
            cursor = next;
        }
    }
}

fn parse_count(label: &str, reply: &[Reply]) -> Result<(), StoreError> {
    reply::integer(reply)
        .map(|_| ())
        .map_err(|e| StoreError::Unavailable(format!("redis store {label}: {e}")))
}

/// Counters grouped by their Redis Cluster slot.
fn by_slot(counters: Vec<(String, i64)>) -> BTreeMap<u16, Vec<(String, i64)>> {
    let mut groups: BTreeMap<u16, Vec<(String, i64)>> = BTreeMap::new();
    for (key, delta) in counters {
        groups
            .entry(layout::slot(key.as_bytes()))
            .or_default()
            .push((key, delta));
    }
    groups
}

fn command_error(label: &str, error: CommandError) -> StoreError {
    match error {
        CommandError::Invalid(text) => StoreError::Invalid(format!("redis store {label}: {text}")),
        CommandError::Failed(text) if text.starts_with("bad configuration") => {
            StoreError::Unavailable(text)
        }
        CommandError::Failed(text) => {
            StoreError::Unavailable(format!("redis store {label}: {text}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// A transport that answers from a script of replies and records the commands it got.
    struct Scripted {
        replies: RefCell<Vec<Result<Vec<Reply>, CommandError>>>,
        sent: RefCell<Vec<Command>>,
    }

    impl Scripted {
        fn new(replies: Vec<Result<Vec<Reply>, CommandError>>) -> RedisStore<Scripted> {
            RedisStore::new(Scripted {
                replies: RefCell::new(replies.into_iter().rev().collect()),
                sent: RefCell::new(Vec::new()),
            })
        }
    }

    impl Transport for Scripted {
        fn execute(&self, command: Command) -> Result<Vec<Reply>, CommandError> {
            self.sent.borrow_mut().push(command);
            self.replies
                .borrow_mut()
                .pop()
                .expect("a scripted reply for every command")
        }
    }

    fn bulk(text: &str) -> Reply {
        Reply::Bulk(text.as_bytes().to_vec())
    }

    fn names(store: &RedisStore<Scripted>) -> Vec<&'static str> {
        store
            .transport
            .sent
            .borrow()
            .iter()
            .map(|c| c.label)
            .collect()
    }

    #[test]
    fn a_compare_and_swap_is_one_script() {
        let store = Scripted::new(vec![Ok(vec![Reply::Int(1), bulk("4")])]);
        assert_eq!(store.compare_and_swap("cart:s:u", 3, b"{}").ok(), Some(4));
        assert_eq!(names(&store), ["compare-and-swap script"]);
    }

    #[test]
    fn a_lost_race_reports_the_winner() {
        let store = Scripted::new(vec![Ok(vec![Reply::Int(0), bulk("7")])]);
        assert!(matches!(
            store.compare_and_swap("cart:s:u", 3, b"{}"),
            Err(SwapError::Conflict(7))
        ));
    }

    #[test]
    fn counters_read_back_as_little_endian_bytes() {
        let store = Scripted::new(vec![Ok(vec![bulk("12")]), Ok(vec![bulk("=12")])]);
        assert_eq!(
            store.get("n").ok(),
            Some(Some(12i64.to_le_bytes().to_vec()))
        );
        assert_eq!(store.get("r").ok(), Some(Some(b"12".to_vec())));
    }

    #[test]
    fn increment_many_is_one_script_on_a_single_redis() {
        let store = Scripted::new(vec![Ok(vec![Reply::Int(3)])]);
        let deltas = [("a".into(), 1), ("b".into(), 2), ("c".into(), 3)];
        assert!(store.increment_many(&deltas).is_ok());
        assert_eq!(names(&store), ["increment-many script"]);
    }

    #[test]
    fn increment_many_splits_by_slot_when_a_cluster_refuses() {
        let cross =
            CommandError::Failed("CROSSSLOT Keys in request don't hash to the same slot".into());
        // a and b land in different slots; the retry sends one script per slot.
        let store = Scripted::new(vec![
            Err(cross),
            Ok(vec![Reply::Int(1)]),
            Ok(vec![Reply::Int(1)]),
        ]);
        let deltas = [("a".into(), 1), ("b".into(), 2)];
        assert_ne!(
            layout::slot(layout::kv_key("a").as_bytes()),
            layout::slot(layout::kv_key("b").as_bytes())
        );
        assert!(store.increment_many(&deltas).is_ok());
        assert_eq!(store.transport.sent.borrow().len(), 3);
    }

    #[test]
    fn list_keys_follows_the_cursor_and_stops_at_the_limit() {
        let store = Scripted::new(vec![
            Ok(vec![bulk("5"), bulk("ec:kv:{m:a}"), bulk("ec:kv:{m:b}")]),
            Ok(vec![bulk("9"), bulk("ec:kv:{m:a}")]),
            Ok(vec![bulk("0"), bulk("ec:kv:{m:c}"), bulk("ec:kv:{m:d}")]),
        ]);
        assert_eq!(
            store.list_keys("m:", 3).ok(),
            Some(vec!["m:a".to_owned(), "m:b".to_owned(), "m:c".to_owned()])
        );
        let sent = store.transport.sent.borrow();
        assert_eq!(sent.len(), 3);
        assert_eq!(sent[1].args[0], Arg::from("5"));
        assert_eq!(sent[2].args[0], Arg::from("9"));
        assert_eq!(sent[0].args[2], Arg::from("ec:kv:{m:*"));
    }

    #[test]
    fn failures_say_which_command() {
        let store = Scripted::new(vec![Err(CommandError::Failed("connection refused".into()))]);
        assert!(matches!(
            store.read_head("d"),
            Err(StoreError::Unavailable(text)) if text == "redis store read-head script: connection refused"
        ));
    }
}
