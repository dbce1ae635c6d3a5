//! Links a component with a 256 KiB shadow stack instead of Rust's default 1 MiB: the build
//! script of the four app components (their Cargo.toml `build` points here).
//!
//! Spin gives every request a fresh instance from wasmtime's pooling allocator, which zeroes an
//! instance's linear memory (up to 2 MiB of it) when the instance is returned. The stack is
//! part of that memory, so its size is paid on every request whether or not it is used:
//! measured on real `spin up`, the default stack made `/healthz` about a third slower
//! (docs/benchmarks.md). 256 KiB leaves ample room for the deepest paths (serde_json stops at
//! 128 levels of nesting; the fuzz suites send deeper documents).
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=-zstack-size=262144");
    }
}
