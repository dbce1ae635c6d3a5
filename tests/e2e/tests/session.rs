//! A shopper's session on real `spin up`, and carts and holds surviving a restart.

use std::process::Command;

use cart_e2e::api::{add, cart, holds, line_quantities, put_product, set_quantity};
use cart_e2e::spin::workspace_root;
use cart_e2e::{spin_cli, SpinUp};

/// `scripts/demo-session.sh` (curl and python3 checks) against the real app: stocking, adds, a
/// quantity change, a removal, ETag/304, a stale If-Match (412), insufficient stock (409), and
/// inventory holds equal to the cart.
#[test]
fn the_scripted_shopper_session_passes() {
    let Some(spin) = spin_cli() else { return };
    let up = SpinUp::start(spin, "session", &[]);
    let out = Command::new("bash")
        .arg(workspace_root().join("scripts/demo-session.sh"))
        .arg(up.base_url())
        .output()
        .expect("run scripts/demo-session.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo session failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("session OK"), "{stdout}");
}

/// Carts, versions and holds are in the state directory, not in the process: a restart of
/// `spin up` on the same `--state-dir` serves the same carts (same ETag) and the same holds.
#[test]
fn carts_and_holds_survive_a_restart() {
    let Some(spin) = spin_cli() else { return };
    let up = SpinUp::start(spin, "restart", &[]);
    let c = up.client().clone();
    put_product(&c, "r", "lamp", 3500, 10);
    put_product(&c, "r", "desk", 19900, 3);
    add(&c, "r", "ann", "lamp", 2).expect(200);
    add(&c, "r", "ann", "desk", 1).expect(200);
    set_quantity(&c, "r", "ann", "lamp", 4).expect(200);
    add(&c, "r", "bob", "lamp", 3).expect(200);
    let ann_before = c.get("/v1/stores/r/cart").user("ann").send().expect(200);
    let etag = ann_before.header("etag").expect("ETag").to_owned();
    let lamp_holds = holds(&c, "r", "lamp");
    assert_eq!(lamp_holds.values().sum::<u64>(), 7, "{lamp_holds:?}");

    let up = up.restart(spin, &[]);
    let c = up.client().clone();
    let ann = c.get("/v1/stores/r/cart").user("ann").send().expect(200);
    assert_eq!(ann.header("etag"), Some(etag.as_str()));
    assert_eq!(ann.json()["lines"], ann_before.json()["lines"]);
    c.get("/v1/stores/r/cart")
        .user("ann")
        .header("If-None-Match", &etag)
        .send()
        .expect(304);
    assert_eq!(
        line_quantities(&cart(&c, "r", "bob")),
        [("lamp".to_owned(), 3)].into()
    );
    assert_eq!(holds(&c, "r", "lamp"), lamp_holds);
    assert_eq!(holds(&c, "r", "desk").values().sum::<u64>(), 1);
    // The restarted app keeps working on the same data: 3 lamps left for a new shopper.
    add(&c, "r", "cy", "lamp", 4).expect(409);
    add(&c, "r", "cy", "lamp", 3).expect(200);
}

/// `docs/openapi.yaml` matches the server: `scripts/contract-check.sh` (schemathesis with a
/// fixed seed, plus targeted cases for 304/401/403/409/412/413/422/431) against real Spin fails
/// on any status, problem type or body the document does not describe. `/metrics` runs behind
/// a `metrics_token`, so its 401/403 answers are checked too.
#[test]
fn the_openapi_document_matches_the_server() {
    let Some(spin) = spin_cli() else { return };
    let up = SpinUp::start(
        spin,
        "contract",
        &[
            ("admin_token", "contract-admin"),
            ("metrics_token", "contract-metrics"),
        ],
    );
    let out = Command::new("bash")
        .arg(workspace_root().join("scripts/contract-check.sh"))
        .arg(up.base_url())
        .env("CONTRACT_ADMIN_TOKEN", "contract-admin")
        .env("CONTRACT_METRICS_TOKEN", "contract-metrics")
        .output()
        .expect("run scripts/contract-check.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stdout.lines().rev().take(60).collect();
    assert!(
        out.status.success(),
        "contract check failed:\n{}\n{stderr}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
}
