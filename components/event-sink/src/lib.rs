//! Reference event sink: accepts Kafka REST produce requests (v2 proxy and v3 records API) and
//! stores the records so tests and people can read them back.
//!
//! Mounted at `/events/...`; the cart's outbox relay reaches it through Spin service chaining.
//! Each topic is a log of one partition in the key-value store "default" under `evt:` keys
//! (see `keys`); every request gets a fresh instance, so nothing lives in memory.
//!
//! Producing, listing topics and the fault switch need `Authorization: Bearer
//! <reference_token>`; reading a topic's records is open only while `reference_demo_reads` is
//! true (see `spin_reference_kit::access` and `Endpoint::access`). A refused request touches
//! nothing.

mod error;
mod fault_switch;
mod faults;
mod http_io;
mod ids;
mod kafka;
mod keys;
mod log;
mod offsets;
mod routes;
mod time;

// The shared mechanics, under the paths the modules here use (`crate::kv`, `crate::problem`).
use spin_reference_kit::{access, kv, problem};

use error::{ApiError, Failure};
use faults::{FaultMode, FaultState};
use kafka::{KafkaError, NewRecord, V2Offset};
use kv::Kv;
use routes::Endpoint;
use serde_json::json;
use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(req: Request) -> Response {
    let endpoint = match routes::resolve(req.method(), req.path()) {
        Ok(endpoint) => endpoint,
        Err(e) => {
            return match Failure::from(e) {
                Failure::Api(e) => http_io::problem(&e),
                Failure::Kafka(e) => http_io::kafka_error(&e, "application/json"),
            }
        }
    };
    let authorization = req.header("authorization").and_then(|v| v.as_str());
    if let Err(denied) = access::authorize(endpoint.access(), authorization) {
        return http_io::denied(&endpoint, denied);
    }
    match endpoint {
        Endpoint::ProduceV2 { topic } => produce_v2(&req, &topic)
            .unwrap_or_else(|e| http_io::kafka_error(&e, kafka::V2_RESPONSE_TYPE)),
        Endpoint::ProduceV3 { cluster, topic } => produce_v3(&req, &cluster, &topic)
            .unwrap_or_else(|e| http_io::kafka_error(&e, "application/json")),
        Endpoint::ReadRecords { topic } => {
            read_records(&req, &topic).unwrap_or_else(|e| http_io::problem(&e))
        }
        Endpoint::ListTopics => list_topics().unwrap_or_else(|e| http_io::problem(&e)),
        Endpoint::GetFaults => get_faults().unwrap_or_else(|e| http_io::problem(&e)),
        Endpoint::PutFaults => put_faults(&req).unwrap_or_else(|e| http_io::problem(&e)),
    }
}

/// What a produce request amounted to.
enum Produced {
    Stored(Vec<u64>),
    /// The retriable fault is on: nothing stored, every record answered with a retriable error.
    Refused(usize),
}

/// Shared by both dialects: the fault switch, then the append.
fn produce(topic: &str, records: Vec<NewRecord>) -> Result<Produced, KafkaError> {
    let kv = Kv::open()?;
    match fault_switch::take(&kv)? {
        Some(FaultMode::Unavailable) => Err(KafkaError::unavailable(
            "event sink unavailable (injected fault)",
        )),
        Some(FaultMode::RetriableRecordError) => Ok(Produced::Refused(records.len())),
        Some(FaultMode::None) | None => Ok(Produced::Stored(log::append(
            &kv,
            topic,
            records,
            time::now_ms(),
        )?)),
    }
}

fn produce_v2(req: &Request, topic: &str) -> Result<Response, KafkaError> {
    if !kafka::media_type_is(http_io::content_type(req), kafka::V2_REQUEST_TYPE) {
        return Err(KafkaError::unsupported_media_type(kafka::V2_REQUEST_TYPE));
    }
    let records = kafka::parse_v2(req.body())?;
    let offsets = match produce(topic, records)? {
        Produced::Stored(offsets) => offsets.into_iter().map(V2Offset::stored).collect(),
        Produced::Refused(n) => (0..n).map(|_| V2Offset::retriable()).collect(),
    };
    Ok(http_io::json(
        200,
        kafka::V2_RESPONSE_TYPE,
        &kafka::v2_response(offsets),
    ))
}

fn produce_v3(req: &Request, cluster: &str, topic: &str) -> Result<Response, KafkaError> {
    if !kafka::media_type_is(http_io::content_type(req), "application/json") {
        return Err(KafkaError::unsupported_media_type("application/json"));
    }
    let records = kafka::parse_v3(req.body())?;
    let lines: Vec<String> = match produce(topic, records)? {
        Produced::Stored(offsets) => {
            let stamp = time::rfc3339(time::now_ms());
            offsets
                .into_iter()
                .map(|o| kafka::v3_stored(cluster, topic, o, &stamp).to_string())
                .collect()
        }
        Produced::Refused(n) => (0..n).map(|_| kafka::v3_retriable().to_string()).collect(),
    };
    // Confluent's streaming mode answers one JSON object per record, newline-separated.
    Ok(http_io::with_body(
        200,
        "application/json",
        lines.join("\n").into_bytes(),
    ))
}

fn read_records(req: &Request, topic: &str) -> Result<Response, ApiError> {
    let page = offsets::parse_query(req.query()).map_err(ApiError::InvalidQuery)?;
    let kv = Kv::open()?;
    let page = log::read(&kv, topic, page)?;
    Ok(http_io::json(200, "application/json", &page))
}

fn list_topics() -> Result<Response, ApiError> {
    let kv = Kv::open()?;
    let topics = log::topics(&kv)?;
    Ok(http_io::json(
        200,
        "application/json",
        &json!({ "topics": topics }),
    ))
}

fn get_faults() -> Result<Response, ApiError> {
    let kv = Kv::open()?;
    Ok(http_io::json(
        200,
        "application/json",
        &fault_switch::load(&kv)?,
    ))
}

/// An admin route: needs the reference token like every write.
fn put_faults(req: &Request) -> Result<Response, ApiError> {
    let wanted: FaultState = http_io::json_body(req)?;
    let kv = Kv::open()?;
    let stored = fault_switch::save(&kv, wanted)?;
    Ok(http_io::json(200, "application/json", &stored))
}
