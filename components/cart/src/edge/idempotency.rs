//! `Idempotency-Key` handling around a write.
//!
//! 1. A lease on the scoped key (`idem:{user}:{hash}`) makes a concurrent duplicate a 409
//!    instead of a second execution; the lease expires if its holder dies, and is retired (its
//!    key forgotten) once the response is stored, since a key is rarely used again.
//! 2. A stored response for the key is replayed (same status, body and `ETag`, plus
//!    `Idempotent-Replayed: true`); a different request under the same key is a 422.
//! 3. Otherwise the write runs and leaves an applied-key mark inside the cart document, in the
//!    same compare-and-swap as the change. So if the process dies after the commit but before
//!    the response record is written, the retry finds the mark and does not apply the change
//!    again: the record and the cart can never disagree about whether the change happened.
//! 4. Successful (2xx) responses are stored for 24 h, before the response is sent; the
//!    in-flight lease is released after it. A duplicate that finds the lease held but the
//!    response stored is answered with the replay. Rejections changed nothing, so a retry of
//!    one simply runs again.
//!
//! Stored responses live in `RECORD_SLOTS` slots per user (`idem:{user}:slot{n}`, the slot
//! picked by the key's hash), so the records a user leaves are bounded whatever the number of
//! keys: a later key in the same slot overwrites an earlier record. A retry of an overwritten
//! key finds no record, runs, finds its mark in the cart (3.) and changes nothing; it is then
//! answered with the cart as it is now rather than the original response.

use crate::edge::http_io::{HttpRequest, HttpResponse};
use crate::edge::problem_details::{Problem, ProblemKind};
use crate::ports::idempotency_store::{self as records, Lease};
use cart_domain::idempotency::{
    fingerprint, parse_key, record_slot, scoped_key_hash, AppliedKey, StoredResponse, RETENTION_MS,
};
use cart_domain::UserId;

/// How long the in-flight lease lasts if its holder dies without releasing it.
const IN_FLIGHT_TTL_MS: u32 = 30_000;

/// An idempotent write in progress.
pub struct Guard {
    lease: Lease,
    record_key: String,
    pub mark: AppliedKey,
}

/// What to do with a write.
pub enum Begin {
    /// Run it (with a guard when the request carried a key).
    Run(Option<Guard>),
    /// Answer with this replayed response without running anything.
    Replay(HttpResponse),
}

pub fn begin(request: &HttpRequest, user: &UserId, key_required: bool) -> Result<Begin, Problem> {
    let Some(raw) = request.header("idempotency-key")? else {
        if key_required && request.method == "POST" {
            return Err(Problem::new(
                ProblemKind::IdempotencyKeyRequired,
                "this deployment requires an Idempotency-Key header on POST",
            ));
        }
        return Ok(Begin::Run(None));
    };
    let key = parse_key(raw)?;
    let hash = scoped_key_hash(user.as_str(), &key);
    let fp = fingerprint(&request.method, &request.path, &request.body);
    let lease_key = crate::ports::lock_keys::idempotency(user, &hash);
    let record_key = format!("idem:{user}:slot{}", record_slot(&hash));
    let now = crate::runtime::clock::now_ms();
    let lease = match records::try_lease(&lease_key, IN_FLIGHT_TTL_MS) {
        Ok(Some(lease)) => lease,
        Ok(None) => {
            // The holder may be past its response, only releasing the lease: its stored
            // response is then already there to replay.
            if let Some(stored) = stored_response(&record_key, &hash, now) {
                return replay_if_same(stored, &fp);
            }
            crate::ports::metrics::inc("cart_idempotency_in_flight_total");
            return Err(Problem::new(
                ProblemKind::IdempotencyKeyInUse,
                "a request with this Idempotency-Key is in flight; retry after it completes",
            )
            .with("retryAfterSeconds", 1));
        }
        Err(e) => {
            return Err(Problem::new(
                ProblemKind::LockUnavailable,
                format!("could not take the idempotency lease: {e}"),
            )
            .with("retryAfterSeconds", 1))
        }
    };
    if let Some(stored) = stored_response(&record_key, &hash, now) {
        retire_after_response(lease);
        return replay_if_same(stored, &fp);
    }
    Ok(Begin::Run(Some(Guard {
        lease,
        record_key,
        mark: AppliedKey {
            key_hash: hash,
            fingerprint: fp,
            at_ms: now,
        },
    })))
}

/// The unexpired stored response of the key `key_hash` in its slot `record_key`, if any.
fn stored_response(record_key: &str, key_hash: &str, now_ms: u64) -> Option<StoredResponse> {
    records::read(record_key).filter(|r| r.key_hash == key_hash && r.expires_at_ms > now_ms)
}

/// Replays `stored` if it answered this very request; a different request is a 422.
fn replay_if_same(stored: StoredResponse, fingerprint: &str) -> Result<Begin, Problem> {
    if stored.fingerprint != fingerprint {
        return Err(reused());
    }
    crate::ports::metrics::inc("cart_idempotency_replays_total");
    Ok(Begin::Replay(replay(stored)))
}

/// The key was used for a different request: the same answer whether the stored response or
/// the cart's mark says so.
fn reused() -> Problem {
    crate::ops::error::OpError::IdempotencyKeyReused.into()
}

fn replay(stored: StoredResponse) -> HttpResponse {
    let mut response = HttpResponse {
        status: stored.status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: stored.body.into_bytes(),
    };
    if let Some(etag) = stored.etag {
        response.headers.push(("etag".into(), etag));
    }
    response.with_header("idempotent-replayed", "true")
}

/// Stores a successful response for replay before the response is sent (so a retry that
/// arrives the moment the client has its answer finds it), and releases the in-flight lease
/// after the response: the shopper does not wait for that write, and a duplicate arriving in
/// between is answered from the stored response.
pub fn finish(guard: Guard, response: Option<&HttpResponse>) {
    if let Some(response) = response.filter(|r| (200..300).contains(&r.status)) {
        let etag = response
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("etag"))
            .map(|(_, v)| v.clone());
        let record = StoredResponse {
            key_hash: guard.mark.key_hash.clone(),
            fingerprint: guard.mark.fingerprint.clone(),
            status: response.status,
            etag,
            body: String::from_utf8_lossy(&response.body).into_owned(),
            expires_at_ms: guard.mark.at_ms + RETENTION_MS,
        };
        if let Err(e) = records::store(&guard.record_key, &record) {
            // The mark in the cart still prevents a second application.
            eprintln!(
                "{{\"level\":\"warn\",\"msg\":\"idempotency record not stored\",\"error\":\"{e}\"}}"
            );
        }
    }
    retire_after_response(guard.lease);
}

/// Gives the in-flight lease back after the response, forgetting its key (a key is rarely
/// used again): the shopper does not wait for that write.
fn retire_after_response(lease: Lease) {
    crate::runtime::deferred::defer(move || records::retire(&lease));
}
