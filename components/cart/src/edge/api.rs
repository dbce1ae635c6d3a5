//! The cart HTTP API: validates input, resolves the caller, runs the operation and renders
//! the response. Every rejection happens before anything is stored.

use crate::edge::admin;
use crate::edge::http_io::{HttpRequest, HttpResponse};
use crate::edge::idempotency::{self, Begin};
use crate::edge::identity;
use crate::edge::problem_details::{Problem, ProblemKind};
use crate::edge::routes::{OperatorRoute, Route, ShopperRoute};
use crate::ops::checkout;
use crate::ops::clear;
use crate::ops::line_change::{self, LineRequest};
use crate::ops::merge;
use crate::ports::cart_repo;
use crate::ports::settings::{Settings, WriteSettings};
use crate::runtime::timing::{measure, Phase};
use cart_domain::precondition::{etag, parse_entity_tags, EntityTags};
use cart_domain::requests::{check_body_size, check_json_content_type, AddItem, SetQuantity};
use cart_domain::view::{CartView, SummaryView};
use cart_domain::{Cart, LineChange, ProductId, StoreId, UserId};

/// The name of the operation, for the log line.
pub fn operation_name(route: &Result<Route, Problem>) -> &'static str {
    match route {
        Ok(Route::Operator(op)) => match op {
            OperatorRoute::Health => "health",
            OperatorRoute::Metrics => "metrics",
            OperatorRoute::InvalidateProduct => "admin_cache_invalidate",
            OperatorRoute::SweepReservations { .. } => "admin_reservation_sweep",
            OperatorRoute::Relay { .. } => "admin_outbox_relay",
        },
        Ok(Route::IssueGuestToken) => "issue_guest_token",
        Ok(Route::Shopper(op)) => match op {
            ShopperRoute::GetCart { .. } => "get_cart",
            ShopperRoute::Summary { .. } => "get_summary",
            ShopperRoute::ClearCart { .. } => "clear_cart",
            ShopperRoute::AddItem { .. } => "add_item",
            ShopperRoute::Checkout { .. } => "checkout",
            ShopperRoute::MergeGuestCart { .. } => "merge_guest_cart",
            ShopperRoute::SetQuantity { .. } => "set_quantity",
            ShopperRoute::RemoveItem { .. } => "remove_item",
        },
        Err(_) => "unrouted",
    }
}

pub fn dispatch(request: &HttpRequest, route: Result<Route, Problem>) -> HttpResponse {
    match route.and_then(|r| run(request, r)) {
        Ok(response) => response,
        Err(problem) => HttpResponse::problem(&problem),
    }
}

fn run(request: &HttpRequest, route: Route) -> Result<HttpResponse, Problem> {
    match route {
        Route::Operator(op) => run_operator(request, op),
        Route::IssueGuestToken => issue_guest_token(),
        // Loaded here, not before routing: health checks, scrapes and guest tokens need none of
        // it, and every variable read is a host call (see `settings::GROUPS`).
        Route::Shopper(op) => run_shopper(request, op, &Settings::load()),
    }
}

fn run_operator(request: &HttpRequest, route: OperatorRoute) -> Result<HttpResponse, Problem> {
    match route {
        OperatorRoute::Health => Ok(HttpResponse::json(
            200,
            &serde_json::json!({"status": "ok"}),
        )),
        OperatorRoute::Metrics => {
            admin::authorize_metrics(request)?;
            metrics_response()
        }
        OperatorRoute::SweepReservations { store } => {
            admin::authorize(request)?;
            let store = store_id(&store, &Settings::load())?;
            let report = crate::ops::orphan_sweep::sweep_orphans(&store)?;
            Ok(HttpResponse::json(200, &report))
        }
        OperatorRoute::InvalidateProduct => {
            admin::authorize(request)?;
            invalidate_product(request, &Settings::load())
        }
        OperatorRoute::Relay { force, limit } => {
            admin::authorize(request)?;
            let report = crate::ops::relay::sweep(limit, force)?;
            Ok(HttpResponse::json(200, &report))
        }
    }
}

fn run_shopper(
    request: &HttpRequest,
    route: ShopperRoute,
    settings: &Settings,
) -> Result<HttpResponse, Problem> {
    let (user, is_guest) = identity::caller_kind(request, settings)?;
    match route {
        ShopperRoute::MergeGuestCart { store } => {
            let store = store_id(&store, settings)?;
            if is_guest {
                return Err(Problem::new(
                    ProblemKind::Forbidden,
                    "sign in first: a guest cart is merged into a signed-in shopper's cart",
                ));
            }
            let body: MergeBody =
                serde_json::from_slice(json_body(request, settings)?).map_err(|e| {
                    Problem::new(ProblemKind::InvalidBody, format!("invalid JSON body: {e}"))
                })?;
            let guest = verify_guest_token(&body.guest_token)?;
            let op = WriteOp::Merge { store, guest };
            write(request, &user, op, settings)
        }
        ShopperRoute::GetCart { store } => {
            let store = store_id(&store, settings)?;
            get_cart(request, &store, &user)
        }
        ShopperRoute::Summary { store } => {
            let store = store_id(&store, settings)?;
            get_summary(request, &store, &user)
        }
        ShopperRoute::AddItem { store } => {
            let store = store_id(&store, settings)?;
            let if_match = if_match(request)?;
            let add = AddItem::parse(json_body(request, settings)?, &settings.limits())?;
            let op = WriteOp::Line {
                store,
                product: add.product_id,
                change: LineChange::Add(add.quantity),
                if_match,
            };
            write(request, &user, op, settings)
        }
        ShopperRoute::SetQuantity { store, product } => {
            let store = store_id(&store, settings)?;
            let product = product_id(&product, settings)?;
            let if_match = if_match(request)?;
            let set = SetQuantity::parse(json_body(request, settings)?, &settings.limits())?;
            let op = WriteOp::Line {
                store,
                product,
                change: LineChange::Set(set.quantity),
                if_match,
            };
            write(request, &user, op, settings)
        }
        ShopperRoute::RemoveItem { store, product } => {
            let op = WriteOp::Line {
                store: store_id(&store, settings)?,
                product: product_id(&product, settings)?,
                change: LineChange::Remove,
                if_match: if_match(request)?,
            };
            write(request, &user, op, settings)
        }
        ShopperRoute::Checkout { store } => {
            let store = store_id(&store, settings)?;
            if !request.body.is_empty() {
                let body = json_body(request, settings)?;
                serde_json::from_slice::<EmptyBody>(body).map_err(|e| {
                    Problem::new(
                        ProblemKind::InvalidBody,
                        format!("checkout takes no fields: {e}"),
                    )
                })?;
            }
            let op = WriteOp::Checkout {
                store,
                if_match: if_match(request)?,
            };
            write(request, &user, op, settings)
        }
        ShopperRoute::ClearCart { store } => {
            let op = WriteOp::Clear {
                store: store_id(&store, settings)?,
                if_match: if_match(request)?,
            };
            write(request, &user, op, settings)
        }
    }
}

/// A validated write, ready to run.
enum WriteOp {
    Line {
        store: StoreId,
        product: ProductId,
        change: LineChange,
        if_match: Option<EntityTags>,
    },
    Clear {
        store: StoreId,
        if_match: Option<EntityTags>,
    },
    Checkout {
        store: StoreId,
        if_match: Option<EntityTags>,
    },
    Merge {
        store: StoreId,
        guest: UserId,
    },
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MergeBody {
    guest_token: String,
}

fn verify_guest_token(token: &str) -> Result<UserId, Problem> {
    let guests = identity::guest_tokens()?;
    let claims = guests
        .verify(token, crate::runtime::clock::now_ms() / 1000)
        .map_err(|e| {
            Problem::new(
                ProblemKind::InvalidGuestToken,
                format!("the guest token was refused: {e}"),
            )
            .with("code", e.code())
        })?;
    UserId::parse(&claims.subject)
        .map_err(|e| Problem::new(ProblemKind::InvalidGuestToken, format!("guest subject {e}")))
}

/// A new guest identity: a random id in a token signed with `guest_token_secret`.
fn issue_guest_token() -> Result<HttpResponse, Problem> {
    let guests = identity::guest_tokens()?;
    let ttl_seconds = crate::ports::settings::var("guest_token_ttl_seconds")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(30 * 24 * 3600);
    let id: String = wasi::random::random::get_random_bytes(12)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let now = crate::runtime::clock::now_ms() / 1000;
    let token = guests
        .issue(&id, now, ttl_seconds)
        .map_err(|e| Problem::new(ProblemKind::Internal, format!("cannot issue: {e}")))?;
    Ok(HttpResponse::json(
        201,
        &serde_json::json!({
            "token": token,
            "userId": format!("{}{id}", cart_auth::GUEST_SUBJECT_PREFIX),
            "expiresAt": now + ttl_seconds,
        }),
    )
    .with_header("cache-control", "no-store"))
}

/// Checkout's optional body: an empty JSON object.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

/// Runs a write inside the idempotency protocol (see `idempotency`). Input has been fully
/// validated before this point, so a rejected request never leaves anything behind.
fn write(
    request: &HttpRequest,
    user: &UserId,
    op: WriteOp,
    settings: &Settings,
) -> Result<HttpResponse, Problem> {
    let write_settings = WriteSettings::load();
    let guard = match idempotency::begin(request, user, write_settings.idempotency_key_required)? {
        Begin::Replay(response) => return Ok(response),
        Begin::Run(guard) => guard,
    };
    let mark = guard.as_ref().map(|g| g.mark.clone());
    let committed = match op {
        WriteOp::Line {
            store,
            product,
            change,
            if_match,
        } => {
            let req = LineRequest {
                store: &store,
                user,
                product: &product,
                change,
                if_match,
                mark,
            };
            line_change::change_line(&req, settings, &write_settings).map(|c| (store, c))
        }
        WriteOp::Clear { store, if_match } => {
            clear::clear_cart(&store, user, if_match, mark, "requested").map(|c| (store, c))
        }
        WriteOp::Merge { store, guest } => {
            merge::merge_guest_cart(&store, user, &guest, settings, &write_settings)
                .map(|c| (store, c))
        }
        WriteOp::Checkout { store, if_match } => {
            checkout::checkout(&store, user, if_match, mark, &write_settings).map(|c| (store, c))
        }
    };
    let result = committed
        .map_err(Problem::from)
        .and_then(|(store, c)| cart_response(&store, user, &c.cart));
    if let Some(guard) = guard {
        idempotency::finish(guard, result.as_ref().ok());
    }
    result
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct InvalidateBody {
    store_id: String,
    product_id: String,
}

fn invalidate_product(request: &HttpRequest, settings: &Settings) -> Result<HttpResponse, Problem> {
    let body: InvalidateBody = serde_json::from_slice(json_body(request, settings)?)
        .map_err(|e| Problem::new(ProblemKind::InvalidBody, format!("invalid JSON body: {e}")))?;
    let store = store_id(&body.store_id, settings)?;
    let product = product_id(&body.product_id, settings)?;
    crate::ports::product_cache::invalidate(store.as_str(), product.as_str()).map_err(|e| {
        Problem::new(
            ProblemKind::StoreUnavailable,
            format!("could not invalidate: {e}"),
        )
    })?;
    Ok(HttpResponse::empty(204))
}

/// Stored counters (a fixed set of keys, see `metric_registry`) plus live gauges (breaker
/// phase, events waiting in outboxes).
fn metrics_response() -> Result<HttpResponse, Problem> {
    use crate::ports::outbox::metric_keys;
    let scrape = crate::ports::metrics::Scrape::read().map_err(|e| {
        Problem::new(
            ProblemKind::StoreUnavailable,
            format!("metrics unavailable: {e}"),
        )
    })?;
    let pending = scrape.value(metric_keys::COMMITTED) - scrape.value(metric_keys::ACKED);
    let breaker = i64::from(crate::ports::breaker::current_phase().gauge());
    let body = scrape.render(&[
        (
            "cart_outbox_pending_events",
            "Domain events committed to cart outboxes and not yet acknowledged.",
            pending.max(0),
        ),
        (
            "cart_inventory_breaker_state",
            "Inventory circuit breaker: 0 closed, 1 half-open, 2 open.",
            breaker,
        ),
    ]);
    Ok(HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "text/plain; version=0.0.4".into())],
        body: body.into_bytes(),
    })
}

fn store_id(raw: &str, settings: &Settings) -> Result<StoreId, Problem> {
    StoreId::parse_with_max(raw, settings.max_id_len).map_err(|e| {
        Problem::new(ProblemKind::InvalidId, format!("storeId {e}")).with("field", "storeId")
    })
}

fn product_id(raw: &str, settings: &Settings) -> Result<ProductId, Problem> {
    ProductId::parse_with_max(raw, settings.max_id_len).map_err(|e| {
        Problem::new(ProblemKind::InvalidId, format!("productId {e}")).with("field", "productId")
    })
}

fn if_match(request: &HttpRequest) -> Result<Option<EntityTags>, Problem> {
    match request.header("if-match")? {
        Some(raw) => Ok(Some(parse_entity_tags(raw)?)),
        None => Ok(None),
    }
}

fn json_body<'a>(request: &'a HttpRequest, settings: &Settings) -> Result<&'a [u8], Problem> {
    check_json_content_type(request.header("content-type")?)?;
    check_body_size(&request.body, &settings.limits())?;
    Ok(&request.body)
}

/// The cart as JSON with its `ETag` (the user-visible revision).
fn cart_response(store: &StoreId, user: &UserId, cart: &Cart) -> Result<HttpResponse, Problem> {
    let view = CartView::build(
        store.as_str(),
        user.as_str(),
        cart.revision,
        cart,
        crate::runtime::clock::now_ms(),
    )
    .map_err(|e| Problem::new(ProblemKind::Internal, format!("cart totals failed: {e}")))?;
    Ok(HttpResponse::json(200, &view)
        .with_header("etag", etag(cart.revision))
        .with_header("cache-control", "private, no-cache"))
}

fn not_modified(request: &HttpRequest, version: u64) -> Result<bool, Problem> {
    Ok(match request.header("if-none-match")? {
        Some(raw) => parse_entity_tags(raw)?.matches_weak(version),
        None => false,
    })
}

fn get_cart(
    request: &HttpRequest,
    store: &StoreId,
    user: &UserId,
) -> Result<HttpResponse, Problem> {
    let loaded = crate::ops::lifecycle::load_for_read(store, user)?;
    let revision = loaded.cart.revision;
    if not_modified(request, revision)? {
        return Ok(HttpResponse::empty(304).with_header("etag", etag(revision)));
    }
    cart_response(store, user, &loaded.cart)
}

fn get_summary(
    request: &HttpRequest,
    store: &StoreId,
    user: &UserId,
) -> Result<HttpResponse, Problem> {
    let key = cart_repo::cart_key(store, user);
    let loaded = measure(Phase::Store, || cart_repo::load(&key))?;
    let revision = loaded.cart.revision;
    if not_modified(request, revision)? {
        return Ok(HttpResponse::empty(304)
            .with_header("etag", etag(revision))
            .with_header("cache-control", "private, max-age=5"));
    }
    let view = SummaryView::build(store.as_str(), revision, &loaded.cart)
        .map_err(|e| Problem::new(ProblemKind::Internal, format!("cart totals failed: {e}")))?;
    Ok(HttpResponse::json(200, &view)
        .with_header("etag", etag(revision))
        .with_header("cache-control", "private, max-age=5"))
}

#[cfg(test)]
mod tests {
    use super::operation_name;
    use crate::edge::problem_details::{Problem, ProblemKind};
    use crate::edge::routes::{OperatorRoute, Route, ShopperRoute};
    use crate::runtime::metric_registry::OPERATIONS;

    /// Every operation a request can be counted under is in the metrics registry (and nothing
    /// else is): `/metrics` reads only registered series.
    #[test]
    fn every_operation_is_registered_for_metrics() {
        let s = || "s".to_owned();
        let operator = |op| Ok(Route::Operator(op));
        let shopper = |op| Ok(Route::Shopper(op));
        let routes = [
            operator(OperatorRoute::Health),
            operator(OperatorRoute::Metrics),
            operator(OperatorRoute::SweepReservations { store: s() }),
            operator(OperatorRoute::InvalidateProduct),
            operator(OperatorRoute::Relay {
                force: false,
                limit: 1,
            }),
            Ok(Route::IssueGuestToken),
            shopper(ShopperRoute::GetCart { store: s() }),
            shopper(ShopperRoute::Summary { store: s() }),
            shopper(ShopperRoute::ClearCart { store: s() }),
            shopper(ShopperRoute::Checkout { store: s() }),
            shopper(ShopperRoute::MergeGuestCart { store: s() }),
            shopper(ShopperRoute::AddItem { store: s() }),
            shopper(ShopperRoute::SetQuantity {
                store: s(),
                product: s(),
            }),
            shopper(ShopperRoute::RemoveItem {
                store: s(),
                product: s(),
            }),
            Err(Problem::new(ProblemKind::NotFound, "x")),
        ];
        let mut names: Vec<&str> = routes.iter().map(operation_name).collect();
        // A request that could not be read (lib.rs).
        names.push("unread");
        names.sort_unstable();
        let mut registered = OPERATIONS.to_vec();
        registered.sort_unstable();
        assert_eq!(names, registered);
    }
}
