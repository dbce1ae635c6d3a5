//! The one compare-and-swap every cart change ends with, and the one loop that retries it.
//!
//! Whatever the change (a line, a clear, a checkout, a merge, an abandoned cart, a relay's
//! trim), it runs through [`run`]: check the idempotency mark, let the operation decide the
//! next version from the current one, write it, and on a lost race count the conflict, wait
//! (jittered), re-read and decide again, a bounded number of times ([`Retry`]). The write is
//! done here, so the bookkeeping that must ride in the same write lives in one place: the
//! predecessor link, the outbox's index marker, the relay claim, and the committed events'
//! metrics. On Spin's default store every key-value write is a disk transaction, so this path
//! writes only the document itself in the common case (the marker only once per cart, see
//! `outbox::ensure_listed`).

use crate::ops::error::{Contended, OpError};
use crate::ports::cart_repo::{self, Loaded};
use crate::ports::outbox;
use crate::runtime::clock;
use crate::runtime::timing::{measure, Phase};
use cart_domain::backoff::backoff_delay_ms;
use cart_domain::idempotency::AppliedKey;
use cart_domain::Cart;
use std::cell::RefCell;

/// How a change retries after losing its compare-and-swap race. The policies differ on
/// purpose; each says why.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Decisions written before giving up.
    pub attempts: u32,
    /// The wait before re-reading after a lost race; `None` re-reads at once.
    pub backoff: Option<Backoff>,
    /// Whether a lost race counts in `cart_version_conflicts_total`.
    pub count_conflicts: bool,
    /// Whether the reads and writes count as the request's `store` time (`Server-Timing`, the
    /// per-dependency histogram).
    pub timed: bool,
}

/// Full-jitter exponential backoff: up to `base_ms` after the first lost race, doubling per
/// race, at most `cap_ms`, so many writers to one cart spread out instead of colliding again
/// in lockstep.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base_ms: u64,
    pub cap_ms: u64,
}

impl Retry {
    /// A change the shopper asked for (a clear, a merge, a checkout's intent and its
    /// completion): another line of the same cart changing meanwhile is an ordinary race, and
    /// the shopper should not see it, so 32 attempts with backoff.
    pub const CHANGE: Retry = Retry {
        attempts: 32,
        backoff: Some(Backoff {
            base_ms: 2,
            cap_ms: 50,
        }),
        count_conflicts: true,
        timed: true,
    };
    /// A line change: as [`Retry::CHANGE`], but each wait is up to twice as long. Its loop
    /// always counted attempts from 1 where the others counted from 0; kept, so contended
    /// carts retry as they did (100 concurrent adds to one cart are a tested case).
    pub const LINE_CHANGE: Retry = Retry {
        backoff: Some(Backoff {
            base_ms: 4,
            cap_ms: 50,
        }),
        ..Retry::CHANGE
    };
    /// A read saving the hold states it re-confirmed: the shopper is waiting for a read, the
    /// holds are refreshed in inventory either way and a later request saves the statuses,
    /// so 4 quick attempts without waits.
    pub const READ_REPAIR: Retry = Retry {
        attempts: 4,
        backoff: None,
        ..Retry::CHANGE
    };
    /// Dropping the intent of a checkout the inventory refused: as [`Retry::CHANGE`], but its
    /// lost races were never counted in `cart_version_conflicts_total`; kept, so the series
    /// means what it meant.
    pub const DROP_INTENT: Retry = Retry {
        count_conflicts: false,
        ..Retry::CHANGE
    };
    /// The relay's own writes (removing published events, its claim, its backoff), after the
    /// response or in the admin sweep: a lost race means a writer added events or another
    /// relay took over, which one re-read shows; nobody waits, so 8 attempts without waits,
    /// uncounted, and untimed (only the publish itself is a dependency the request timed).
    pub const RELAY: Retry = Retry {
        attempts: 8,
        backoff: None,
        count_conflicts: false,
        timed: false,
    };
}

/// What an operation decided from the cart version it was shown.
// `Save` is the common answer, and each is moved once: boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Step<T> {
    /// Write this cart as the next version.
    Save(Cart),
    /// Nothing to write; the operation's answer.
    Settled(T),
    /// The version is already stale (a fenced reservation found a newer writer): handled like
    /// a lost race.
    Stale,
}

/// How [`run`] ended well.
// `Saved` is the common end, and each is moved once: boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Outcome<T> {
    /// The change decided from `base` was written as `saved`.
    Saved { base: Loaded, saved: Loaded },
    /// The operation settled without a write.
    Settled(T),
    /// The cart already carries the request's idempotency mark: an earlier attempt whose
    /// response was lost committed the change. `latest` is the cart as it is.
    AlreadyApplied(Loaded),
}

impl Outcome<std::convert::Infallible> {
    /// The cart after the change: the version written, or the one that already had it.
    pub fn into_loaded(self) -> Loaded {
        match self {
            Outcome::Saved { saved, .. } => saved,
            Outcome::AlreadyApplied(latest) => latest,
            Outcome::Settled(never) => match never {},
        }
    }
}

/// Why [`run`] gave up.
pub enum Stopped {
    /// Every attempt lost its race; `latest` is the version the last one decided from.
    Exhausted { attempts: u32, latest: Box<Loaded> },
    /// The store failed the write (not a race); `latest` is the version it was decided from.
    SaveFailed { error: OpError, latest: Box<Loaded> },
    /// A re-read failed, the idempotency mark is another request's, or the operation refused.
    Failed(OpError),
}

impl Stopped {
    /// The operation's error, `what` kept changing when every attempt lost.
    pub fn or_kept_changing(self, what: Contended) -> OpError {
        match self {
            Stopped::Exhausted { .. } => OpError::KeptChanging(what),
            Stopped::SaveFailed { error, .. } | Stopped::Failed(error) => error,
        }
    }
}

/// Decides and writes the next version of the cart at `key`, starting from `first` (which
/// the caller has read, and usually checked): on each attempt the idempotency `mark` is
/// looked for first (found: the change is already there), then `decide` says what to write,
/// and the write is a compare-and-swap against the version decided from. A lost race is
/// counted, waited out and re-read, up to `retry.attempts` decisions; after the last one
/// nothing more is read.
pub fn run<T>(
    key: &str,
    first: Loaded,
    retry: Retry,
    mark: Option<&AppliedKey>,
    mut decide: impl FnMut(&Loaded) -> Result<Step<T>, OpError>,
) -> Result<Outcome<T>, Stopped> {
    let mut loaded = first;
    for attempt in 0..retry.attempts {
        if carries(mark, &loaded.cart).map_err(Stopped::Failed)? {
            return Ok(Outcome::AlreadyApplied(loaded));
        }
        match decide(&loaded).map_err(Stopped::Failed)? {
            Step::Settled(answer) => return Ok(Outcome::Settled(answer)),
            Step::Stale => {}
            Step::Save(next) => match write(key, &loaded, next, retry.timed) {
                Ok(saved) => {
                    return Ok(Outcome::Saved {
                        base: loaded,
                        saved,
                    })
                }
                Err(SaveError::Conflict) => {}
                Err(SaveError::Failed(error)) => {
                    return Err(Stopped::SaveFailed {
                        error,
                        latest: Box::new(loaded),
                    })
                }
            },
        }
        if retry.count_conflicts {
            crate::ports::metrics::inc("cart_version_conflicts_total");
        }
        if attempt + 1 == retry.attempts {
            break;
        }
        if let Some(backoff) = retry.backoff {
            clock::sleep_ms(backoff_delay_ms(
                attempt,
                backoff.base_ms,
                backoff.cap_ms,
                clock::random_unit(),
            ));
        }
        loaded = store_time(retry.timed, || cart_repo::load(key))
            .map_err(|e| Stopped::Failed(e.into()))?;
    }
    Err(Stopped::Exhausted {
        attempts: retry.attempts,
        latest: Box::new(loaded),
    })
}

/// Runs `f` as store time of the request when `timed`.
fn store_time<T>(timed: bool, f: impl FnOnce() -> T) -> T {
    if timed {
        measure(Phase::Store, f)
    } else {
        f()
    }
}

/// Why a write did not happen.
enum SaveError {
    /// Someone else moved the head.
    Conflict,
    Failed(OpError),
}

impl From<cart_repo::SaveError> for SaveError {
    fn from(e: cart_repo::SaveError) -> Self {
        match e {
            cart_repo::SaveError::Conflict => SaveError::Conflict,
            cart_repo::SaveError::Failed(e) => SaveError::Failed(e.into()),
        }
    }
}

/// The committed result of a change.
pub struct Committed {
    pub cart: Cart,
}

/// When the cart already carries this idempotency key's mark, the change was committed by an
/// earlier attempt whose response was lost: answer with the cart as it is, apply nothing.
pub fn already_applied(
    mark: Option<&AppliedKey>,
    loaded: &Loaded,
) -> Result<Option<Committed>, OpError> {
    Ok(carries(mark, &loaded.cart)?.then(|| Committed {
        cart: loaded.cart.clone(),
    }))
}

/// Whether `cart` carries `mark` (a mark of the same key for a different request is an
/// error: the key was reused).
fn carries(mark: Option<&AppliedKey>, cart: &Cart) -> Result<bool, OpError> {
    let Some(mark) = mark else { return Ok(false) };
    match cart.applied(&mark.key_hash) {
        None => Ok(false),
        Some(done) if done.fingerprint != mark.fingerprint => Err(OpError::IdempotencyKeyReused),
        Some(_) => Ok(true),
    }
}

thread_local! {
    /// Relay claims this request won, to publish after the response: (cart key, token).
    static CLAIMED: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
    /// This request's relay token (one per request; a claim names its request).
    static TOKEN: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// This request's relay token (the same for every claim the request makes).
pub fn request_token() -> String {
    TOKEN.with(|t| {
        t.borrow_mut()
            .get_or_insert_with(|| format!("{:016x}", clock::random_u64()))
            .clone()
    })
}

/// Writes `next` as the version after `base`. On success the new version is returned, and if
/// the write claimed the cart's relay, the relay is queued to run after the response.
fn write(key: &str, base: &Loaded, mut next: Cart, timed: bool) -> Result<Loaded, SaveError> {
    next.previous_version = base.version;
    stamp_trace(&mut next, base.cart.last_sequence);
    let new_events: Vec<String> = next
        .outbox
        .iter()
        .filter(|e| e.event.sequence > base.cart.last_sequence)
        .map(|e| e.event.id.clone())
        .collect();
    // A write without new events (a relay's trim, a checkout's intent) needs no index, spill
    // or claim.
    let claim = if new_events.is_empty() {
        None
    } else {
        // Listed for the sweep before the events exist, so a crash after the commit cannot
        // leave them where no sweep looks.
        store_time(timed, || outbox::ensure_listed(key))
            .map_err(|e| SaveError::Failed(e.into()))?;
        store_time(timed, || {
            spill_overflow(key, &mut next, base.cart.last_sequence)
        });
        let token = request_token();
        let now = clock::now_ms();
        next.claim_relay(&token, now, now + outbox::CLAIM_TTL_MS)
            .then_some(token)
    };
    let version =
        store_time(timed, || cart_repo::save(key, base.version, &next)).map_err(SaveError::from)?;
    for id in &new_events {
        crate::ports::metrics::add_for_event(outbox::metric_keys::COMMITTED, id, 1);
    }
    if let Some(token) = claim {
        CLAIMED.with(|c| c.borrow_mut().push((key.to_owned(), token)));
    }
    Ok(Loaded {
        version,
        cart: next,
    })
}

/// Moves the oldest committed events out of an inline outbox that grew past its limit (the
/// event pipeline is down) into chunk records, so the document stays bounded. Best effort: if
/// a chunk cannot be written the events simply stay inline this time.
fn spill_overflow(key: &str, next: &mut Cart, committed_through: u64) {
    use cart_domain::outbox::{chunk_key, plan_spill, Spill};
    let spilled_through = next.spill.map_or(0, |s| s.through);
    let plan = plan_spill(&next.outbox, committed_through, spilled_through);
    let mut moved = 0usize;
    let mut through = None;
    for (from, last, events) in &plan {
        if !outbox::write_chunk(&chunk_key(key, *from, *last), events) {
            break;
        }
        moved += events.len();
        through = Some(*last);
    }
    let Some(through) = through else { return };
    let from = next
        .spill
        .map_or_else(|| plan[0].0, |existing| existing.from);
    next.outbox.drain(..moved);
    next.spill = Some(Spill { from, through });
}

/// Puts this request's trace context on the events it adds.
fn stamp_trace(next: &mut Cart, last_sequence: u64) {
    let Some((traceparent, tracestate)) = crate::ports::trace::current() else {
        return;
    };
    for entry in next
        .outbox
        .iter_mut()
        .filter(|e| e.event.sequence > last_sequence)
    {
        entry.event.traceparent = Some(traceparent.clone());
        entry.event.tracestate = tracestate.clone();
    }
}

/// The relays this request claimed (taken: each runs once).
pub fn take_claimed() -> Vec<(String, String)> {
    CLAIMED.with(|c| std::mem::take(&mut *c.borrow_mut()))
}
