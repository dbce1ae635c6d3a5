//! The topic logs in key-value: append with atomically assigned offsets, read back in order.

use crate::kafka::{NewRecord, PARTITION};
use crate::keys;
use crate::kv::{Edit, Kv, KvError};
use crate::offsets::{self, PageQuery};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One stored record, as `GET .../records` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRecord {
    pub offset: u64,
    pub key: Value,
    pub value: Value,
    /// Arrival time, epoch milliseconds.
    pub timestamp: u64,
    pub partition: u32,
}

/// The CAS'd list behind `evt:topics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicIndex {
    pub topics: Vec<String>,
}

impl TopicIndex {
    /// Adds `topic` keeping the list sorted; false when it was already there.
    pub fn insert(&mut self, topic: &str) -> bool {
        match self.topics.binary_search_by(|t| t.as_str().cmp(topic)) {
            Ok(_) => false,
            Err(at) => {
                self.topics.insert(at, topic.to_owned());
                true
            }
        }
    }
}

/// A page of records and where to continue.
#[derive(Debug, Serialize)]
pub struct Page {
    pub topic: String,
    pub records: Vec<StoredRecord>,
    pub next: u64,
}

/// Appends the records in order and returns their offsets.
///
/// One `increment` by the batch size reserves a contiguous block of offsets, so concurrent
/// producers never share an offset and a batch stays contiguous. If the instance dies after the
/// increment, the unwritten offsets stay as gaps that readers skip.
pub fn append(
    kv: &Kv,
    topic: &str,
    records: Vec<NewRecord>,
    now_ms: u64,
) -> Result<Vec<u64>, KvError> {
    list_topic(kv, topic)?;
    let counter = keys::next_offset(topic);
    let count = records.len() as u64;
    let delta = i64::try_from(count).map_err(|_| KvError::Store("batch too large".into()))?;
    let end = kv.increment(&counter, delta)?;
    let first = u64::try_from(end)
        .ok()
        .and_then(|end| end.checked_sub(count))
        .ok_or_else(|| KvError::Corrupt {
            key: counter.clone(),
            reason: format!("offset counter at {end} after adding {count}"),
        })?;
    let mut assigned = Vec::with_capacity(records.len());
    for (offset, record) in (first..).zip(records) {
        let stored = StoredRecord {
            offset,
            key: record.key,
            value: record.value,
            timestamp: now_ms,
            partition: PARTITION,
        };
        let bytes = serde_json::to_vec(&stored).map_err(|e| KvError::Corrupt {
            key: keys::record(topic, offset),
            reason: e.to_string(),
        })?;
        kv.set_raw(&keys::record(topic, offset), &bytes)?;
        assigned.push(offset);
    }
    Ok(assigned)
}

/// Reads records from `page.offset` on, in offset order, skipping gaps.
pub fn read(kv: &Kv, topic: &str, page: PageQuery) -> Result<Page, KvError> {
    let counter = keys::next_offset(topic);
    let end = match kv.get_raw(&counter)? {
        Some(bytes) => decode_counter(&bytes).ok_or_else(|| KvError::Corrupt {
            key: counter.clone(),
            reason: "not an 8-byte counter".into(),
        })?,
        None => 0,
    };
    let window = offsets::window(page, end);
    let mut records = Vec::new();
    for offset in window.clone() {
        let key = keys::record(topic, offset);
        if let Some(bytes) = kv.get_raw(&key)? {
            let record: StoredRecord =
                serde_json::from_slice(&bytes).map_err(|e| KvError::Corrupt {
                    key,
                    reason: e.to_string(),
                })?;
            records.push(record);
        }
    }
    let last = records.last().map(|r| r.offset);
    Ok(Page {
        topic: topic.to_owned(),
        next: offsets::next_offset(page, window, end, last),
        records,
    })
}

pub fn topics(kv: &Kv) -> Result<Vec<String>, KvError> {
    let index: Option<TopicIndex> = kv.get_doc(keys::TOPICS)?;
    Ok(index.map(|i| i.topics).unwrap_or_default())
}

/// Makes sure `topic` is in the index; a plain read when it already is (the common case).
fn list_topic(kv: &Kv, topic: &str) -> Result<(), KvError> {
    let known: Option<TopicIndex> = kv.get_doc(keys::TOPICS)?;
    if known.is_some_and(|i| i.topics.iter().any(|t| t == topic)) {
        return Ok(());
    }
    kv.update(keys::TOPICS, |index: Option<TopicIndex>| {
        let mut index = index.unwrap_or_default();
        Ok::<_, KvError>(if index.insert(topic) {
            Edit::Write(index, ())
        } else {
            Edit::Keep(())
        })
    })
}

/// The value of an `increment` key: Spin stores an 8-byte little-endian i64.
pub fn decode_counter(bytes: &[u8]) -> Option<u64> {
    let le = <[u8; 8]>::try_from(bytes).ok()?;
    u64::try_from(i64::from_le_bytes(le)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_decode() {
        assert_eq!(decode_counter(&5i64.to_le_bytes()), Some(5));
        assert_eq!(decode_counter(&(-1i64).to_le_bytes()), None);
        assert_eq!(decode_counter(b"12"), None);
    }

    #[test]
    fn topic_index_is_sorted_and_deduplicated() {
        let mut i = TopicIndex::default();
        assert!(i.insert("b"));
        assert!(i.insert("a"));
        assert!(!i.insert("a"));
        assert_eq!(i.topics, vec!["a", "b"]);
    }

    #[test]
    fn stored_record_shape() {
        let r = StoredRecord {
            offset: 3,
            key: Value::Null,
            value: serde_json::json!({"type": "cart.item_added"}),
            timestamp: 9,
            partition: 0,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({
                "offset": 3, "key": null, "value": {"type": "cart.item_added"},
                "timestamp": 9, "partition": 0
            })
        );
    }
}
