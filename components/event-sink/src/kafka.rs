//! The Kafka REST produce dialects: request parsing and response bodies, without I/O.
//!
//! v2 is the Kafka REST Proxy API (`POST /topics/{topic}`, embedded JSON format); v3 is the
//! Confluent Cloud records API (`POST /kafka/v3/clusters/{cluster}/topics/{topic}/records`).
//! Both report errors as `{"error_code": n, "message": "..."}`, never as problem documents,
//! because Kafka clients parse that shape.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Content-Type of a v2 produce request with JSON keys and values.
pub const V2_REQUEST_TYPE: &str = "application/vnd.kafka.json.v2+json";
/// Content-Type of v2 responses.
pub const V2_RESPONSE_TYPE: &str = "application/vnd.kafka.v2+json";
/// Records per produce request, like the proxy's default batch limit.
pub const MAX_RECORDS: usize = 1000;
/// Largest produce body (Kafka's default `max.request.size` is 1 MiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Per-record error code the proxy uses for retriable failures (1 is non-retriable).
pub const RETRIABLE_ERROR_CODE: u32 = 2;
/// The only partition this sink has.
pub const PARTITION: u32 = 0;

/// A Kafka REST error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaError {
    pub status: u16,
    pub error_code: u32,
    pub message: String,
}

impl KafkaError {
    pub fn new(status: u16, error_code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            error_code,
            message: message.into(),
        }
    }

    pub fn body(&self) -> Value {
        json!({ "error_code": self.error_code, "message": self.message })
    }

    pub fn unsupported_media_type(expected: &str) -> Self {
        Self::new(
            415,
            415,
            format!("HTTP 415 Unsupported Media Type: send Content-Type {expected}"),
        )
    }

    pub fn too_large() -> Self {
        Self::new(
            413,
            413,
            format!("request body larger than {MAX_BODY_BYTES} bytes"),
        )
    }

    pub fn partition_not_found() -> Self {
        Self::new(404, 40402, "Partition not found.")
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, 503, message)
    }

    /// A JSON syntax error is a bad request; well-formed JSON of the wrong shape is
    /// unprocessable, as the proxy's exception mappers answer.
    fn from_json(e: &serde_json::Error) -> Self {
        if e.is_syntax() || e.is_eof() || e.is_io() {
            Self::new(400, 400, format!("malformed JSON: {e}"))
        } else {
            Self::new(422, 422, format!("invalid produce request: {e}"))
        }
    }
}

/// A record ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    pub key: Value,
    pub value: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct V2Request {
    records: Vec<V2Record>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct V2Record {
    #[serde(default)]
    key: Value,
    #[serde(default)]
    value: Value,
    #[serde(default)]
    partition: Option<i64>,
}

/// Parses a v2 produce body: `{"records": [{"key"?, "value", "partition"?}, ...]}`.
pub fn parse_v2(body: &[u8]) -> Result<Vec<NewRecord>, KafkaError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(KafkaError::too_large());
    }
    let request: V2Request = serde_json::from_slice(body).map_err(|e| KafkaError::from_json(&e))?;
    check_count(request.records.len())?;
    request
        .records
        .into_iter()
        .map(|r| {
            check_partition(r.partition)?;
            Ok(NewRecord {
                key: r.key,
                value: r.value,
            })
        })
        .collect()
}

fn check_count(n: usize) -> Result<(), KafkaError> {
    if n == 0 || n > MAX_RECORDS {
        return Err(KafkaError::new(
            422,
            42201,
            format!("a produce request must carry 1 to {MAX_RECORDS} records, got {n}"),
        ));
    }
    Ok(())
}

fn check_partition(partition: Option<i64>) -> Result<(), KafkaError> {
    match partition {
        None => Ok(()),
        Some(p) if p == i64::from(PARTITION) => Ok(()),
        Some(_) => Err(KafkaError::partition_not_found()),
    }
}

/// One v2 offsets entry: stored at `offset`, or failed with a retriable error.
#[derive(Debug, Serialize, PartialEq)]
pub struct V2Offset {
    pub partition: Option<u32>,
    pub offset: Option<u64>,
    pub error_code: Option<u32>,
    pub error: Option<String>,
}

impl V2Offset {
    pub fn stored(offset: u64) -> Self {
        Self {
            partition: Some(PARTITION),
            offset: Some(offset),
            error_code: None,
            error: None,
        }
    }

    pub fn retriable() -> Self {
        Self {
            partition: None,
            offset: None,
            error_code: Some(RETRIABLE_ERROR_CODE),
            error: Some("retriable".to_owned()),
        }
    }
}

/// The v2 produce answer.
pub fn v2_response(offsets: Vec<V2Offset>) -> Value {
    json!({ "key_schema_id": null, "value_schema_id": null, "offsets": offsets })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct V3Record {
    #[serde(default)]
    key: Option<V3Data>,
    #[serde(default)]
    value: Option<V3Data>,
    #[serde(default)]
    partition_id: Option<i64>,
    /// Accepted for compatibility; not stored.
    #[serde(default)]
    #[allow(dead_code)]
    headers: Option<Value>,
    /// Accepted for compatibility; the sink stamps its own arrival time.
    #[serde(default)]
    #[allow(dead_code)]
    timestamp: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct V3Data {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    data: Value,
}

/// Parses a v3 produce body: one record object, or several concatenated / newline-separated
/// (Confluent's streaming mode).
pub fn parse_v3(body: &[u8]) -> Result<Vec<NewRecord>, KafkaError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(KafkaError::too_large());
    }
    let mut records = Vec::new();
    for (i, item) in serde_json::Deserializer::from_slice(body)
        .into_iter::<V3Record>()
        .enumerate()
    {
        let r = item.map_err(|e| KafkaError::new(400, 400, format!("record {i}: {e}")))?;
        check_partition(r.partition_id)?;
        records.push(NewRecord {
            key: v3_data(r.key, i)?,
            value: v3_data(r.value, i)?,
        });
        if records.len() > MAX_RECORDS {
            break;
        }
    }
    check_count(records.len()).map_err(|e| KafkaError::new(400, 400, e.message))?;
    Ok(records)
}

/// The payload of a v3 key or value. JSON data is stored as is; STRING and BINARY (base64)
/// data are stored as the JSON strings they arrive as.
fn v3_data(data: Option<V3Data>, index: usize) -> Result<Value, KafkaError> {
    let Some(data) = data else {
        return Ok(Value::Null);
    };
    match data.kind.as_deref() {
        None | Some("JSON") => Ok(data.data),
        Some("STRING") | Some("BINARY") if data.data.is_string() || data.data.is_null() => {
            Ok(data.data)
        }
        Some(kind) => Err(KafkaError::new(
            400,
            400,
            format!("record {index}: unsupported or mismatched data type {kind:?}"),
        )),
    }
}

/// One v3 answer line for a stored record.
pub fn v3_stored(cluster: &str, topic: &str, offset: u64, timestamp_rfc3339: &str) -> Value {
    json!({
        "error_code": 200,
        "cluster_id": cluster,
        "topic_name": topic,
        "partition_id": PARTITION,
        "offset": offset,
        "timestamp": timestamp_rfc3339,
    })
}

/// One v3 answer line for a record refused by the retriable fault.
pub fn v3_retriable() -> Value {
    json!({ "error_code": 503, "message": "retriable: injected fault, record not stored" })
}

/// Whether a Content-Type header names `expected` (any case, parameters ignored).
pub fn media_type_is(content_type: Option<&str>, expected: &str) -> bool {
    content_type
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_parses_records_with_optional_key_and_partition() {
        let r = parse_v2(
            br#"{"records":[{"key":"cart-1","value":{"a":1}},{"value":2,"partition":0}]}"#,
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].key, json!("cart-1"));
        assert_eq!(r[0].value, json!({"a": 1}));
        assert_eq!(r[1].key, Value::Null);
    }

    #[test]
    fn v2_error_codes() {
        let code = |b: &[u8]| {
            parse_v2(b)
                .map(|_| ())
                .map_err(|e| (e.status, e.error_code))
        };
        assert_eq!(code(b"{"), Err((400, 400)));
        assert_eq!(code(b"not json"), Err((400, 400)));
        assert_eq!(code(br#"{"records":[]}"#), Err((422, 42201)));
        assert_eq!(code(br#"{}"#), Err((422, 422)));
        assert_eq!(code(br#"{"records":[{"value":1,"x":2}]}"#), Err((422, 422)));
        assert_eq!(
            code(br#"{"records":[{"value":1,"partition":3}]}"#),
            Err((404, 40402))
        );
        let many = format!(
            r#"{{"records":[{}]}}"#,
            vec![r#"{"value":1}"#; MAX_RECORDS + 1].join(",")
        );
        assert_eq!(code(many.as_bytes()), Err((422, 42201)));
        let max = format!(
            r#"{{"records":[{}]}}"#,
            vec![r#"{"value":1}"#; MAX_RECORDS].join(",")
        );
        assert_eq!(code(max.as_bytes()), Ok(()));
    }

    #[test]
    fn v2_response_shape() {
        let body = v2_response(vec![V2Offset::stored(7), V2Offset::retriable()]);
        assert_eq!(
            body,
            json!({
                "key_schema_id": null, "value_schema_id": null,
                "offsets": [
                    {"partition": 0, "offset": 7, "error_code": null, "error": null},
                    {"partition": null, "offset": null, "error_code": 2, "error": "retriable"}
                ]
            })
        );
    }

    #[test]
    fn v3_parses_one_or_a_stream() {
        let one = parse_v3(
            br#"{"key":{"type":"JSON","data":"k"},"value":{"type":"JSON","data":{"x":1}}}"#,
        )
        .unwrap();
        assert_eq!(
            one,
            vec![NewRecord {
                key: json!("k"),
                value: json!({"x": 1})
            }]
        );
        let stream = parse_v3(
            b"{\"value\":{\"type\":\"JSON\",\"data\":1}}\n{\"value\":{\"type\":\"STRING\",\"data\":\"s\"}}{\"value\":{\"data\":3}}",
        )
        .unwrap();
        let values: Vec<Value> = stream.into_iter().map(|r| r.value).collect();
        assert_eq!(values, vec![json!(1), json!("s"), json!(3)]);
    }

    #[test]
    fn v3_errors() {
        let code = |b: &[u8]| {
            parse_v3(b)
                .map(|_| ())
                .map_err(|e| (e.status, e.error_code))
        };
        assert_eq!(code(b""), Err((400, 400)));
        assert_eq!(code(b"{\"value\":"), Err((400, 400)));
        assert_eq!(code(br#"{"value":{"data":1},"nope":1}"#), Err((400, 400)));
        assert_eq!(
            code(br#"{"value":{"type":"AVRO","data":1}}"#),
            Err((400, 400))
        );
        assert_eq!(
            code(br#"{"value":{"type":"STRING","data":1}}"#),
            Err((400, 400))
        );
        assert_eq!(
            code(br#"{"partition_id":1,"value":{"data":1}}"#),
            Err((404, 40402))
        );
    }

    #[test]
    fn media_types() {
        assert!(media_type_is(
            Some("application/vnd.kafka.json.v2+json; charset=utf-8"),
            V2_REQUEST_TYPE
        ));
        assert!(!media_type_is(Some("application/json"), V2_REQUEST_TYPE));
        assert!(!media_type_is(None, V2_REQUEST_TYPE));
    }
}
