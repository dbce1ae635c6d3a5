//! The Lua scripts of the Redis store and the commands that run them.
//!
//! Redis runs a script atomically: no other command runs between its first and last call, so
//! a check and the writes that depend on it are one step, and each operation below is one
//! round trip. Every key a script writes is passed in `KEYS` and shares the hash tag of
//! `KEYS[1]` (see [`super::layout`]), so the scripts run on Redis Cluster too. Scripts go by
//! `EVAL`: a few hundred bytes each, and no `NOSCRIPT` retry path to get wrong.
//!
//! Versions travel and are stored as ASCII decimals and compared as strings (shorter is
//! smaller, then lexical), never as Lua numbers, which are doubles.

use super::layout;
use super::wire::{Arg, Command};

/// Current version and its body in one step (the body key is derived from the head the script
/// reads; it has the head's hash tag, so it is in the same slot).
///
/// `KEYS[1]` head; `ARGV[1]` the body key suffix before the version (`:v`).
/// Returns nil when there is no head, else `{version, body}` (body nil if missing).
pub const READ_HEAD: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('GET', KEYS[1] .. ARGV[1] .. v)}
";

/// Compare-and-swap: if the head is at `expected` (`'0'`: the document must not exist), write
/// the body of the next version, move the head to it and delete the body it replaced; else
/// change nothing. Creation on first use is the `'0'` case, so two creators cannot both
/// succeed. The superseded body can go at once: a reader gets head and body in one script, so
/// no reader can hold a head whose body is gone.
///
/// `KEYS[1]` head, `KEYS[2]` body key of the new version; `ARGV[1]` expected, `ARGV[2]` new
/// version, `ARGV[3]` body, `ARGV[4]` the body key suffix before the version (`:v`).
/// Returns `{1, new}` when swapped, `{0, current}` on conflict.
pub const COMPARE_AND_SWAP: &str = r"
local head = redis.call('GET', KEYS[1]) or '0'
if head ~= ARGV[1] then return {0, head} end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.error_reply('ERR document body ' .. KEYS[2] .. ' exists already')
end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], ARGV[2])
if head ~= '0' then redis.call('DEL', KEYS[1] .. ARGV[4] .. head) end
return {1, ARGV[2]}
";

/// Adds `ARGV[i]` to counter `KEYS[i]` for each i. Returns how many counters moved.
pub const INCREMENT_MANY: &str = r"
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[i])
end
return #KEYS
";

/// `EVAL script numkeys keys... args...`.
fn eval(label: &'static str, script: &str, keys: Vec<String>, args: Vec<Arg>) -> Command {
    let mut all = Vec::with_capacity(2 + keys.len() + args.len());
    all.push(Arg::from(script));
    all.push(Arg::Int(i64::try_from(keys.len()).unwrap_or(i64::MAX)));
    all.extend(keys.into_iter().map(Arg::from));
    all.extend(args);
    Command {
        name: "EVAL",
        args: all,
        label,
    }
}

pub fn read_head(key: &str) -> Command {
    eval(
        "read-head script",
        READ_HEAD,
        vec![layout::head_key(key)],
        vec![Arg::from(layout::BODY_SUFFIX)],
    )
}

pub fn compare_and_swap(key: &str, expected: u64, new: u64, body: &[u8]) -> Command {
    eval(
        "compare-and-swap script",
        COMPARE_AND_SWAP,
        vec![layout::head_key(key), layout::body_key(key, new)],
        vec![
            Arg::from(expected.to_string()),
            Arg::from(new.to_string()),
            Arg::Bytes(body.to_vec()),
            Arg::from(layout::BODY_SUFFIX),
        ],
    )
}

/// One script over counters given as (Redis key, delta).
pub fn increment_many(counters: &[(String, i64)]) -> Command {
    let keys = counters.iter().map(|(key, _)| key.clone()).collect();
    let args = counters.iter().map(|(_, delta)| Arg::Int(*delta)).collect();
    eval("increment-many script", INCREMENT_MANY, keys, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(arg: &Arg) -> String {
        match arg {
            Arg::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            Arg::Int(n) => format!("#{n}"),
        }
    }

    fn texts(command: &Command) -> Vec<String> {
        command.args.iter().map(text).collect()
    }

    #[test]
    fn compare_and_swap_names_the_head_and_the_next_body() {
        let command = compare_and_swap("cart:s:u", 4, 5, b"{}");
        assert_eq!(command.name, "EVAL");
        assert_eq!(
            texts(&command)[1..],
            [
                "#2",
                "ec:doc:{cart:s:u}",
                "ec:doc:{cart:s:u}:v5",
                "4",
                "5",
                "{}",
                ":v"
            ]
        );
        assert_eq!(texts(&command)[0], COMPARE_AND_SWAP);
    }

    #[test]
    fn creation_expects_version_zero() {
        let command = compare_and_swap("cart:s:u", 0, 1, b"x");
        assert_eq!(
            texts(&command)[1..],
            [
                "#2",
                "ec:doc:{cart:s:u}",
                "ec:doc:{cart:s:u}:v1",
                "0",
                "1",
                "x",
                ":v"
            ]
        );
    }

    #[test]
    fn read_head_passes_the_body_suffix() {
        let command = read_head("cart:s:u");
        assert_eq!(texts(&command)[1..], ["#1", "ec:doc:{cart:s:u}", ":v"]);
        // The script derives the body key as KEYS[1] .. ARGV[1] .. version: the layout's.
        assert_eq!(
            format!("{}{}{}", "ec:doc:{cart:s:u}", ":v", 7),
            layout::body_key("cart:s:u", 7)
        );
    }

    #[test]
    fn increment_many_pairs_keys_with_integer_deltas() {
        let command = increment_many(&[("ec:kv:{a}".into(), 2), ("ec:kv:{b}".into(), -1)]);
        assert_eq!(
            texts(&command)[1..],
            ["#2", "ec:kv:{a}", "ec:kv:{b}", "#2", "#-1"]
        );
    }

    #[test]
    fn scripts_compare_versions_as_strings_not_numbers() {
        assert!(!COMPARE_AND_SWAP.contains("tonumber"));
    }
}
