//! W3C Trace Context (`traceparent`, `tracestate`), without I/O.
//!
//! The cart continues the trace its caller started: it keeps the caller's trace id and flags,
//! and names itself as the parent of the calls it makes (a span id of its own). A request
//! without a valid `traceparent` starts a new trace, so every change's events and calls can
//! still be correlated.

/// One request's trace context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits, not all zero.
    pub trace_id: String,
    /// The cart's own span: 16 lowercase hex digits, not all zero.
    pub span_id: String,
    /// `01` when sampled.
    pub flags: String,
    /// Vendor state, passed on unchanged (at most 512 bytes, else dropped).
    pub tracestate: Option<String>,
}

/// Longest `tracestate` passed on (the spec lets a proxy drop longer ones).
const MAX_TRACESTATE: usize = 512;

impl TraceContext {
    /// The context for a request with these headers. `random` supplies fresh ids (16 random
    /// bytes for a trace id, 8 for a span id).
    pub fn from_headers(
        traceparent: Option<&str>,
        tracestate: Option<&str>,
        random: &mut dyn FnMut() -> u64,
    ) -> TraceContext {
        let span_id = nonzero_hex(random, 1);
        match traceparent.and_then(parse_traceparent) {
            Some((trace_id, flags)) => TraceContext {
                trace_id,
                span_id,
                flags,
                tracestate: tracestate
                    .map(str::trim)
                    .filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE)
                    .map(str::to_owned),
            },
            None => TraceContext {
                trace_id: nonzero_hex(random, 2),
                span_id,
                flags: "01".into(),
                tracestate: None,
            },
        }
    }

    /// The `traceparent` for calls this request makes: the cart's span is their parent.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

/// `(trace id, flags)` of a valid version-00 (or future-version) `traceparent`.
fn parse_traceparent(value: &str) -> Option<(String, String)> {
    let value = value.trim();
    let mut parts = value.split('-');
    let (version, trace_id, parent_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let rest = parts.next();
    let lower_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let valid = lower_hex(version, 2)
        && version != "ff"
        // Version 00 has exactly four fields; later versions may append more.
        && (version != "00" || rest.is_none())
        && lower_hex(trace_id, 32)
        && trace_id.bytes().any(|b| b != b'0')
        && lower_hex(parent_id, 16)
        && parent_id.bytes().any(|b| b != b'0')
        && lower_hex(flags, 2);
    valid.then(|| (trace_id.to_owned(), flags.to_owned()))
}

/// `words` random u64s as lowercase hex, never all zero.
fn nonzero_hex(random: &mut dyn FnMut() -> u64, words: usize) -> String {
    loop {
        let values: Vec<u64> = (0..words).map(|_| random()).collect();
        if values.iter().any(|v| *v != 0) {
            return values.iter().map(|v| format!("{v:016x}")).collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> impl FnMut() -> u64 {
        let mut n = 0u64;
        move || {
            n += 1;
            n
        }
    }

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_continued_with_a_span_of_our_own() {
        let ctx =
            TraceContext::from_headers(Some(PARENT), Some("congo=t61rcWkgMzE"), &mut counter());
        assert_eq!(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.flags, "01");
        assert_ne!(ctx.span_id, "00f067aa0ba902b7");
        assert_eq!(
            ctx.traceparent(),
            format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", ctx.span_id)
        );
        assert_eq!(ctx.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
    }

    #[test]
    fn invalid_traceparents_start_a_new_trace() {
        for bad in [
            "",
            "garbage",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            let ctx = TraceContext::from_headers(Some(bad), Some("a=b"), &mut counter());
            assert_ne!(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", "{bad}");
            assert_eq!(ctx.trace_id.len(), 32, "{bad}");
            assert_eq!(
                ctx.tracestate, None,
                "state of another trace is not kept: {bad}"
            );
        }
        let fresh = TraceContext::from_headers(None, None, &mut counter());
        assert_eq!(fresh.trace_id, "00000000000000020000000000000003");
        assert_eq!(fresh.span_id, "0000000000000001");
    }

    #[test]
    fn a_later_version_may_carry_more_fields() {
        let ctx = TraceContext::from_headers(
            Some("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more"),
            None,
            &mut counter(),
        );
        assert_eq!(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.flags, "00");
    }

    #[test]
    fn random_ids_are_never_all_zero() {
        let mut zeros_then_one = {
            let mut n = 0u64;
            move || {
                n += 1;
                u64::from(n > 4)
            }
        };
        let ctx = TraceContext::from_headers(None, None, &mut zeros_then_one);
        assert!(ctx.span_id.bytes().any(|b| b != b'0'));
        assert!(ctx.trace_id.bytes().any(|b| b != b'0'));
    }
}
