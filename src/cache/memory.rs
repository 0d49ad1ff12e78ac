//! The entries in memory: a map bounded in bytes, least recently used evicted first, each entry
//! dropped once its time is up. Semantic entries are also listed by group for the neighbour
//! search.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::key::Key;
use super::semantic::cosine;
use super::Entry;

struct Slot {
    entry: Arc<Entry>,
    /// When it was last used: its place in `order`.
    tick: u64,
}

pub struct Memory {
    max_bytes: usize,
    bytes: usize,
    tick: u64,
    slots: HashMap<Key, Slot>,
    /// Ticks, oldest first: the eviction order.
    order: BTreeMap<u64, Key>,
    /// Semantic group → its entries that have an embedding.
    groups: HashMap<Key, Vec<Key>>,
}

impl Memory {
    pub fn new(max_bytes: usize) -> Memory {
        Memory {
            max_bytes,
            bytes: 0,
            tick: 0,
            slots: HashMap::new(),
            order: BTreeMap::new(),
            groups: HashMap::new(),
        }
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.slots.values().map(|s| &*s.entry)
    }

    /// The live entry under `key`, marked as just used; an expired one is removed and its key
    /// pushed to `gone`.
    pub fn get(&mut self, key: &Key, now_ms: i64, gone: &mut Vec<Key>) -> Option<Arc<Entry>> {
        let expired = self.slots.get(key)?.entry.expires_ms <= now_ms;
        if expired {
            self.remove(key);
            gone.push(*key);
            return None;
        }
        self.touch(key)
    }

    /// The live entry of `group` most similar to `embedding`, if it reaches `threshold`.
    pub fn nearest(
        &mut self,
        group: &Key,
        embedding: &[f32],
        threshold: f64,
        now_ms: i64,
        gone: &mut Vec<Key>,
    ) -> Option<Arc<Entry>> {
        let mut best: Option<(f64, Key)> = None;
        for key in self.groups.get(group).into_iter().flatten() {
            let entry = &self.slots[key].entry;
            if entry.expires_ms <= now_ms {
                gone.push(*key);
                continue;
            }
            let score = entry
                .embedding
                .as_deref()
                .map_or(0.0, |e| cosine(e, embedding));
            if score >= threshold && best.is_none_or(|(b, _)| score > b) {
                best = Some((score, *key));
            }
        }
        for key in gone.iter() {
            self.remove(key);
        }
        self.touch(&best?.1)
    }

    /// Adds (or replaces) an entry, evicting the least recently used to make room. Returns the
    /// evicted keys, or `None` when the entry alone is over the bound (and was not kept).
    pub fn put(&mut self, entry: Arc<Entry>) -> Option<Vec<Key>> {
        if entry.size() > self.max_bytes {
            return None;
        }
        let key = entry.key;
        self.remove(&key);
        let mut evicted = Vec::new();
        while self.bytes + entry.size() > self.max_bytes {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.remove(&oldest);
            evicted.push(oldest);
        }
        self.tick += 1;
        self.bytes += entry.size();
        self.order.insert(self.tick, key);
        if let (Some(group), Some(_)) = (entry.group, &entry.embedding) {
            self.groups.entry(group).or_default().push(key);
        }
        self.slots.insert(
            key,
            Slot {
                entry,
                tick: self.tick,
            },
        );
        Some(evicted)
    }

    /// Removes every entry `doomed` picks; returns their keys.
    pub fn remove_where(&mut self, doomed: impl Fn(&Entry) -> bool) -> Vec<Key> {
        let keys: Vec<Key> = self
            .slots
            .iter()
            .filter(|(_, s)| doomed(&s.entry))
            .map(|(k, _)| *k)
            .collect();
        for key in &keys {
            self.remove(key);
        }
        keys
    }

    fn touch(&mut self, key: &Key) -> Option<Arc<Entry>> {
        self.tick += 1;
        let slot = self.slots.get_mut(key)?;
        self.order.remove(&slot.tick);
        slot.tick = self.tick;
        self.order.insert(self.tick, *key);
        Some(slot.entry.clone())
    }

    fn remove(&mut self, key: &Key) -> bool {
        let Some(slot) = self.slots.remove(key) else {
            return false;
        };
        self.order.remove(&slot.tick);
        self.bytes -= slot.entry.size();
        if let Some(group) = slot.entry.group {
            if let Some(members) = self.groups.get_mut(&group) {
                members.retain(|k| k != key);
                if members.is_empty() {
                    self.groups.remove(&group);
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Answer;
    use axum::body::Bytes;

    fn entry(n: u8, body_len: usize, expires_ms: i64) -> Arc<Entry> {
        Arc::new(Entry {
            key: [n; 32],
            group: None,
            embedding: None,
            partition: String::new(),
            namespace: None,
            answer: Answer::Json(Bytes::from(vec![b'x'; body_len])),
            integration: None,
            model: None,
            cost: None,
            created_ms: 0,
            expires_ms,
        })
    }

    #[test]
    fn least_recently_used_goes_first_and_bytes_stay_bounded() {
        let size = entry(0, 1000, i64::MAX).size();
        let mut m = Memory::new(size * 3);
        for n in 1..=3 {
            assert_eq!(m.put(entry(n, 1000, i64::MAX)), Some(vec![]));
        }
        let mut gone = Vec::new();
        assert!(
            m.get(&[1; 32], 0, &mut gone).is_some(),
            "1 is now the newest"
        );
        assert_eq!(m.put(entry(4, 1000, i64::MAX)), Some(vec![[2; 32]]));
        assert_eq!(m.bytes(), size * 3);
        assert!(m.get(&[2; 32], 0, &mut gone).is_none());
        assert_eq!(m.put(entry(5, size * 3, i64::MAX)), None, "too big to keep");
        assert_eq!(m.entries().count(), 3);
    }

    #[test]
    fn expired_entries_are_dropped_when_read() {
        let mut m = Memory::new(1 << 20);
        m.put(entry(1, 10, 100));
        let mut gone = Vec::new();
        assert!(m.get(&[1; 32], 99, &mut gone).is_some());
        assert!(m.get(&[1; 32], 100, &mut gone).is_none());
        assert_eq!(gone, vec![[1; 32]]);
        assert_eq!((m.bytes(), m.entries().count()), (0, 0));
    }

    #[test]
    fn the_nearest_neighbour_of_the_group_above_the_threshold() {
        let mut m = Memory::new(1 << 20);
        let with = |n: u8, group: u8, v: Vec<f32>| {
            let mut e = Arc::try_unwrap(entry(n, 10, i64::MAX)).ok().unwrap();
            e.group = Some([group; 32]);
            e.embedding = Some(v);
            Arc::new(e)
        };
        m.put(with(1, 7, vec![1.0, 0.0]));
        m.put(with(2, 7, vec![0.8, 0.6]));
        m.put(with(3, 8, vec![1.0, 0.0]));
        let mut gone = Vec::new();
        let near = |m: &mut Memory, g: u8, v: &[f32], t: f64, gone: &mut Vec<Key>| {
            m.nearest(&[g; 32], v, t, 0, gone).map(|e| e.key[0])
        };
        assert_eq!(near(&mut m, 7, &[0.9, 0.1], 0.9, &mut gone), Some(1));
        assert_eq!(near(&mut m, 7, &[0.7, 0.7], 0.9, &mut gone), Some(2));
        assert_eq!(near(&mut m, 7, &[0.0, 1.0], 0.9, &mut gone), None);
        assert_eq!(near(&mut m, 9, &[1.0, 0.0], 0.5, &mut gone), None);
        m.remove_where(|e| e.key[0] == 1);
        assert_eq!(near(&mut m, 7, &[1.0, 0.0], 0.7, &mut gone), Some(2));
    }
}
