//! `storefront:cart/events`: domain events to a Kafka REST endpoint.
//!
//! - `events_api = "v2"` (default, Kafka REST Proxy v2): one `POST {events_url}/topics/{topic}`
//!   per batch, `{"records":[{"key","value"}]}` with the embedded-JSON content type; the
//!   per-record `offsets[i].error_code` (null = stored) tells how many leading records landed.
//! - `events_api = "v3"` (Confluent REST v3): one
//!   `POST {events_url}/kafka/v3/clusters/{events_cluster_id}/topics/{topic}/records` per
//!   record, in order, stopping at the first failure; `error_code` 200 = stored.
//!
//! Either way the result is the count of leading acknowledged records, so the outbox retries
//! exactly the rest, in order. Timeouts, 401, 403, 408, 429, 5xx and retriable Kafka codes are
//! `retriable` (a refused credential is fixed by an operator, and the events wait for it);
//! other 4xx and non-retriable codes are `rejected`. Optional `Authorization`:
//! `events_auth = "basic"` (`events_username`, `events_password`) or `"bearer"`
//! (`events_token`); without `events_auth`, `Bearer <reference_token>` when that is set (what
//! the reference sink requires). Each request is bounded by `events_timeout_ms`.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::base64;
use crate::config::{self, ConfigError};
use crate::exports::storefront::cart::events::{EventRecord, Guest, PublishError};
use crate::http_util::{self, InboundResponse, Method, OutboundRequest};
use crate::urls;

const DEFAULT_EVENTS_URL: &str = "http://events.spin.internal/events";
const DEFAULT_CLUSTER_ID: &str = "local";
const DEFAULT_TIMEOUT_MS: u64 = 2000;

const V2_CONTENT_TYPE: &str = "application/vnd.kafka.json.v2+json";
const V2_ACCEPT: &str = "application/vnd.kafka.v2+json";

impl Guest for crate::Adapter {
    fn publish(topic: String, records: Vec<EventRecord>) -> Result<u32, PublishError> {
        if records.is_empty() {
            return Ok(0);
        }
        if topic.is_empty() {
            return Err(PublishError::Rejected("empty topic".into()));
        }
        // Retriable, not rejected: the events stay in the outbox until an operator fixes it.
        let config = EventsConfig::load().map_err(|e| PublishError::Retriable(e.to_string()))?;
        let values = json_values(&records);
        if values.is_empty() {
            return Err(PublishError::Rejected(
                "record 0: value is not valid JSON".into(),
            ));
        }
        // Only the leading valid records are sent; the first invalid one is then at the head
        // of the retry and is rejected on its own, without holding back the ones before it.
        let records = &records[..values.len()];
        match config.api {
            Api::V2 => publish_v2(&config, &topic, records, values),
            Api::V3 => publish_v3(&config, &topic, records, values),
        }
    }
}

fn publish_v2(
    config: &EventsConfig,
    topic: &str,
    records: &[EventRecord],
    values: Vec<Value>,
) -> Result<u32, PublishError> {
    let body = json!({
        "records": records
            .iter()
            .zip(values)
            .map(|(record, value)| json!({"key": record.key, "value": value}))
            .collect::<Vec<_>>(),
    });
    let url = urls::join(&config.base_url, &["topics", topic]);
    let response = config.post(&url, V2_CONTENT_TYPE, Some(V2_ACCEPT), &body)?;
    if !response.is_success() {
        return Err(status_failure(&response));
    }
    acknowledged_v2(&response.body, records.len())
}

fn publish_v3(
    config: &EventsConfig,
    topic: &str,
    records: &[EventRecord],
    values: Vec<Value>,
) -> Result<u32, PublishError> {
    let url = urls::join(
        &config.base_url,
        &[
            "kafka",
            "v3",
            "clusters",
            &config.cluster_id,
            "topics",
            topic,
            "records",
        ],
    );
    let mut acknowledged = 0u32;
    for (record, value) in records.iter().zip(values) {
        let body = json!({
            "key": {"type": "JSON", "data": record.key},
            "value": {"type": "JSON", "data": value},
        });
        let outcome = config
            .post(&url, "application/json", None, &body)
            .and_then(|response| {
                if response.is_success() {
                    outcome_v3(&response.body)
                } else {
                    Err(status_failure(&response))
                }
            });
        match outcome {
            Ok(()) => acknowledged += 1,
            // Report the acknowledged prefix; the failed record heads the next attempt.
            Err(_) if acknowledged > 0 => return Ok(acknowledged),
            Err(error) => return Err(error),
        }
    }
    Ok(acknowledged)
}

/// Values parsed as JSON, up to (not including) the first that is not JSON.
fn json_values(records: &[EventRecord]) -> Vec<Value> {
    records
        .iter()
        .map_while(|record| serde_json::from_str(&record.value).ok())
        .collect()
}

#[derive(Deserialize)]
struct V2Response {
    #[serde(default)]
    offsets: Vec<V2Offset>,
}

#[derive(Deserialize)]
struct V2Offset {
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    error: Option<String>,
}

/// Leading acknowledged records of a v2 produce response for `sent` records.
fn acknowledged_v2(body: &[u8], sent: usize) -> Result<u32, PublishError> {
    let response: V2Response = serde_json::from_slice(body).map_err(|e| {
        // The batch may or may not have landed: retrying risks a duplicate (events carry ids
        // for de-duplication), dropping risks a loss.
        PublishError::Retriable(format!("events: unreadable produce response: {e}"))
    })?;
    let mut acknowledged = 0u32;
    for offset in response.offsets.iter().take(sent) {
        let Some(code) = offset.error_code else {
            acknowledged += 1;
            continue;
        };
        if acknowledged > 0 {
            return Ok(acknowledged);
        }
        let message = format!(
            "events: record 0 failed with error_code {code}: {}",
            offset.error.as_deref().unwrap_or("no message")
        );
        return Err(if is_retriable_code(code) {
            PublishError::Retriable(message)
        } else {
            PublishError::Rejected(message)
        });
    }
    if acknowledged == 0 {
        return Err(PublishError::Retriable(
            "events: produce response acknowledged no records".into(),
        ));
    }
    Ok(acknowledged)
}

/// Kafka error codes worth retrying. REST Proxy v2 reports 1 (non-retriable) or 2
/// (retriable); a proxy passing Kafka protocol codes through may send the transient ones
/// (leader election, timeouts, too few replicas, storage errors); codes shaped like HTTP
/// statuses (`503`, `50003`) are retriable when they mean a server-side or throttling error.
fn is_retriable_code(code: i64) -> bool {
    matches!(code, 2 | 5 | 6 | 7 | 13 | 19 | 20 | 56 | 408 | 429 | 500..=599 | 50000..=59999)
}

#[derive(Deserialize)]
struct V3Response {
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

/// One v3 produce response with a 2xx status.
fn outcome_v3(body: &[u8]) -> Result<(), PublishError> {
    // A 2xx is an explicit success; only a body that says otherwise overrides it.
    let Ok(response) = serde_json::from_slice::<V3Response>(body) else {
        return Ok(());
    };
    match response.error_code {
        None | Some(200) => Ok(()),
        Some(code) => {
            let message = format!(
                "events: record failed with error_code {code}: {}",
                response.message.as_deref().unwrap_or("no message")
            );
            Err(if is_retriable_code(code) {
                PublishError::Retriable(message)
            } else {
                PublishError::Rejected(message)
            })
        }
    }
}

/// A non-2xx answer.
fn status_failure(response: &InboundResponse) -> PublishError {
    classify_status(response.status, &response.body)
}

fn classify_status(status: u16, body: &[u8]) -> PublishError {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
    let text = format!("events: HTTP {status}: {}", message.trim());
    match status {
        401 | 403 | 408 | 429 => PublishError::Retriable(text),
        400..=499 => PublishError::Rejected(text),
        _ => PublishError::Retriable(text),
    }
}

/// Which Kafka REST API the endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    V2,
    V3,
}

/// The configured event endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EventsConfig {
    base_url: String,
    api: Api,
    cluster_id: String,
    /// Full `Authorization` header value, if any.
    authorization: Option<String>,
    timeout_ms: u64,
}

impl EventsConfig {
    fn load() -> Result<Self, ConfigError> {
        Self::from_settings(config::setting)
    }

    /// Builds the configuration from a settings lookup (undefined or blank → none).
    fn from_settings(
        get: impl Fn(&str) -> Result<Option<String>, ConfigError>,
    ) -> Result<Self, ConfigError> {
        let api = match get("events_api")?
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("v2") => Api::V2,
            Some("v3") => Api::V3,
            Some(_) => return Err(ConfigError::invalid("events_api", "expected v2 or v3")),
        };
        let authorization = match get("events_auth")?
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("none") => None,
            Some("basic") => {
                let username = get("events_username")?.ok_or_else(|| {
                    ConfigError::invalid("events_username", "required when events_auth is basic")
                })?;
                let password = get("events_password")?.unwrap_or_default();
                Some(format!(
                    "Basic {}",
                    base64::encode(format!("{username}:{password}").as_bytes())
                ))
            }
            Some("bearer") => {
                let token = get("events_token")?.ok_or_else(|| {
                    ConfigError::invalid("events_token", "required when events_auth is bearer")
                })?;
                Some(format!("Bearer {token}"))
            }
            Some(_) => {
                return Err(ConfigError::invalid(
                    "events_auth",
                    "expected basic, bearer or empty",
                ))
            }
        };
        // The reference sink's token, unless the pipeline has credentials of its own.
        let authorization = match authorization {
            Some(credentials) => Some(credentials),
            None => get("reference_token")?.map(|token| format!("Bearer {token}")),
        };
        Ok(EventsConfig {
            base_url: get("events_url")?.unwrap_or_else(|| DEFAULT_EVENTS_URL.to_owned()),
            api,
            cluster_id: get("events_cluster_id")?.unwrap_or_else(|| DEFAULT_CLUSTER_ID.to_owned()),
            authorization,
            timeout_ms: config::parse_timeout_ms(
                get("events_timeout_ms")?.as_deref(),
                DEFAULT_TIMEOUT_MS,
            ),
        })
    }

    fn post(
        &self,
        url: &str,
        content_type: &str,
        accept: Option<&str>,
        body: &Value,
    ) -> Result<InboundResponse, PublishError> {
        let mut headers = vec![("content-type", content_type.to_owned())];
        if let Some(accept) = accept {
            headers.push(("accept", accept.to_owned()));
        }
        if let Some(authorization) = &self.authorization {
            headers.push(("authorization", authorization.clone()));
        }
        headers.extend(crate::trace::headers());
        http_util::send(&OutboundRequest {
            method: Method::Post,
            url,
            headers,
            body: body.to_string().into_bytes(),
            timeout_ms: self.timeout_ms,
        })
        // Timeouts and transport errors: the records may be retried (ids de-duplicate).
        .map_err(|e| PublishError::Retriable(format!("events: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> EventsConfig {
        try_settings(pairs).expect("valid settings")
    }

    fn try_settings(pairs: &[(&str, &str)]) -> Result<EventsConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EventsConfig::from_settings(|name| Ok(map.get(name).cloned()))
    }

    #[test]
    fn defaults() {
        assert_eq!(
            settings(&[]),
            EventsConfig {
                base_url: DEFAULT_EVENTS_URL.into(),
                api: Api::V2,
                cluster_id: "local".into(),
                authorization: None,
                timeout_ms: 2000,
            }
        );
    }

    #[test]
    fn v3_and_credentials() {
        let config = settings(&[
            ("events_api", "V3"),
            ("events_cluster_id", "lkc-1"),
            ("events_auth", "basic"),
            ("events_username", "Aladdin"),
            ("events_password", "open sesame"),
            ("events_timeout_ms", "500"),
        ]);
        assert_eq!(config.api, Api::V3);
        assert_eq!(config.cluster_id, "lkc-1");
        assert_eq!(
            config.authorization.as_deref(),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        assert_eq!(config.timeout_ms, 500);
        let bearer = settings(&[("events_auth", "bearer"), ("events_token", "t0k")]);
        assert_eq!(bearer.authorization.as_deref(), Some("Bearer t0k"));
    }

    #[test]
    fn the_reference_token_is_sent_unless_the_pipeline_has_credentials() {
        let reference = settings(&[("reference_token", "ref")]);
        assert_eq!(reference.authorization.as_deref(), Some("Bearer ref"));
        let own = settings(&[
            ("reference_token", "ref"),
            ("events_auth", "bearer"),
            ("events_token", "t0k"),
        ]);
        assert_eq!(own.authorization.as_deref(), Some("Bearer t0k"));
    }

    #[test]
    fn bad_settings_are_configuration_errors() {
        for pairs in [
            &[("events_api", "v4")][..],
            &[("events_auth", "digest")][..],
            &[("events_auth", "basic")][..],
            &[("events_auth", "bearer")][..],
        ] {
            let error = try_settings(pairs).expect_err("invalid");
            assert!(
                error.to_string().starts_with("bad configuration"),
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn v2_counts_leading_acknowledged_records() {
        let all = br#"{"key_schema_id":null,"value_schema_id":null,"offsets":[
            {"partition":0,"offset":1,"error_code":null,"error":null},
            {"partition":0,"offset":2,"error_code":null,"error":null}]}"#;
        assert_eq!(acknowledged_v2(all, 2).ok(), Some(2));
        let partial = br#"{"offsets":[{"offset":1,"error_code":null},
            {"error_code":2,"error":"leader moved"},{"offset":3,"error_code":null}]}"#;
        assert_eq!(acknowledged_v2(partial, 3).ok(), Some(1));
        let short = br#"{"offsets":[{"offset":1}]}"#;
        assert_eq!(acknowledged_v2(short, 2).ok(), Some(1));
    }

    #[test]
    fn v2_first_record_failures_are_classified() {
        let retriable = br#"{"offsets":[{"error_code":2,"error":"timeout"}]}"#;
        assert!(matches!(
            acknowledged_v2(retriable, 1),
            Err(PublishError::Retriable(_))
        ));
        let rejected = br#"{"offsets":[{"error_code":1,"error":"record too large"}]}"#;
        assert!(matches!(
            acknowledged_v2(rejected, 1),
            Err(PublishError::Rejected(_))
        ));
        assert!(matches!(
            acknowledged_v2(br#"{"offsets":[]}"#, 1),
            Err(PublishError::Retriable(_))
        ));
        assert!(matches!(
            acknowledged_v2(b"<html>", 1),
            Err(PublishError::Retriable(_))
        ));
    }

    #[test]
    fn v3_outcomes() {
        assert!(outcome_v3(br#"{"error_code":200,"offset":5}"#).is_ok());
        assert!(outcome_v3(b"").is_ok());
        assert!(matches!(
            outcome_v3(br#"{"error_code":50003,"message":"broker down"}"#),
            Err(PublishError::Retriable(_))
        ));
        assert!(matches!(
            outcome_v3(br#"{"error_code":40403,"message":"no topic"}"#),
            Err(PublishError::Rejected(_))
        ));
    }

    #[test]
    fn http_statuses_are_classified() {
        assert!(matches!(
            classify_status(503, b""),
            PublishError::Retriable(_)
        ));
        assert!(matches!(
            classify_status(429, b""),
            PublishError::Retriable(_)
        ));
        assert!(matches!(
            classify_status(408, b""),
            PublishError::Retriable(_)
        ));
        for refused in [401, 403] {
            assert!(matches!(
                classify_status(refused, br#"{"error_code":40101,"message":"no"}"#),
                PublishError::Retriable(_)
            ));
        }
        assert!(matches!(
            classify_status(404, br#"{"error_code":40401,"message":"Topic not found"}"#),
            PublishError::Rejected(m) if m == "events: HTTP 404: Topic not found"
        ));
        assert!(matches!(
            classify_status(302, b""),
            PublishError::Retriable(_)
        ));
    }

    #[test]
    fn only_leading_json_values_are_sent() {
        let record = |value: &str| EventRecord {
            key: "k".into(),
            value: value.into(),
        };
        let records = [
            record(r#"{"a":1}"#),
            record("2"),
            record("not json"),
            record("{}"),
        ];
        assert_eq!(json_values(&records), vec![json!({"a": 1}), json!(2)]);
        assert!(json_values(&[record("")]).is_empty());
    }

    #[test]
    fn urls_follow_the_kafka_rest_layouts() {
        let base = "http://events.spin.internal/events/";
        assert_eq!(
            urls::join(base, &["topics", "cart-events"]),
            "http://events.spin.internal/events/topics/cart-events"
        );
        assert_eq!(
            urls::join(
                base,
                &["kafka", "v3", "clusters", "local", "topics", "a b", "records"]
            ),
            "http://events.spin.internal/events/kafka/v3/clusters/local/topics/a%20b/records"
        );
    }
}
