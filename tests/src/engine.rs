//! The process-wide wasmtime `Engine` and a cache of compiled components.
//!
//! Every `CapabilityHost` in a process shares one engine, so a component file is compiled once
//! per process however many tests load it (keyed by path, modification time and size, so a
//! rebuilt `.wasm` is picked up). Compiled code is also kept in wasmtime's on-disk cache under
//! `target/`, so separate test binaries and the bench skip Cranelift after the first run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use anyhow::{Context, Result};
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

/// The shared engine.
///
/// Concurrency support (the component-model-async runtime) is off: the components are WASI P2
/// only (spin-sdk 5.2, what Spin 4.0.2 runs).
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = base_config();
        if let Some(cache) = disk_cache() {
            config.cache(Some(cache));
        }
        match Engine::new(&config) {
            Ok(engine) => engine,
            // The disk cache is only an optimisation; an engine without it behaves the same.
            Err(_) => Engine::new(&base_config()).unwrap_or_else(|e| {
                panic!("wasmtime cannot create an engine on this machine: {e:?}")
            }),
        }
    })
}

fn base_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.concurrency_support(false);
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    config
}

fn disk_cache() -> Option<wasmtime::Cache> {
    let dir = crate::testing::target_dir().join("cart-tests-wasmtime-cache");
    std::fs::create_dir_all(&dir).ok()?;
    let mut cache_config = wasmtime::CacheConfig::new();
    cache_config.with_directory(dir);
    wasmtime::Cache::new(cache_config).ok()
}

type CacheKey = (PathBuf, Option<SystemTime>, u64);

/// Compiles (or returns the already compiled) component at `path`.
pub fn load_component(path: &Path) -> Result<Component> {
    static CACHE: OnceLock<Mutex<HashMap<CacheKey, Component>>> = OnceLock::new();
    let meta = std::fs::metadata(path)
        .with_context(|| format!("component file {} is missing", path.display()))?;
    let key = (path.to_path_buf(), meta.modified().ok(), meta.len());
    let cache = CACHE.get_or_init(Default::default);
    if let Some(component) = lock(cache).get(&key) {
        return Ok(component.clone());
    }
    // Compile outside the lock: two threads may compile the same file once each, which is
    // cheaper than serialising every compilation in the process.
    let component = Component::from_file(engine(), path)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("failed to compile component {}", path.display()))?;
    lock(cache).insert(key, component.clone());
    Ok(component)
}

/// Locks a mutex, recovering from poisoning: the data behind our mutexes stays consistent even
/// if a test panicked while holding one (every critical section is a single map operation).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
