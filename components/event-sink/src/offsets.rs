//! Paging over a topic log: query parsing, the offset window to read, and where to continue.

use std::ops::Range;

pub const DEFAULT_LIMIT: u64 = 1000;
pub const MAX_LIMIT: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuery {
    pub offset: u64,
    pub limit: u64,
}

/// Parses `offset` and `limit` from a query string; other parameters are ignored.
pub fn parse_query(query: &str) -> Result<PageQuery, String> {
    let mut page = PageQuery {
        offset: 0,
        limit: DEFAULT_LIMIT,
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let target = match name {
            "offset" => &mut page.offset,
            "limit" => &mut page.limit,
            _ => continue,
        };
        *target = value
            .parse()
            .map_err(|_| format!("{name} must be a non-negative integer, got {value:?}"))?;
    }
    if page.limit > MAX_LIMIT {
        return Err(format!("limit must be at most {MAX_LIMIT}"));
    }
    Ok(page)
}

/// Offsets to read when the topic has handed out offsets `0..end`.
pub fn window(page: PageQuery, end: u64) -> Range<u64> {
    let start = page.offset.min(end);
    start..page.offset.saturating_add(page.limit).min(end)
}

/// Where the reader continues.
///
/// After the last record returned. Missing offsets *before* it are gaps (a producer died between
/// taking the offset and storing the record) and are skipped for good. Missing offsets *after*
/// it may be a producer still writing, so the reader is sent back to them, unless the whole
/// window was empty while later offsets exist: then they are gaps too, or the reader would
/// never get past them.
pub fn next_offset(page: PageQuery, window: Range<u64>, end: u64, last_found: Option<u64>) -> u64 {
    match last_found {
        Some(last) => last + 1,
        None if window.end < end => window.end,
        None => page.offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(offset: u64, limit: u64) -> PageQuery {
        PageQuery { offset, limit }
    }

    #[test]
    fn query_parsing() {
        assert_eq!(parse_query(""), Ok(page(0, 1000)));
        assert_eq!(parse_query("offset=5&limit=10"), Ok(page(5, 10)));
        assert_eq!(parse_query("limit=10000&x=y&offset=1"), Ok(page(1, 10000)));
        assert!(parse_query("limit=10001").is_err());
        assert!(parse_query("offset=-1").is_err());
        assert!(parse_query("offset=").is_err());
        assert!(parse_query("limit=abc").is_err());
    }

    #[test]
    fn windows_are_clamped_to_the_log() {
        assert_eq!(window(page(0, 1000), 3), 0..3);
        assert_eq!(window(page(2, 1), 10), 2..3);
        assert_eq!(window(page(7, 5), 3), 3..3);
        assert_eq!(window(page(u64::MAX, u64::MAX), 3), 3..3);
    }

    #[test]
    fn next_skips_gaps_only_when_later_records_exist() {
        // Records found: continue after the last one.
        assert_eq!(next_offset(page(0, 10), 0..5, 5, Some(3)), 4);
        // Nothing found at the tail: stay, a producer may still be writing.
        assert_eq!(next_offset(page(3, 10), 3..5, 5, None), 3);
        // Nothing found but the log goes on past the window: move past the gaps.
        assert_eq!(next_offset(page(3, 2), 3..5, 9, None), 5);
        // Reading past the end: stay where asked.
        assert_eq!(next_offset(page(8, 2), 5..5, 5, None), 8);
    }
}
