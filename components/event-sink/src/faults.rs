//! The fault switch: lets demos and tests make produce requests fail on purpose.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultMode {
    #[default]
    None,
    /// Produce answers 503 and stores nothing.
    Unavailable,
    /// Produce answers 200 with a retriable error for every record and stores nothing.
    RetriableRecordError,
}

/// Stored at `evt:faults`, and the body of `GET`/`PUT /events/admin/faults`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultState {
    pub mode: FaultMode,
    /// How many more produce requests fail; `None` means until switched off.
    #[serde(default)]
    pub remaining: Option<u64>,
}

impl FaultState {
    /// A count of 0 (or mode `none`) means no fault: store it in one canonical form.
    pub fn normalized(self) -> Self {
        match (self.mode, self.remaining) {
            (FaultMode::None, _) | (_, Some(0)) => FaultState::default(),
            _ => self,
        }
    }

    /// The fault this produce request suffers, and the state to store afterwards when the
    /// count changed.
    pub fn consume(self) -> (Option<FaultMode>, Option<FaultState>) {
        let state = self.normalized();
        match (state.mode, state.remaining) {
            (FaultMode::None, _) => (None, None),
            (mode, None) => (Some(mode), None),
            (mode, Some(n)) => (
                Some(mode),
                Some(
                    FaultState {
                        mode,
                        remaining: Some(n - 1),
                    }
                    .normalized(),
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_api_shape() {
        let s: FaultState =
            serde_json::from_value(json!({"mode": "retriable-record-error", "remaining": 2}))
                .unwrap();
        assert_eq!(s.mode, FaultMode::RetriableRecordError);
        assert_eq!(s.remaining, Some(2));
        assert!(serde_json::from_value::<FaultState>(json!({"mode": "boom"})).is_err());
        assert!(serde_json::from_value::<FaultState>(json!({"mode": "none", "x": 1})).is_err());
        assert_eq!(
            serde_json::to_value(FaultState::default()).unwrap(),
            json!({"mode": "none", "remaining": null})
        );
    }

    #[test]
    fn counted_faults_run_out() {
        let s = FaultState {
            mode: FaultMode::Unavailable,
            remaining: Some(2),
        };
        let (active, next) = s.consume();
        assert_eq!(active, Some(FaultMode::Unavailable));
        let next = next.unwrap();
        assert_eq!(next.remaining, Some(1));
        let (active, last) = next.consume();
        assert_eq!(active, Some(FaultMode::Unavailable));
        assert_eq!(last, Some(FaultState::default()));
        assert_eq!(FaultState::default().consume(), (None, None));
    }

    #[test]
    fn unlimited_faults_need_no_write() {
        let s = FaultState {
            mode: FaultMode::RetriableRecordError,
            remaining: None,
        };
        assert_eq!(s.consume(), (Some(FaultMode::RetriableRecordError), None));
        let zero = FaultState {
            mode: FaultMode::Unavailable,
            remaining: Some(0),
        };
        assert_eq!(zero.consume(), (None, None));
    }
}
