//! Spin's HTTP router and the `spin-*` headers a component sees.
//!
//! Matching is Spin's: the same `routefinder` crate with routes `/x/...` rewritten to `/x/*`,
//! so exact routes beat wildcards and the longest matching prefix wins; trailing and repeated
//! slashes are forgiven; later duplicates of a route replace earlier ones. Private routes
//! (`{ private = true }`) are not routable but the component can still be reached by service
//! chaining, which uses a synthetic `/...` match exactly as Spin's outbound interceptor does.

use std::collections::HashMap;
use std::net::SocketAddr;

use http::{HeaderName, HeaderValue};

use crate::manifest::{HttpTrigger, Route};

/// Why the routes could not be built.
#[derive(Debug, thiserror::Error)]
#[error("route {route:?} of component {component:?}: {reason}")]
pub struct RouteError {
    pub route: String,
    pub component: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
struct RouteHandler {
    component: String,
    /// The route as written (with any base, which is always `/` for a v2 manifest).
    raw_route: String,
    /// `Some(prefix)` for a trailing-wildcard route.
    wildcard_prefix: Option<String>,
}

/// The app's routing table.
pub struct Router {
    router: routefinder::Router<RouteHandler>,
    /// Components that have an HTTP trigger (public or private): service chaining targets.
    chainable: HashMap<String, ()>,
    /// Public routes as `(route, component)`, in manifest order, for display.
    routes: Vec<(String, String)>,
}

/// A request path matched to a component.
#[derive(Debug, Clone)]
pub struct RouteMatch {
    pub component: String,
    /// `spin-matched-route` / `spin-raw-component-route`.
    pub raw_route: String,
    /// `spin-component-route`: the route without its trailing `/...`.
    pub component_route: String,
    /// `spin-path-info`: the part of the path the wildcard matched.
    pub path_info: String,
    /// Named `:param` captures (`spin-path-match-<name>`).
    pub named: Vec<(String, String)>,
}

impl Router {
    pub fn build(triggers: &[HttpTrigger]) -> Result<Self, RouteError> {
        let mut by_route: Vec<(String, String)> = Vec::new();
        let mut chainable = HashMap::new();
        for t in triggers {
            chainable.insert(t.component.clone(), ());
            if let Route::Path(raw) = &t.route {
                // Spin keeps the last component for a duplicated route, in the first position.
                match by_route.iter_mut().find(|(r, _)| r == raw) {
                    Some(entry) => entry.1 = t.component.clone(),
                    None => by_route.push((raw.clone(), t.component.clone())),
                }
            }
        }
        let mut router = routefinder::Router::new();
        for (raw, component) in &by_route {
            let based = sanitize(&absolutize(raw));
            let (spec, wildcard_prefix) = if let Some(prefix) = based.strip_suffix("/...") {
                (format!("{prefix}/*"), Some(prefix.to_string()))
            } else if let Some(prefix) = based.strip_suffix("/*") {
                (based.clone(), Some(prefix.to_string()))
            } else {
                (based.clone(), None)
            };
            let handler = RouteHandler {
                component: component.clone(),
                raw_route: raw.clone(),
                wildcard_prefix,
            };
            router
                .add(spec.as_str(), handler)
                .map_err(|reason| RouteError {
                    route: raw.clone(),
                    component: component.clone(),
                    reason,
                })?;
        }
        Ok(Self {
            router,
            chainable,
            routes: by_route,
        })
    }

    /// The best route for `path`, or `None` (Spin answers 404).
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let best = self.router.best_match(path)?;
        let handler = best.handler();
        let captures = best.captures();
        let wildcard = captures.wildcard().unwrap_or("");
        // Spin has always included trailing slashes in the path info; routefinder drops them.
        let path_info = match (wildcard.is_empty(), path.ends_with('/')) {
            (true, false) => String::new(),
            (true, true) => "/".to_string(),
            (false, false) => format!("/{wildcard}"),
            (false, true) => format!("/{wildcard}/"),
        };
        let path_info = if handler.wildcard_prefix.is_some() {
            path_info
        } else {
            String::new()
        };
        Some(RouteMatch {
            component: handler.component.clone(),
            raw_route: handler.raw_route.clone(),
            component_route: handler
                .raw_route
                .strip_suffix("/...")
                .unwrap_or(&handler.raw_route)
                .to_string(),
            path_info,
            named: captures
                .params()
                .iter()
                .map(|c| (c.name().to_string(), c.value().to_string()))
                .collect(),
        })
    }

    /// Whether `component` has an HTTP trigger, which service chaining requires.
    pub fn is_chainable(&self, component: &str) -> bool {
        self.chainable.contains_key(component)
    }

    /// Public routes as `(route, component)`.
    pub fn routes(&self) -> &[(String, String)] {
        &self.routes
    }
}

/// The match Spin synthesises for a service-chaining request: as if the target were mounted at
/// `/...`, whatever its own route, so the whole path is the path info.
pub fn chained_match(component: &str, path: &str) -> RouteMatch {
    RouteMatch {
        component: component.to_string(),
        raw_route: "/...".to_string(),
        component_route: String::new(),
        path_info: path.to_string(),
        named: Vec::new(),
    }
}

fn absolutize(route: &str) -> String {
    if route.starts_with('/') {
        route.to_string()
    } else {
        format!("/{route}")
    }
}

/// Strips one trailing slash, as Spin does.
fn sanitize(route: &str) -> String {
    route.strip_suffix('/').unwrap_or(route).to_string()
}

/// Appends Spin's headers to the request's own, in Spin's order. Client-sent `spin-*` headers
/// stay: Spin extends the header map rather than replacing entries.
pub fn append_spin_headers(
    headers: &mut http::HeaderMap,
    scheme: &str,
    host: &str,
    path_and_query: &str,
    route: &RouteMatch,
    client_addr: SocketAddr,
) {
    let full_url = format!("{scheme}://{host}{path_and_query}");
    let mut pairs: Vec<(String, String)> = vec![
        ("spin-path-info".into(), route.path_info.clone()),
        ("spin-full-url".into(), full_url),
        ("spin-matched-route".into(), route.raw_route.clone()),
        ("spin-base-path".into(), "/".into()),
        ("spin-raw-component-route".into(), route.raw_route.clone()),
        ("spin-component-route".into(), route.component_route.clone()),
        ("spin-client-addr".into(), client_addr.to_string()),
    ];
    for (name, value) in &route.named {
        pairs.push((
            format!("spin-path-match-{}", name.to_ascii_lowercase()),
            value.clone(),
        ));
    }
    for (name, value) in pairs {
        // Spin silently skips headers that cannot be represented; so do we.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        let triggers: Vec<HttpTrigger> = routes
            .iter()
            .map(|(r, c)| HttpTrigger {
                route: Route::Path(r.to_string()),
                component: c.to_string(),
            })
            .collect();
        Router::build(&triggers).unwrap()
    }

    #[test]
    fn exact_beats_wildcard_and_longest_prefix_wins() {
        let r = router(&[
            ("/...", "all"),
            ("/one", "exact"),
            ("/one/...", "one"),
            ("/one/two/...", "two"),
        ]);
        assert_eq!(r.route("/one").unwrap().component, "exact");
        assert_eq!(r.route("/one/x").unwrap().component, "one");
        assert_eq!(r.route("/one/two/three").unwrap().component, "two");
        assert_eq!(r.route("/other").unwrap().component, "all");
        assert_eq!(r.route("/").unwrap().component, "all");
    }

    #[test]
    fn path_info_keeps_trailing_slashes() {
        let r = router(&[("/v1/...", "api")]);
        assert_eq!(r.route("/v1").unwrap().path_info, "");
        assert_eq!(r.route("/v1/").unwrap().path_info, "/");
        assert_eq!(r.route("/v1/a/b").unwrap().path_info, "/a/b");
        assert_eq!(r.route("/v1/a/b/").unwrap().path_info, "/a/b/");
        assert!(r.route("/v10").is_none());
        let m = r.route("/v1/a").unwrap();
        assert_eq!(
            (m.raw_route.as_str(), m.component_route.as_str()),
            ("/v1/...", "/v1")
        );
    }

    #[test]
    fn no_match_and_duplicates() {
        let r = router(&[("/a", "first"), ("/a", "second")]);
        assert!(r.route("/b").is_none());
        assert_eq!(r.route("/a").unwrap().component, "second");
        assert_eq!(r.route("/a/").unwrap().component, "second");
    }
}
