//! Host bindings for the Spin interfaces the app imports besides WASI: `wasi:keyvalue` (store,
//! atomics, batch), `fermyon:spin/variables` and `fermyon:spin/redis`, generated from the
//! project's own copies of the WIT (`wit/deps`), so the host and the guests agree by
//! construction.

wasmtime::component::bindgen!({
    path: ["../wit/deps/keyvalue", "../wit/deps/spin"],
    inline: "
        package cart-tests:host;

        world spin-host {
            import wasi:keyvalue/store@0.2.0-draft2;
            import wasi:keyvalue/atomics@0.2.0-draft2;
            import wasi:keyvalue/batch@0.2.0-draft2;
            import fermyon:spin/variables@2.0.0;
            import fermyon:spin/redis@2.0.0;
        }
    ",
    world: "spin-host",
    imports: { default: async },
    with: {
        "wasi:keyvalue/store.bucket": crate::kv::BucketHandle,
        "wasi:keyvalue/atomics.cas": crate::kv::CasHandle,
        "fermyon:spin/redis.connection": crate::redis_host::RedisConnection,
    },
});
