//! Cart domain rules with no I/O: validated ids, money, cart documents and their changes,
//! request bodies, HTTP precondition parsing and the retry policy.
//!
//! Rules answer with typed errors (`RuleError`, `requests::RequestError`,
//! `precondition::EntityTagError`, `idempotency::KeyError`) whose `Display` is the wording
//! the client reads; the cart component's edge (`edge/problem.rs`) turns them into RFC 9457
//! problems, so no rule here decides a status or a problem type.
//!
//! Everything here is deterministic and plain Rust, so it is tested with `cargo test` and shared
//! by the cart component and the test host.

pub mod backoff;
pub mod breaker;
pub mod cart;
pub mod events;
pub mod idempotency;
pub mod ids;
pub mod limits;
pub mod merge;
pub mod money;
pub mod outbox;
pub mod precondition;
pub mod requests;
pub mod reservation;
pub mod rule_error;
pub mod trace_context;
pub mod view;

pub use cart::{Cart, Line, LineChange, ProductSnapshot};
pub use ids::{IdError, ProductId, StoreId, UserId};
pub use limits::Limits;
pub use money::{Currency, Money, MoneyError};
pub use reservation::{ReservationPolicy, ReservationState, ReservationStatus};
pub use rule_error::RuleError;
