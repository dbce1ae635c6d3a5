//! Reference inventory service: products per store with stock, and reservations with a TTL.
//!
//! Mounted at `/inventory/...`; reached by the cart through Spin service chaining. All state
//! lives in the key-value store "default" under `inv:` keys (see `keys`), one compare-and-swap
//! document per product, because every request gets a fresh instance.
//!
//! Every route but reading one product needs `Authorization: Bearer <reference_token>`;
//! reading a product is open only while `reference_demo_reads` is true (see
//! `spin_reference_kit::access` and `Endpoint::access`). A refused request touches nothing,
//! not even the demo catalog.

mod accounting;
mod api;
mod catalog;
mod clock;
mod error;
mod http_io;
mod ids;
mod keys;
mod model;
mod pointers;
mod reservations;
mod routes;
mod seed;

// The shared mechanics, under the paths the modules here use (`crate::kv`, `crate::problem`).
use spin_reference_kit::{access, kv, problem};

use api::{CommitInput, ProductInput, ReserveInput};
use error::ApiError;
use routes::Endpoint;
use serde_json::json;
use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(req: Request) -> Response {
    serve(&req).unwrap_or_else(|e| http_io::error(&e))
}

fn serve(req: &Request) -> Result<Response, ApiError> {
    let endpoint = routes::resolve(req.method(), req.path())?;
    let authorization = req.header("authorization").and_then(|v| v.as_str());
    access::authorize(endpoint.access(), authorization).map_err(ApiError::Denied)?;
    let kv = kv::Kv::open()?;
    if let Err(e) = seed::ensure_demo_catalog(&kv) {
        // Seeding is a convenience; the request itself can still be served.
        eprintln!(
            "{}",
            json!({"msg": "demo seeding failed", "error": format!("{e:?}")})
        );
    }
    let now = clock::now_ms();
    match endpoint {
        Endpoint::GetProduct { store, product } => Ok(http_io::json(
            200,
            &catalog::get_product(&kv, &store, &product, now)?,
        )),
        Endpoint::PutProduct { store, product } => {
            let (catalogue, stock) = http_io::json_body::<ProductInput>(req)?.validate()?;
            let view = catalog::put_product(&kv, &store, &product, catalogue, stock, now)?;
            Ok(http_io::json(200, &view))
        }
        Endpoint::ListProductReservations { store, product } => {
            let list = catalog::list_reservations(&kv, &store, &product, now)?;
            Ok(http_io::json(200, &json!({ "reservations": list })))
        }
        Endpoint::ListStoreReservations { store } => {
            let list = catalog::list_store_reservations(&kv, &store, now)?;
            Ok(http_io::json(200, &json!({ "reservations": list })))
        }
        Endpoint::GetReservation { store, reservation } => Ok(http_io::json(
            200,
            &reservations::get(&kv, &store, &reservation, now)?,
        )),
        Endpoint::PutReservation { store, reservation } => {
            let input: ReserveInput = http_io::json_body(req)?;
            input.validate()?;
            let view = reservations::reserve(&kv, &store, &reservation, &input, now)?;
            Ok(http_io::json(200, &view))
        }
        Endpoint::DeleteReservation { store, reservation } => {
            reservations::release(&kv, &store, &reservation, now)?;
            Ok(http_io::no_content())
        }
        Endpoint::Commit { store } => {
            let ids = http_io::json_body::<CommitInput>(req)?.validate()?;
            let committed = reservations::commit(&kv, &store, &ids, now)?;
            Ok(http_io::json(200, &json!({ "committed": committed })))
        }
        Endpoint::Sweep { store } => {
            let released = reservations::sweep(&kv, &store, now)?;
            Ok(http_io::json(200, &json!({ "released": released })))
        }
    }
}
