//! Keeping a cart document's outbox bounded while the event pipeline is down.
//!
//! A cart keeps at most [`INLINE_MAX`] pending events inline. Older ones are *spilled* to
//! chunk records of their own, and the document keeps only the sequence range they cover
//! ([`Spill`]), so the document every request reads and parses stays the same size however
//! long the outage lasts. The relay drains chunks first (they hold the oldest events), then
//! the inline events, so each cart's events still go out in sequence order.
//!
//! Chunks are aligned blocks of [`CHUNK_EVENTS`] sequence numbers (the first chunk may start
//! inside its block, where the relay had already acknowledged part of it). Only events that
//! are already committed are ever spilled, and a committed event never changes, so every
//! writer that spills a given range writes the very same bytes under the very same key:
//! racing writers cannot leave a chunk that disagrees with the document that names it.

use serde::{Deserialize, Serialize};

use crate::events::OutboxEntry;

/// Most events kept inline in the cart document.
pub const INLINE_MAX: usize = 64;
/// Sequence numbers per chunk.
pub const CHUNK_EVENTS: u64 = 32;

/// The pending events that live in chunks: sequences `from ..= through`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spill {
    pub from: u64,
    pub through: u64,
}

/// The last sequence of the aligned block holding `sequence` (sequences start at 1).
pub fn block_end(sequence: u64) -> u64 {
    sequence.saturating_sub(1) / CHUNK_EVENTS * CHUNK_EVENTS + CHUNK_EVENTS
}

/// The chunk ranges a spill covers, oldest first: `(from, through)` each.
pub fn chunks(spill: Spill) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut from = spill.from;
    while from <= spill.through {
        let through = block_end(from).min(spill.through);
        out.push((from, through));
        from = through + 1;
    }
    out
}

/// The key of the chunk holding `from ..= through` of the cart `cart_key`.
pub fn chunk_key(cart_key: &str, from: u64, through: u64) -> String {
    format!("outbox-chunk:{cart_key}:{from}-{through}")
}

/// What to move out of an inline outbox that grew past [`INLINE_MAX`]: the chunks (oldest
/// first, each `(from, through, events)`) and how many inline entries they take. Only events
/// with a sequence up to `committed_through` (those already committed before this change) are
/// eligible, and only whole chunks up to a block end, so each chunk's content is fixed by its
/// key. `spilled_through` is where an existing spill ends (0 if none): chunks continue it.
pub fn plan_spill(
    inline: &[OutboxEntry],
    committed_through: u64,
    spilled_through: u64,
) -> Vec<(u64, u64, Vec<OutboxEntry>)> {
    let mut plan = Vec::new();
    let mut taken = 0usize;
    while inline.len() - taken > INLINE_MAX {
        let Some(first) = inline.get(taken) else {
            break;
        };
        let from = first.event.sequence;
        if from <= spilled_through {
            break; // not contiguous with the spill: leave it (never expected)
        }
        let through = block_end(from);
        if through > committed_through {
            break;
        }
        let count = inline[taken..]
            .iter()
            .take_while(|e| e.event.sequence <= through)
            .count();
        let events: Vec<OutboxEntry> = inline[taken..taken + count].to_vec();
        // Contiguous sequences only: a gap would make the chunk's content ambiguous.
        let contiguous = events
            .iter()
            .enumerate()
            .all(|(i, e)| e.event.sequence == from + i as u64);
        if !contiguous || events.last().map(|e| e.event.sequence) != Some(through) {
            break;
        }
        taken += count;
        plan.push((from, through, events));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventFactory, EventType};

    fn entries(from: u64, through: u64) -> Vec<OutboxEntry> {
        let factory = EventFactory {
            store_id: "s",
            user_id: "u",
            cart_key: "cart:s:u",
            now_ms: 1,
        };
        (from..=through)
            .map(|seq| factory.event(seq, EventType::ItemAdded, serde_json::json!({"n": seq})))
            .collect()
    }

    #[test]
    fn blocks_are_aligned_to_the_chunk_size() {
        assert_eq!(block_end(1), 32);
        assert_eq!(block_end(32), 32);
        assert_eq!(block_end(33), 64);
        assert_eq!(
            chunks(Spill {
                from: 5,
                through: 70
            }),
            vec![(5, 32), (33, 64), (65, 70)]
        );
        assert_eq!(
            chunks(Spill {
                from: 33,
                through: 64
            }),
            vec![(33, 64)]
        );
    }

    #[test]
    fn only_whole_committed_blocks_beyond_the_inline_limit_are_spilled() {
        let inline = entries(5, 5 + INLINE_MAX as u64 + 40);
        let plan = plan_spill(&inline, 5 + INLINE_MAX as u64 + 39, 4);
        let ranges: Vec<(u64, u64)> = plan.iter().map(|(f, t, _)| (*f, *t)).collect();
        // 105 inline: the partial first block (5-32) and 33-64 go; 41 stay inline.
        assert_eq!(ranges, vec![(5, 32), (33, 64)]);
        assert_eq!(plan[0].2.len(), 28);
        assert_eq!(plan[0].2[0].event.sequence, 5);
        let left = inline.len() - plan.iter().map(|(_, _, e)| e.len()).sum::<usize>();
        assert!(left <= INLINE_MAX, "{left}");
    }

    #[test]
    fn nothing_is_spilled_at_or_below_the_limit_or_past_what_is_committed() {
        assert!(plan_spill(&entries(1, INLINE_MAX as u64), 1_000, 0).is_empty());
        // Over the limit, but the oldest block is not all committed yet.
        assert!(plan_spill(&entries(1, 80), 20, 0).is_empty());
    }
}
