//! `SpinApp`: a `spin.toml` application loaded into wasmtime and served like Spin 4.0.2.
//!
//! Each request gets a fresh `Store` and fresh instances (Spin's model for WASI P2 components):
//! dependencies first, then the component, then `wasi:http/incoming-handler`. No route is a 404
//! with an empty body; a component that fails before it has produced a response is a 500 with
//! an empty body.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::BodyExt;
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiBody, WasiHttpCtx, WasiHttpView};

use crate::allowed_hosts::AllowedHosts;
use crate::deps::{link_dependencies, DependencyInstance, DependencyInstancing};
use crate::engine::lock;
use crate::guest_log::{wasi_ctx, GuestLog, GuestOutput};
use crate::host_state::{spin_linker, Capabilities, HostState, Role, Side};
use crate::inflight::InFlight;
use crate::kv::{KvAccess, KvStore, KvStores};
use crate::manifest::{ComponentDef, Manifest};
use crate::outbound::{empty_body, full_body, OutboundHooks};
use crate::redis_host::RedisAccess;
use crate::routing::{append_spin_headers, chained_match, RouteMatch, Router};
use crate::stats::{AppStats, Stats};
use crate::variables::{resolve_app_variables, ComponentVariables, Template};

/// How a service-chained request's route headers are computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChainedRouteHeaders {
    /// Spin's source (`RouteMatch::synthetic`): as if the target were routed at `/...`, so
    /// `spin-matched-route: /...`, `spin-component-route:` empty and the whole path as
    /// `spin-path-info`.
    #[default]
    Synthetic,
    /// As if the request had come in through the target's own (first public) route.
    TargetRoute,
}

/// Options for [`SpinApp::load`], the test host's equivalent of `spin up` flags.
#[derive(Clone, Default)]
pub struct AppOptions {
    /// `--variable name=value` (first in Spin's provider order).
    pub variables: HashMap<String, String>,
    /// The `default` key-value store; pass a store to share it between apps or inspect it.
    pub kv: Option<KvStore>,
    /// Further store labels, as a runtime-config file's `[key_value_store.NAME]` defines them.
    pub extra_kv_stores: BTreeMap<String, KvStore>,
    /// Load components that list a store label nothing defines (`spin up` refuses them); their
    /// `open` of it then fails with `no-such-store`.
    pub allow_undefined_kv_labels: bool,
    /// Replaces the process environment for the `SPIN_VARIABLE_<NAME>` provider (tests use
    /// this to avoid mutating the real environment). `None` reads the process environment.
    pub env: Option<HashMap<String, String>>,
    /// Where component stdout/stderr goes.
    pub guest_output: GuestOutput,
    pub dependency_instancing: DependencyInstancing,
    pub chained_route_headers: ChainedRouteHeaders,
}

/// Why an app failed to load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    #[error(transparent)]
    Variable(#[from] crate::variables::MissingVariable),
    #[error(transparent)]
    Route(#[from] crate::routing::RouteError),
    #[error("component {component:?} uses key-value store {label:?}, which is not defined (only \"default\" exists unless a runtime config defines more)")]
    UndefinedKvLabel { component: String, label: String },
    #[error("component {component:?}: {source:#}")]
    Component {
        component: String,
        #[source]
        source: anyhow::Error,
    },
}

struct LoadedComponent {
    id: String,
    pre: ProxyPre<HostState>,
    deps: Vec<DependencyInstance>,
    main_caps: Arc<Capabilities>,
    dep_caps: Arc<Capabilities>,
    /// The first public route, for [`ChainedRouteHeaders::TargetRoute`].
    first_route: Option<String>,
}

/// A loaded Spin application.
pub struct SpinApp {
    manifest: Manifest,
    router: Router,
    components: HashMap<String, LoadedComponent>,
    default_kv: KvStore,
    variables: BTreeMap<String, String>,
    stats: Arc<Stats>,
    inflight: Arc<InFlight>,
    log: GuestLog,
    options: AppOptions,
    /// Set while [`SpinApp::serve`] runs: self requests and `spin-full-url` use it.
    listen_addr: Mutex<Option<SocketAddr>>,
    this: Weak<SpinApp>,
}

/// The client address Spin reports for requests that did not come from a socket.
const IN_PROCESS_CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
/// What Spin reports as the client of a service-chained request.
const CHAINED_CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

impl SpinApp {
    /// Loads `spin.toml`, compiles every component (once per process) and prepares instances.
    pub fn load(manifest_path: &Path, options: AppOptions) -> Result<Arc<SpinApp>> {
        let manifest = Manifest::load(manifest_path)?;
        Self::from_manifest(manifest, options)
    }

    /// Like [`SpinApp::load`] for manifest text, as if it were `spin.toml` in folder `dir`.
    pub fn load_str(text: &str, dir: &Path, options: AppOptions) -> Result<Arc<SpinApp>> {
        let manifest = Manifest::parse(text, &dir.join("spin.toml"), dir)?;
        Self::from_manifest(manifest, options)
    }

    fn from_manifest(manifest: Manifest, options: AppOptions) -> Result<Arc<SpinApp>> {
        let env = options.env.clone();
        let variables =
            resolve_app_variables(&manifest.variables, &options.variables, |k| match &env {
                Some(map) => map.get(k).cloned(),
                None => std::env::var(k).ok(),
            })
            .map_err(LoadError::from)?;
        let router = Router::build(&manifest.http_triggers).map_err(LoadError::from)?;
        let default_kv = options.kv.clone().unwrap_or_default();
        let stores = Arc::new(KvStores::new(
            default_kv.clone(),
            options.extra_kv_stores.clone(),
        ));
        let stats = Arc::new(Stats::default());

        let main_linker = spin_linker(Role::Main)?;
        let dep_linker = spin_linker(Role::Dependency)?;
        let mut components = HashMap::new();
        for def in manifest.components.values() {
            let loaded = load_component(
                def,
                &manifest,
                &variables,
                &stores,
                &options,
                &main_linker,
                &dep_linker,
                &stats,
            )?;
            components.insert(def.id.clone(), loaded);
        }

        Ok(Arc::new_cyclic(|this| SpinApp {
            manifest,
            router,
            components,
            default_kv,
            variables,
            stats,
            inflight: Arc::default(),
            log: GuestLog::default(),
            options,
            listen_addr: Mutex::new(None),
            this: this.clone(),
        }))
    }

    /// The `Arc` this app lives in (it is only ever built inside one, by `from_manifest`).
    fn arc(&self) -> Result<Arc<SpinApp>> {
        self.this
            .upgrade()
            .context("the SpinApp was dropped while handling a request")
    }

    /// The parsed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The `default` key-value store.
    pub fn kv(&self) -> &KvStore {
        &self.default_kv
    }

    /// Resolved application variables.
    pub fn variables(&self) -> &BTreeMap<String, String> {
        &self.variables
    }

    /// Public routes as `(route, component)`.
    pub fn routes(&self) -> &[(String, String)] {
        self.router.routes()
    }

    /// Counters since load (or the last [`SpinApp::reset_stats`]).
    pub fn stats(&self) -> AppStats {
        self.stats.snapshot()
    }

    pub(crate) fn stats_ref(&self) -> &Stats {
        &self.stats
    }

    pub fn reset_stats(&self) {
        self.stats.reset();
    }

    /// Waits until no component instance of this app is running. Handlers return when the
    /// response is complete, but a component may keep working after that (as on Spin); call
    /// this before inspecting stores for effects of such background work.
    pub async fn wait_idle(&self) {
        self.inflight.wait_idle().await;
    }

    /// Component instances running now.
    pub fn running_instances(&self) -> usize {
        self.inflight.count()
    }

    /// Component stdout/stderr captured so far (with [`GuestOutput::Capture`]).
    pub fn guest_output(&self) -> String {
        self.log.contents()
    }

    pub(crate) fn set_listen_addr(&self, addr: Option<SocketAddr>) {
        *lock(&self.listen_addr) = addr;
    }

    /// Handles one request in process, as Spin's HTTP trigger would, and collects the body.
    ///
    /// Requests without a `Host` header are treated as sent with `Host: localhost`; the client
    /// address reported to the component is `127.0.0.1:0`. Must run inside a Tokio runtime
    /// (components run on it); returns when the response body is complete.
    pub async fn handle(&self, req: http::Request<Bytes>) -> Result<http::Response<Bytes>> {
        let req = req.map(full_body);
        let response = self.arc()?.dispatch(req, IN_PROCESS_CLIENT).await;
        collect(response).await
    }

    /// The HTTP trigger: well-known paths, routing, then the component. Never fails: errors
    /// become Spin's 404/500 responses.
    pub(crate) async fn dispatch<B>(
        self: Arc<Self>,
        req: http::Request<B>,
        client_addr: SocketAddr,
    ) -> http::Response<HyperOutgoingBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let path = req.uri().path().to_string();
        if let Some(well_known) = path.strip_prefix("/.well-known/spin/") {
            return match well_known {
                "health" => response(200, full_body("OK")),
                "info" => response(
                    200,
                    full_body(
                        serde_json::json!({ "name": self.manifest.application_name }).to_string(),
                    ),
                ),
                _ => response(404, empty_body()),
            };
        }
        let Some(route) = self.router.route(&path) else {
            return response(404, empty_body());
        };
        let (mut parts, body) = req.into_parts();
        let host = host_of(&parts).unwrap_or_else(|| "localhost".to_string());
        if parts.headers.get(http::header::HOST).is_none() && parts.uri.authority().is_none() {
            if let Ok(v) = http::HeaderValue::from_str(&host) {
                parts.headers.insert(http::header::HOST, v);
            }
        }
        let req = http::Request::from_parts(parts, body);
        self.run_routed(req, &route, &host, client_addr).await
    }

    /// Service chaining: `http://<component>.spin.internal/...` from a component of this app.
    pub(crate) async fn dispatch_chained(
        self: &Arc<Self>,
        component: &str,
        req: http::Request<WasiBody>,
    ) -> Result<http::Response<WasiBody>, wasmtime_wasi_http::Error> {
        let Some(target) = self
            .components
            .get(component)
            .filter(|_| self.router.is_chainable(component))
        else {
            // Spin fails the calling component here ("unknown routing destination"); the
            // closest a `wasi:http` hook can do is an error the guest sees.
            return Err(wasmtime_wasi_http::Error::InternalError(Some(format!(
                "unknown routing destination '{component}': service chaining needs a component with an HTTP trigger"
            ))));
        };
        let path = req.uri().path().to_string();
        let route = match (self.options.chained_route_headers, &target.first_route) {
            (ChainedRouteHeaders::TargetRoute, Some(raw)) => {
                target_route_match(component, raw, &path)
            }
            _ => chained_match(component, &path),
        };
        Ok(self
            .clone()
            .run_routed(req, &route, "localhost", CHAINED_CLIENT)
            .await)
    }

    /// A relative URL or `self.alt`: back through the app's own router, as through the listener.
    pub(crate) async fn dispatch_self(
        self: &Arc<Self>,
        req: http::Request<WasiBody>,
    ) -> http::Response<WasiBody> {
        let listen = *lock(&self.listen_addr);
        let (mut parts, body) = req.into_parts();
        let host = listen.map_or_else(|| "localhost".to_string(), |a| a.to_string());
        if let Ok(v) = http::HeaderValue::from_str(&host) {
            parts.headers.insert(http::header::HOST, v);
        }
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        parts.uri = http::Uri::try_from(path_and_query).unwrap_or_default();
        self.clone()
            .dispatch(http::Request::from_parts(parts, body), IN_PROCESS_CLIENT)
            .await
    }

    async fn run_routed<B>(
        self: Arc<Self>,
        req: http::Request<B>,
        route: &RouteMatch,
        host: &str,
        client_addr: SocketAddr,
    ) -> http::Response<HyperOutgoingBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let Some(component) = self.components.get(&route.component) else {
            return response(500, empty_body());
        };
        let (mut parts, body) = req.into_parts();
        let scheme = parts.uri.scheme_str().unwrap_or("http").to_string();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        append_spin_headers(
            &mut parts.headers,
            &scheme,
            host,
            &path_and_query,
            route,
            client_addr,
        );
        // The component always sees scheme http and the request's authority.
        let authority = parts
            .uri
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_else(|| host.to_string());
        if let Ok(uri) = http::Uri::builder()
            .scheme("http")
            .authority(authority.as_str())
            .path_and_query(path_and_query.as_str())
            .build()
        {
            parts.uri = uri;
        }
        self.stats.record_request(&component.id);
        match self
            .clone()
            .run_component(component, http::Request::from_parts(parts, body))
            .await
        {
            Ok(resp) => resp,
            Err(e) => {
                self.log_host_error(&component.id, &e);
                response(500, empty_body())
            }
        }
    }

    fn log_host_error(&self, component: &str, e: &anyhow::Error) {
        let line = format!("[spin-test-host] component {component:?} failed: {e:?}\n");
        match self.options.guest_output {
            GuestOutput::Capture => self.log.append_host_line(&line),
            GuestOutput::Inherit => eprint!("{line}"),
            GuestOutput::Discard => {}
        }
    }

    /// Instantiates the component (and its dependencies) in a fresh store and calls its
    /// `wasi:http/incoming-handler`. Returns once the response head is available; the body
    /// streams from the still-running instance.
    async fn run_component<B>(
        self: Arc<Self>,
        component: &LoadedComponent,
        req: http::Request<B>,
    ) -> Result<http::Response<HyperOutgoingBody>>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let state = HostState {
            wasi: wasi_ctx(self.options.guest_output, &self.log),
            table: Default::default(),
            http: WasiHttpCtx::new(),
            main: Side {
                caps: component.main_caps.clone(),
                hooks: OutboundHooks {
                    app: self.clone(),
                    caps: component.main_caps.clone(),
                },
            },
            dep: Side {
                caps: component.dep_caps.clone(),
                hooks: OutboundHooks {
                    app: self.clone(),
                    caps: component.dep_caps.clone(),
                },
            },
            dep_instances: Vec::with_capacity(component.deps.len()),
        };
        let mut store = Store::new(crate::engine::engine(), state);
        let request = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)
            .map_err(anyhow::Error::from)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let out = store
            .data_mut()
            .http()
            .new_response_outparam(tx)
            .map_err(anyhow::Error::from)?;

        let pre = component.pre.clone();
        let deps: Vec<_> = component
            .deps
            .iter()
            .map(|d| (d.label.clone(), d.pre.clone()))
            .collect();
        let id = component.id.clone();
        let stats = self.stats.clone();
        let running = self.inflight.start();
        // The guest runs in its own task so it can keep streaming the body after the head.
        let task = tokio::spawn(async move {
            let _running = running;
            for (label, dep) in deps {
                let instance = dep.instantiate_async(&mut store).await?;
                stats.record_instantiation(&label);
                store.data_mut().dep_instances.push(instance);
            }
            let proxy = pre.instantiate_async(&mut store).await?;
            stats.record_instantiation(&id);
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, request, out)
                .await
        });

        match rx.await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(code)) => Err(anyhow!("component answered with error code {code:?}")),
            Err(_) => {
                let outcome = task.await.context("component task panicked")?;
                match outcome {
                    Ok(()) => Err(anyhow!("component returned without producing a response")),
                    Err(e) => Err(anyhow::Error::from(e)
                        .context("component failed before producing a response")),
                }
            }
        }
    }
}

fn host_of(parts: &http::request::Parts) -> Option<String> {
    parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
}

fn target_route_match(component: &str, raw: &str, path: &str) -> RouteMatch {
    let prefix = raw.strip_suffix("/...").unwrap_or(raw);
    let path_info = if raw.ends_with("/...") {
        path.strip_prefix(prefix).unwrap_or(path).to_string()
    } else {
        String::new()
    };
    RouteMatch {
        component: component.to_string(),
        raw_route: raw.to_string(),
        component_route: prefix.to_string(),
        path_info,
        named: Vec::new(),
    }
}

fn response(status: u16, body: WasiBody) -> http::Response<HyperOutgoingBody> {
    let mut resp = http::Response::new(body);
    *resp.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    resp
}

/// Collects a streamed response into bytes.
pub(crate) async fn collect(
    resp: http::Response<HyperOutgoingBody>,
) -> Result<http::Response<Bytes>> {
    let (parts, body) = resp.into_parts();
    let bytes = body
        .collect()
        .await
        .map_err(|e| anyhow!("response body failed mid-stream: {e}"))?
        .to_bytes();
    Ok(http::Response::from_parts(parts, bytes))
}

#[allow(clippy::too_many_arguments)] // One call site; a struct would only rename these.
fn load_component(
    def: &ComponentDef,
    manifest: &Manifest,
    variables: &BTreeMap<String, String>,
    stores: &Arc<KvStores>,
    options: &AppOptions,
    main_linker: &wasmtime::component::Linker<HostState>,
    dep_linker: &wasmtime::component::Linker<HostState>,
    stats: &Arc<Stats>,
) -> Result<LoadedComponent, LoadError> {
    let wrap = |source: anyhow::Error| LoadError::Component {
        component: def.id.clone(),
        source,
    };
    for label in &def.key_value_stores {
        if !stores.is_defined(label) && !options.allow_undefined_kv_labels {
            return Err(LoadError::UndefinedKvLabel {
                component: def.id.clone(),
                label: label.clone(),
            });
        }
    }
    let mut rendered_vars = BTreeMap::new();
    for (name, template) in &def.variables {
        let value = Template::parse(template)
            .and_then(|t| t.render(variables))
            .map_err(|e| wrap(anyhow!("variable {name:?}: {e}")))?;
        rendered_vars.insert(name.clone(), value);
    }
    let mut hosts = Vec::new();
    for entry in &def.allowed_outbound_hosts {
        let rendered = Template::parse(entry)
            .and_then(|t| t.render(variables))
            .map_err(|e| wrap(anyhow!("allowed host {entry:?}: {e}")))?;
        hosts.push(rendered);
    }
    let allowed = Arc::new(AllowedHosts::parse(&hosts).map_err(|e| wrap(e.into()))?);

    let main_caps = Arc::new(Capabilities {
        component_id: def.id.clone(),
        kv: KvAccess {
            allowed: def.key_value_stores.iter().cloned().collect(),
            stores: stores.clone(),
        },
        variables: ComponentVariables {
            component_id: def.id.clone(),
            values: rendered_vars,
            denied: false,
        },
        redis: RedisAccess {
            allowed: allowed.clone(),
            denied: false,
        },
        allowed_hosts: allowed.clone(),
        deny_all: false,
    });
    let dep_caps = if def.dependencies_inherit_configuration {
        main_caps.clone()
    } else {
        Arc::new(Capabilities {
            component_id: def.id.clone(),
            kv: KvAccess {
                allowed: BTreeSet::new(),
                stores: stores.clone(),
            },
            variables: ComponentVariables {
                component_id: def.id.clone(),
                values: BTreeMap::new(),
                denied: true,
            },
            redis: RedisAccess {
                allowed: Arc::new(AllowedHosts::default()),
                denied: true,
            },
            allowed_hosts: Arc::new(AllowedHosts::default()),
            deny_all: true,
        })
    };

    let component = crate::engine::load_component(&def.source).map_err(wrap)?;
    let mut linker = main_linker.clone();
    let deps = link_dependencies(
        &mut linker,
        &component,
        def,
        dep_linker,
        options.dependency_instancing,
        stats,
    )
    .map_err(wrap)?;
    let instance_pre = linker.instantiate_pre(&component).map_err(|e| {
        wrap(
            anyhow::Error::from(e)
                .context("the component imports something the host does not provide"),
        )
    })?;
    let pre = ProxyPre::new(instance_pre).map_err(|e| {
        wrap(
            anyhow::Error::from(e)
                .context("the component does not export wasi:http/incoming-handler@0.2"),
        )
    })?;
    let first_route = manifest.http_triggers.iter().find_map(|t| match &t.route {
        crate::manifest::Route::Path(p) if t.component == def.id => Some(p.clone()),
        _ => None,
    });
    Ok(LoadedComponent {
        id: def.id.clone(),
        pre,
        deps,
        main_caps,
        dep_caps,
        first_route,
    })
}

/// The manifest-relative path of a component's source, for tests that need the `.wasm` file.
pub fn component_source(manifest_path: &Path, component: &str) -> Result<PathBuf> {
    let manifest = Manifest::load(manifest_path)?;
    manifest
        .components
        .get(component)
        .map(|c| c.source.clone())
        .ok_or_else(|| anyhow!("{} has no component {component:?}", manifest_path.display()))
}
