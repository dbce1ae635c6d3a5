//! Where the capability host mounts its component, and the `spin-*` headers the component sees,
//! as `spin.toml` routes and Spin's headers look (shared/SPIN-FACTS.md) so the component gets a
//! realistic request. Only what one component needs: exact routes and trailing-wildcard
//! routes (`/x/...`); an exact route beats a wildcard, then the longest prefix wins, and one
//! trailing slash is forgiven. How real Spin routes is tested on real Spin (`tests/e2e`).

use std::net::SocketAddr;

use http::{HeaderName, HeaderValue};

/// One route as written (`/v1/...`, `/healthz`, `/...`).
#[derive(Debug, Clone)]
struct Mount {
    raw: String,
    /// `Some(prefix)` (without the trailing `/...`) for a wildcard route.
    wildcard: Option<String>,
    /// The path of the route without trailing slashes (what an exact route matches).
    exact: String,
}

/// The routes a component is mounted at.
#[derive(Debug, Clone)]
pub struct Routes(Vec<Mount>);

/// A request path matched to a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// `spin-matched-route` / `spin-raw-component-route`.
    pub raw_route: String,
    /// `spin-component-route`: the route without its trailing `/...`.
    pub component_route: String,
    /// `spin-path-info`: the part of the path the wildcard matched.
    pub path_info: String,
}

impl Routes {
    /// Routes as `spin.toml` writes them; a route without a leading `/` gets one.
    pub fn new(routes: &[String]) -> Self {
        Routes(
            routes
                .iter()
                .map(|raw| {
                    let absolute = if raw.starts_with('/') {
                        raw.clone()
                    } else {
                        format!("/{raw}")
                    };
                    let wildcard = absolute
                        .strip_suffix("/...")
                        .map(|p| p.trim_end_matches('/').to_string());
                    let exact = normalized(&absolute).to_string();
                    Mount {
                        raw: raw.clone(),
                        wildcard,
                        exact,
                    }
                })
                .collect(),
        )
    }

    /// The best route for `path`, or `None` (Spin answers 404 with an empty body).
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let trimmed = normalized(path);
        if let Some(m) = self
            .0
            .iter()
            .find(|m| m.wildcard.is_none() && m.exact == trimmed)
        {
            return Some(RouteMatch {
                raw_route: m.raw.clone(),
                component_route: m.raw.clone(),
                path_info: String::new(),
            });
        }
        self.0
            .iter()
            .filter_map(|m| {
                let prefix = m.wildcard.as_deref()?;
                let rest = path.strip_prefix(prefix)?;
                (rest.is_empty() || rest.starts_with('/')).then_some((prefix.len(), m, rest))
            })
            .max_by_key(|(len, _, _)| *len)
            .map(|(_, m, rest)| RouteMatch {
                raw_route: m.raw.clone(),
                component_route: m.raw.strip_suffix("/...").unwrap_or(&m.raw).to_string(),
                path_info: rest.to_string(),
            })
    }
}

/// `path` without trailing slashes (`/` stays `/`).
fn normalized(path: &str) -> &str {
    match path.trim_end_matches('/') {
        "" => "/",
        t => t,
    }
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
    let pairs = [
        ("spin-path-info", route.path_info.as_str()),
        ("spin-full-url", full_url.as_str()),
        ("spin-matched-route", route.raw_route.as_str()),
        ("spin-base-path", "/"),
        ("spin-raw-component-route", route.raw_route.as_str()),
        ("spin-component-route", route.component_route.as_str()),
        ("spin-client-addr", &client_addr.to_string()),
    ];
    for (name, value) in pairs {
        // Spin silently skips headers that cannot be represented; so do we.
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.append(HeaderName::from_static(name), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(r: &[&str]) -> Routes {
        Routes::new(&r.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn exact_beats_wildcard_and_longest_prefix_wins() {
        let r = routes(&["/...", "/one", "/one/...", "/one/two/..."]);
        assert_eq!(r.route("/one").unwrap().raw_route, "/one");
        assert_eq!(r.route("/one/").unwrap().raw_route, "/one");
        assert_eq!(r.route("/one/x").unwrap().raw_route, "/one/...");
        assert_eq!(r.route("/one/two/three").unwrap().raw_route, "/one/two/...");
        assert_eq!(r.route("/other").unwrap().raw_route, "/...");
        assert_eq!(r.route("/").unwrap().raw_route, "/...");
    }

    #[test]
    fn path_info_is_what_the_wildcard_matched() {
        let r = routes(&["/v1/..."]);
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
        assert_eq!(routes(&["/..."]).route("/a/b").unwrap().path_info, "/a/b");
    }

    #[test]
    fn no_match_is_none() {
        let r = routes(&["/a", "/b/..."]);
        assert!(r.route("/c").is_none());
        assert!(r.route("/a/x").is_none());
        assert!(r.route("/bx").is_none());
        let root = routes(&["/"]);
        assert!(root.route("/").is_some());
        assert!(root.route("/x").is_none());
    }
}
