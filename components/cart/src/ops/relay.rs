//! The outbox relay: publishes a cart's pending events and removes the acknowledged ones with
//! another compare-and-swap. It runs after the response has been sent, and from the admin sweep.
//!
//! * Writers list the cart under `outbox:pending:{cart key}` before their first commit with
//!   events (see `commit`), so every cart that may hold pending events is found by the sweep,
//!   even if the process dies right after the commit.
//! * One relay per cart at a time, by a claim inside the cart document (`RelayClaim`): the
//!   commit that adds events claims it in the same write, so relaying costs no lease writes.
//!   The holder publishes the pending events oldest first, in batches of at most
//!   `MAX_BATCH`, so the events of one cart arrive in sequence order; a crash after publishing
//!   and before the removal only causes redelivery, which consumers drop by event id (at
//!   least once, never lost). The removal renews the claim while events remain and gives it
//!   up in the same write once the outbox is empty: a relay costs one write.
//! * A failed publish turns the claim into a backoff for that cart only (exponential, up to a
//!   minute), so a down pipeline is not hammered on every write and one bad cart does not slow
//!   the others.

use crate::ops::commit::{self, Outcome, Retry, Step, Stopped};
use crate::ops::error::OpError;
use crate::ports::cart_repo::{self, Loaded};
use crate::ports::outbox::{self, metric_keys, CLAIM_TTL_MS};
use crate::runtime::clock::{now_ms, random_unit};
use crate::runtime::metric_registry as registry;

use cart_domain::backoff::backoff_delay_ms;
use cart_domain::cart::RelayClaim;
use cart_domain::events::OutboxEntry;
use cart_domain::outbox::{chunk_key, chunks, Spill};
use cart_domain::Cart;

use serde::Serialize;

/// Publish rounds of one relay after a response before it gives the claim up for the next
/// writer or the sweep (after-response work holds an instance; keep it short).
const AFTER_RESPONSE_ROUNDS: usize = 8;
/// Publish rounds per cart of the admin sweep (a long backlog drains in fewer sweeps).
const SWEEP_ROUNDS: usize = 64;
/// Most events per publish: well under what REST proxies accept in one request (the reference
/// sink refuses more than 1,000 records), so a long backlog drains in rounds instead of being
/// refused whole.
pub const MAX_BATCH: usize = 100;

fn topic() -> String {
    crate::ports::settings::var("events_topic")
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| "cart-events".to_owned())
}

/// What one relay pass did.
#[derive(Debug, Default, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayReport {
    pub published: usize,
    pub pending: usize,
    pub failed: bool,
    pub busy: bool,
    pub backing_off: bool,
}

/// After the response: runs the relays this request's commits claimed.
pub fn run_claimed() {
    for (cart_key, token) in crate::ops::commit::take_claimed() {
        relay_claimed(&cart_key, &token, None, AFTER_RESPONSE_ROUNDS);
    }
}

/// Where a batch came from, and so what publishing it acknowledges.
enum Source {
    /// The first events of the inline outbox.
    Inline,
    /// A spilled chunk (`outbox::chunk_key`), holding `from ..= through`.
    Chunk { key: String, through: u64 },
}

/// What a removal write acknowledges.
#[derive(Clone, Copy)]
enum Ack {
    /// Inline events up to this sequence.
    Inline(u64),
    /// The spilled events up to this sequence (a whole chunk).
    Chunk(u64),
}

/// The next events to publish: the oldest spilled chunk if any (they precede the inline
/// events), else up to `MAX_BATCH` inline events. None when a chunk the cart names cannot be
/// read.
fn next_batch(cart_key: &str, cart: &Cart) -> Option<(Vec<OutboxEntry>, Source)> {
    let Some(spill) = cart.spill else {
        let inline = cart.outbox[..cart.outbox.len().min(MAX_BATCH)].to_vec();
        return Some((inline, Source::Inline));
    };
    let (from, through) = *chunks(spill).first()?;
    let key = chunk_key(cart_key, from, through);
    match outbox::read_chunk(&key) {
        Some(events) => Some((events, Source::Chunk { key, through })),
        None => {
            eprintln!(
                "{{\"level\":\"error\",\"msg\":\"outbox chunk missing or unreadable; its events cannot be published\",\"cart\":\"{cart_key}\",\"chunk\":\"{key}\"}}"
            );
            None
        }
    }
}

/// Events waiting, inline and spilled.
fn pending_count(cart: &Cart) -> usize {
    let spilled = cart
        .spill
        .map_or(0, |s| (s.through.saturating_sub(s.from) + 1) as usize);
    cart.outbox.len() + spilled
}

fn apply_ack(cart: &mut Cart, ack: Ack) {
    match ack {
        Ack::Inline(through) => {
            cart.acknowledge_through(through);
        }
        Ack::Chunk(through) => {
            if let Some(spill) = cart.spill {
                cart.spill = (through < spill.through).then(|| Spill {
                    from: spill.from.max(through + 1),
                    through: spill.through,
                });
            }
        }
    }
}

/// Publishes `cart_key`'s outbox while `token` holds its claim. `known` is the cart as the
/// caller last saved it (saves a read).
fn relay_claimed(cart_key: &str, token: &str, known: Option<Loaded>, rounds: usize) -> RelayReport {
    let mut report = RelayReport::default();
    let mut loaded = match known.map(Ok).unwrap_or_else(|| cart_repo::load(cart_key)) {
        Ok(loaded) => loaded,
        Err(_) => {
            report.failed = true;
            return report;
        }
    };
    let topic = topic();
    for round in 0..rounds {
        report.pending = pending_count(&loaded.cart);
        if !loaded.cart.relay_claimed_by(token, now_ms()) {
            // Someone took over an expired claim; they publish from here.
            report.busy = true;
            break;
        }
        let Some((batch, source)) = next_batch(cart_key, &loaded.cart) else {
            report.failed = true;
            back_off(cart_key, token, None, loaded);
            break;
        };
        let acked = if batch.is_empty() {
            0
        } else {
            crate::ports::event_pipeline::publish(cart_key, &topic, &batch)
        };
        report.published += acked;
        if acked < batch.len() {
            report.failed = true;
            // A chunk is acknowledged whole or not at all (redelivery is harmless).
            let ack = match source {
                Source::Inline => acked
                    .checked_sub(1)
                    .map(|i| Ack::Inline(batch[i].event.sequence)),
                Source::Chunk { .. } => None,
            };
            if back_off(cart_key, token, ack, loaded) && ack.is_some() {
                count_acknowledged(&batch[..acked]);
            }
            break;
        }
        let ack = match &source {
            Source::Inline => batch.last().map(|e| Ack::Inline(e.event.sequence)),
            Source::Chunk { through, .. } => Some(Ack::Chunk(*through)),
        };
        let last_round = round + 1 == rounds;
        match remove_acknowledged(cart_key, token, ack, loaded, last_round) {
            Some(saved) => {
                count_acknowledged(&batch);
                if let Source::Chunk { key, .. } = &source {
                    // No longer named by the cart: its events are published.
                    outbox::delete_chunk(key);
                }
                if saved.cart.relay.is_some() {
                    loaded = saved;
                } else {
                    report.pending = pending_count(&saved.cart);
                    break;
                }
            }
            None => {
                report.busy = true;
                break;
            }
        }
    }
    report
}

/// Counts events as acknowledged (and their lag) once this relay's own write has taken them
/// out of the outbox, not when the pipeline answered: a relay whose claim was taken over (the
/// forced sweep does that) may publish events the new holder publishes again, and counting at
/// the removal counts each event once, since only one write removes it. Redelivery stays
/// harmless to consumers (they drop by event id); the pending gauge (committed - acknowledged)
/// stays exact.
fn count_acknowledged(acked: &[cart_domain::events::OutboxEntry]) {
    let now = now_ms();
    for entry in acked {
        let id = &entry.event.id;
        crate::ports::metrics::add_for_event(metric_keys::ACKED, id, 1);
        let lag_ms = now.saturating_sub(entry.committed_at_ms);
        crate::ports::metrics::observe_for_event(
            &registry::OUTBOX_LAG,
            id,
            lag_ms.saturating_mul(1000),
        );
    }
}

/// Removes events through `through` while `token` holds the claim, renewing the claim when
/// events remain and giving it up when none do (or when `give_up`). None when the claim was
/// lost or the store failed.
fn remove_acknowledged(
    cart_key: &str,
    token: &str,
    ack: Option<Ack>,
    loaded: Loaded,
    give_up: bool,
) -> Option<Loaded> {
    // A relay's own write: no new events, the revision (ETag) untouched.
    let outcome = commit::run(cart_key, loaded, Retry::RELAY, None, |loaded| {
        let now = now_ms();
        let Some(mut next) = acknowledged_under_claim(loaded, token, ack, now) else {
            return Ok(Step::Settled(()));
        };
        next.relay = if !next.has_pending_events() || give_up {
            None
        } else {
            Some(RelayClaim {
                token: token.to_owned(),
                until_ms: now + CLAIM_TTL_MS,
                failures: 0,
            })
        };
        Ok(Step::Save(next))
    });
    match outcome {
        Ok(Outcome::Saved { saved, .. }) => Some(saved),
        _ => None,
    }
}

/// The cart with what the pipeline acknowledged removed, while this relay (`token`) still holds
/// its claim; `None` once the claim is lost (the new holder relays, so this one writes nothing).
fn acknowledged_under_claim(
    loaded: &Loaded,
    token: &str,
    ack: Option<Ack>,
    now: u64,
) -> Option<Cart> {
    if !loaded.cart.relay_claimed_by(token, now) {
        return None;
    }
    let mut next = loaded.cart.clone();
    if let Some(ack) = ack {
        apply_ack(&mut next, ack);
    }
    Some(next)
}

/// After a failed (or partly failed) publish: removes what was acknowledged and turns the
/// claim into this cart's backoff. Also makes sure the cart is listed for the sweep (a sweep
/// may have unlisted it just before the commit that claimed this relay). Best effort: a lost
/// claim is the new holder's to back off, a failed write leaves the claim to expire. True
/// when this relay's write was saved (with `ack` applied).
fn back_off(cart_key: &str, token: &str, ack: Option<Ack>, loaded: Loaded) -> bool {
    crate::ports::metrics::inc(metric_keys::FAILURES);
    outbox::list(cart_key);
    let outcome = commit::run(cart_key, loaded, Retry::RELAY, None, |loaded| {
        let now = now_ms();
        let Some(mut next) = acknowledged_under_claim(loaded, token, ack, now) else {
            return Ok(Step::Settled(()));
        };
        let failures = loaded
            .cart
            .relay
            .as_ref()
            .map_or(0, |c| c.failures)
            .saturating_add(1);
        next.relay = Some(RelayClaim {
            token: String::new(),
            until_ms: now + backoff_delay_ms(failures, 250, 60_000, 0.5 + random_unit() / 2.0),
            failures,
        });
        Ok(Step::Save(next))
    });
    matches!(outcome, Ok(Outcome::Saved { .. }))
}

/// What the admin sweep did.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub carts: usize,
    pub published: usize,
    pub still_pending: usize,
    pub failed_carts: usize,
    /// Whether some listed cart was left alone because it is backing off (`force` ignores it).
    pub skipped_backoff: bool,
}

/// Relays every listed cart (up to `limit`). Honours each cart's backoff and live relay
/// unless `force`.
pub fn sweep(limit: u32, force: bool) -> Result<SweepReport, OpError> {
    let mut report = SweepReport::default();
    let listed = outbox::listed(limit).map_err(OpError::OutboxListing)?;
    for cart_key in listed {
        report.carts += 1;
        let r = sweep_cart(&cart_key, force);
        report.published += r.published;
        report.skipped_backoff |= r.backing_off;
        // What is left, whether this cart failed or only ran out of rounds.
        report.still_pending += r.pending;
        if r.failed || r.busy || r.backing_off {
            report.failed_carts += 1;
        }
    }
    Ok(report)
}

/// Why the sweep left a cart without relaying it.
enum LeftAlone {
    /// Its outbox is empty (and it is unlisted now).
    Drained,
    /// Someone holds a live claim: a relay (`backing_off` false) or a backoff.
    Claimed { backing_off: bool },
}

/// One listed cart: unlist it when its outbox is empty, else claim its relay and run it.
fn sweep_cart(cart_key: &str, force: bool) -> RelayReport {
    let mut report = RelayReport::default();
    let token = commit::request_token();
    let Ok(loaded) = cart_repo::load(cart_key) else {
        report.failed = true;
        return report;
    };
    let outcome = commit::run(cart_key, loaded, Retry::RELAY, None, |loaded| {
        report.pending = pending_count(&loaded.cart);
        if !loaded.cart.has_pending_events() {
            // Drained: unlist, then look once more in case a writer committed meanwhile (then
            // list it again and start over from a fresh read).
            outbox::unlist(cart_key);
            return match cart_repo::load(cart_key) {
                Ok(again) if !again.cart.has_pending_events() => {
                    Ok(Step::Settled(LeftAlone::Drained))
                }
                _ => {
                    outbox::list(cart_key);
                    Ok(Step::Stale)
                }
            };
        }
        let now = now_ms();
        if let Some(claim) = loaded.cart.relay.as_ref().filter(|c| c.is_live(now)) {
            if !force {
                return Ok(Step::Settled(LeftAlone::Claimed {
                    backing_off: claim.token.is_empty(),
                }));
            }
        }
        let mut next = loaded.cart.clone();
        next.relay = Some(RelayClaim {
            token: token.clone(),
            until_ms: now + CLAIM_TTL_MS,
            failures: loaded.cart.relay.as_ref().map_or(0, |c| c.failures),
        });
        Ok(Step::Save(next))
    });
    match outcome {
        Ok(Outcome::Saved { saved, .. }) => {
            return relay_claimed(cart_key, &token, Some(saved), SWEEP_ROUNDS)
        }
        Ok(Outcome::Settled(LeftAlone::Drained)) => {}
        Ok(Outcome::Settled(LeftAlone::Claimed { backing_off })) => {
            report.backing_off = backing_off;
            report.busy = !backing_off;
        }
        // No idempotency mark is looked for.
        Ok(Outcome::AlreadyApplied(_)) => {}
        Err(Stopped::Exhausted { .. }) => report.busy = true,
        Err(Stopped::SaveFailed { .. } | Stopped::Failed(_)) => report.failed = true,
    }
    report
}
