//! The fault switch in key-value (`evt:faults`, plain JSON).

use crate::faults::{FaultMode, FaultState};
use crate::keys;
use crate::kv::{Kv, KvError};

pub fn load(kv: &Kv) -> Result<FaultState, KvError> {
    match kv.get_raw(keys::FAULTS)? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| KvError::Corrupt {
            key: keys::FAULTS.to_owned(),
            reason: e.to_string(),
        }),
        None => Ok(FaultState::default()),
    }
}

pub fn save(kv: &Kv, state: FaultState) -> Result<FaultState, KvError> {
    let state = state.normalized();
    let bytes = serde_json::to_vec(&state).map_err(|e| KvError::Corrupt {
        key: keys::FAULTS.to_owned(),
        reason: e.to_string(),
    })?;
    kv.set_raw(keys::FAULTS, &bytes)?;
    Ok(state)
}

/// The fault this produce request suffers, counting it down.
///
/// The count-down is a plain read-then-write, not a CAS: concurrent produce requests can both
/// consume the same count, so "remaining: 3" means "about 3" under concurrency. Good enough for
/// a demo switch, and it keeps produce at one read when no fault is set.
pub fn take(kv: &Kv) -> Result<Option<FaultMode>, KvError> {
    let (active, next) = load(kv)?.consume();
    if let Some(next) = next {
        save(kv, next)?;
    }
    Ok(active)
}
