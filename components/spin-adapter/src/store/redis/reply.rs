//! Reading the store's replies (flat, see [`super::wire`]). Anything unexpected is an error
//! naming what came back, never a guess.

use super::wire::Reply;

/// What the read-head script found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    Absent,
    Present {
        version: u64,
        body: Vec<u8>,
    },
    /// The head names a version whose body is gone: damage, not a race (bodies are written in
    /// the same step as the head that names them, and only the script that moves the head
    /// deletes the body it replaced).
    BodyMissing(u64),
}

pub fn head(reply: &[Reply]) -> Result<Head, String> {
    match reply {
        [Reply::Nil] | [] => Ok(Head::Absent),
        [version, Reply::Nil] => Ok(Head::BodyMissing(parse_version(version)?)),
        [version, Reply::Bulk(body)] => Ok(Head::Present {
            version: parse_version(version)?,
            body: body.clone(),
        }),
        other => Err(unexpected("read-head", other)),
    }
}

/// What the compare-and-swap script did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Swap {
    Swapped(u64),
    /// The head was elsewhere (0: no document); nothing was written.
    Conflict(u64),
}

pub fn swap(reply: &[Reply]) -> Result<Swap, String> {
    match reply {
        [Reply::Int(1), version] => Ok(Swap::Swapped(parse_version(version)?)),
        [Reply::Int(0), version] => Ok(Swap::Conflict(parse_version(version)?)),
        other => Err(unexpected("compare-and-swap", other)),
    }
}

/// An integer reply (`INCRBY`, `DEL`, a script's count).
pub fn integer(reply: &[Reply]) -> Result<i64, String> {
    match reply {
        [Reply::Int(n)] => Ok(*n),
        other => Err(unexpected("an integer", other)),
    }
}

/// `GET`: the stored bytes, none for a missing key.
pub fn value(reply: &[Reply]) -> Result<Option<Vec<u8>>, String> {
    match reply {
        [Reply::Nil] | [] => Ok(None),
        [Reply::Bulk(bytes)] => Ok(Some(bytes.clone())),
        other => Err(unexpected("GET", other)),
    }
}

/// `MGET` of `count` keys: one value or nil per key, in order.
pub fn values(reply: &[Reply], count: usize) -> Result<Vec<Option<Vec<u8>>>, String> {
    if reply.len() != count {
        return Err(unexpected("MGET", reply));
    }
    reply
        .iter()
        .map(|one| match one {
            Reply::Nil => Ok(None),
            Reply::Bulk(bytes) => Ok(Some(bytes.clone())),
            other => Err(unexpected("MGET", std::slice::from_ref(other))),
        })
        .collect()
}

/// `SET` without conditions: `OK`.
pub fn ok(reply: &[Reply]) -> Result<(), String> {
    match reply {
        [one] if one.bytes().is_some_and(|b| b.eq_ignore_ascii_case(b"OK")) => Ok(()),
        other => Err(unexpected("OK", other)),
    }
}

/// `SCAN`: the next cursor (`"0"` at the end) and the keys of this page.
pub fn scan(reply: &[Reply]) -> Result<(String, Vec<Vec<u8>>), String> {
    let Some((cursor, keys)) = reply.split_first() else {
        return Err(unexpected("SCAN", reply));
    };
    let cursor = match cursor {
        Reply::Int(n) => n.to_string(),
        other => other
            .bytes()
            .and_then(|b| std::str::from_utf8(b).ok())
            .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
            .ok_or_else(|| unexpected("a SCAN cursor", reply))?,
    };
    let keys = keys
        .iter()
        .map(|key| key.bytes().map(<[u8]>::to_vec))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| unexpected("SCAN keys", reply))?;
    Ok((cursor, keys))
}

/// A version: a positive decimal (or 0 for "no document" in a conflict).
fn parse_version(reply: &Reply) -> Result<u64, String> {
    let parsed = match reply {
        Reply::Int(n) => u64::try_from(*n).ok(),
        other => other
            .bytes()
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|text| text.parse::<u64>().ok()),
    };
    parsed.ok_or_else(|| format!("unreadable version {reply:?}"))
}

fn unexpected(what: &str, reply: &[Reply]) -> String {
    // Bodies can be large: show shapes, not contents.
    let shape: Vec<String> = reply
        .iter()
        .map(|r| match r {
            Reply::Bulk(bytes) if bytes.len() > 32 => format!("Bulk({} bytes)", bytes.len()),
            Reply::Bulk(bytes) => format!("Bulk({:?})", String::from_utf8_lossy(bytes)),
            other => format!("{other:?}"),
        })
        .collect();
    format!("unexpected reply to {what}: [{}]", shape.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Reply {
        Reply::Bulk(text.as_bytes().to_vec())
    }

    #[test]
    fn heads() {
        assert_eq!(head(&[Reply::Nil]), Ok(Head::Absent));
        assert_eq!(
            head(&[bulk("7"), bulk("{}")]),
            Ok(Head::Present {
                version: 7,
                body: b"{}".to_vec()
            })
        );
        assert_eq!(head(&[bulk("7"), Reply::Nil]), Ok(Head::BodyMissing(7)));
        assert!(head(&[bulk("x"), bulk("{}")]).is_err());
        assert!(head(&[bulk("-1"), bulk("{}")]).is_err());
        assert!(head(&[Reply::Int(1)]).is_err());
    }

    #[test]
    fn swaps() {
        assert_eq!(swap(&[Reply::Int(1), bulk("5")]), Ok(Swap::Swapped(5)));
        assert_eq!(swap(&[Reply::Int(0), bulk("9")]), Ok(Swap::Conflict(9)));
        assert_eq!(swap(&[Reply::Int(0), bulk("0")]), Ok(Swap::Conflict(0)));
        // Over REST a script's number arrives as a JSON number either way.
        assert_eq!(swap(&[Reply::Int(1), Reply::Int(5)]), Ok(Swap::Swapped(5)));
        assert!(swap(&[Reply::Int(2), bulk("5")]).is_err());
        assert!(swap(&[Reply::Int(1)]).is_err());
    }

    #[test]
    fn plain_replies() {
        assert_eq!(integer(&[Reply::Int(-3)]), Ok(-3));
        assert!(integer(&[bulk("3")]).is_err());
        assert_eq!(value(&[Reply::Nil]), Ok(None));
        assert_eq!(value(&[bulk("=x")]), Ok(Some(b"=x".to_vec())));
        assert!(value(&[bulk("a"), bulk("b")]).is_err());
        assert_eq!(ok(&[Reply::Status("OK".into())]), Ok(()));
        assert_eq!(ok(&[bulk("OK")]), Ok(()));
        assert!(ok(&[Reply::Nil]).is_err());
    }

    #[test]
    fn scan_pages() {
        assert_eq!(
            scan(&[bulk("17"), bulk("ec:kv:{a}"), bulk("ec:kv:{b}")]),
            Ok((
                "17".into(),
                vec![b"ec:kv:{a}".to_vec(), b"ec:kv:{b}".to_vec()]
            ))
        );
        assert_eq!(scan(&[bulk("0")]), Ok(("0".into(), vec![])));
        assert!(scan(&[]).is_err());
        assert!(scan(&[bulk("x1")]).is_err());
        assert!(scan(&[bulk("0"), Reply::Nil]).is_err());
    }

    #[test]
    fn errors_show_shapes_not_large_bodies() {
        let text = head(&[bulk(&"b".repeat(100))]).expect_err("malformed");
        assert!(text.contains("Bulk(100 bytes)"), "{text}");
    }
}
