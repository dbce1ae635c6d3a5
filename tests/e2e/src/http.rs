//! A small blocking HTTP client for the suite: every answer (2xx to 5xx) is a `Response`, only a
//! transport failure is an error.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

/// Requests to one base URL, over pooled keep-alive connections.
#[derive(Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
    /// The app's `reference_token`, for the reference services' protected routes.
    reference_token: Option<String>,
}

impl Client {
    pub fn new(base: String) -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            // Bounded, so a wedged server fails the test instead of hanging the run.
            .timeout(Duration::from_secs(120))
            .max_idle_connections_per_host(128)
            .build();
        Client {
            base,
            agent,
            reference_token: None,
        }
    }

    /// The same client, sending `token` on requests marked [`Request::reference`] (an empty
    /// token: none).
    pub fn with_reference_token(mut self, token: &str) -> Client {
        self.reference_token = Some(token.to_owned()).filter(|t| !t.is_empty());
        self
    }

    pub fn request(&self, method: &str, path: &str) -> Request {
        Request {
            agent: self.agent.clone(),
            method: method.to_owned(),
            url: format!("{}{}", self.base, path),
            headers: Vec::new(),
            body: None,
            reference_token: self.reference_token.clone(),
        }
    }

    pub fn get(&self, path: &str) -> Request {
        self.request("GET", path)
    }
    pub fn post(&self, path: &str) -> Request {
        self.request("POST", path)
    }
    pub fn put(&self, path: &str) -> Request {
        self.request("PUT", path)
    }
    pub fn patch(&self, path: &str) -> Request {
        self.request("PATCH", path)
    }
    pub fn delete(&self, path: &str) -> Request {
        self.request("DELETE", path)
    }
}

/// A request being built.
pub struct Request {
    agent: ureq::Agent,
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    reference_token: Option<String>,
}

impl Request {
    /// A call to a reference service (inventory, event sink) as an operator makes it:
    /// `Authorization: Bearer <reference_token>` of the app this client talks to.
    pub fn reference(self) -> Request {
        match self.reference_token.clone() {
            Some(token) => self.bearer(&token),
            None => self,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The demo identity (`allow_insecure_user_header`).
    pub fn user(self, user: &str) -> Request {
        self.header("X-User-Id", user)
    }

    pub fn bearer(self, token: &str) -> Request {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    pub fn json(mut self, body: &Value) -> Request {
        self.body = Some(body.to_string());
        self.header("Content-Type", "application/json")
    }

    /// Sends; any HTTP status is a `Response`, a transport error is an `Err`.
    pub fn try_send(self) -> Result<Response> {
        let mut req = self.agent.request(&self.method, &self.url);
        for (name, value) in &self.headers {
            req = req.set(name, value);
        }
        let result = match &self.body {
            Some(body) => req.send_string(body),
            None => req.call(),
        };
        let resp = match result {
            Ok(resp) => resp,
            Err(ureq::Error::Status(_, resp)) => resp,
            Err(e) => {
                return Err(e).with_context(|| format!("{} {}", self.method, self.url));
            }
        };
        Response::read(resp)
    }

    /// Sends; a transport error fails the test.
    pub fn send(self) -> Response {
        let what = format!("{} {}", self.method, self.url);
        self.try_send()
            .unwrap_or_else(|e| panic!("{what}: no HTTP answer: {e:#}"))
    }
}

/// A whole response, body read.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    fn read(resp: ureq::Response) -> Result<Response> {
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .filter_map(|name| {
                let value = resp.header(&name)?.to_owned();
                Some((name, value))
            })
            .collect();
        let body = resp.into_string().context("reading the response body")?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; fails the test (showing the body) when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "HTTP {} body is not JSON ({e}): {:?}",
                self.status, self.body
            )
        })
    }

    /// Asserts the status, showing the body when it differs.
    pub fn expect(self, status: u16) -> Response {
        assert_eq!(self.status, status, "unexpected HTTP status: {}", self.body);
        self
    }

    /// The problem `type` slug (`.../insufficient-stock` → `insufficient-stock`).
    pub fn problem_slug(&self) -> String {
        let body = self.json();
        let kind = body["type"].as_str().unwrap_or_default();
        kind.rsplit('/').next().unwrap_or_default().to_owned()
    }
}
