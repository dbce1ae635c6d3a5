//! What real Spin accepts as the app's manifest. The shipped `spin.toml` starts (every other
//! test in this suite runs on it); this pins down why its dependency map has one key for the
//! whole `storefront:cart` package: the one-key-per-interface form is refused by Spin 4.0.2.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cart_e2e::spin::{free_port, variant_manifest, workspace_root};
use cart_e2e::spin_cli;

const INTERFACES: [&str; 6] = ["documents", "kv", "locks", "inventory", "events", "config"];

#[test]
fn one_dependency_key_per_interface_of_one_package_is_refused() {
    let Some(spin) = spin_cli() else { return };
    let shipped = std::fs::read_to_string(workspace_root().join("spin.toml")).expect("spin.toml");
    let package_key =
        "\"storefront:cart@0.1.0\" = { path = \"target/wasm32-wasip2/release/spin_adapter.wasm\" }";
    assert!(
        shipped.contains(package_key),
        "spin.toml wires the adapter with one package key"
    );
    let per_interface: String = INTERFACES
        .iter()
        .map(|i| {
            format!("\"storefront:cart/{i}@0.1.0\" = {{ path = \"target/wasm32-wasip2/release/spin_adapter.wasm\" }}\n")
        })
        .collect();
    let manifest = variant_manifest("six-keys", |text| {
        text.replace(package_key, per_interface.trim_end())
    });
    let dir = manifest
        .parent()
        .expect("the variant's folder")
        .to_path_buf();

    let mut child = Command::new(spin)
        .arg("up")
        .arg("-f")
        .arg(&manifest)
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn spin up");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll spin up") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("spin up served the per-interface manifest instead of refusing it");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = child.wait_with_output().expect("spin up output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("failed to resolve dependencies for component \"cart\"")
            && stderr.contains("has already been registered in the graph"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
