//! The response cache's copy on disk: written by the cache's writer task, read once at start.

use axum::body::Bytes;

use super::db::params;
use super::{Store, StoreResult};
use crate::cache::{Answer, Entry, Key, Write};

fn key_of(blob: Vec<u8>) -> Option<Key> {
    blob.try_into().ok()
}

fn embedding_blob(e: &[f32]) -> Vec<u8> {
    e.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn embedding_of(blob: &[u8]) -> Vec<f32> {
    blob.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// A JSON body as it is; a stream's frames as a JSON array of strings.
fn answer_blob(answer: &Answer) -> (bool, Vec<u8>) {
    match answer {
        Answer::Json(b) => (false, b.to_vec()),
        Answer::Frames(frames) => {
            let texts: Vec<std::borrow::Cow<'_, str>> =
                frames.iter().map(|f| String::from_utf8_lossy(f)).collect();
            (true, serde_json::to_vec(&texts).unwrap_or_default())
        }
    }
}

fn answer_of(stream: bool, blob: Vec<u8>) -> Option<Answer> {
    if !stream {
        return Some(Answer::Json(Bytes::from(blob)));
    }
    let texts: Vec<String> = serde_json::from_slice(&blob).ok()?;
    Some(Answer::Frames(texts.into_iter().map(Bytes::from).collect()))
}

impl Store {
    /// Deletes the expired entries and returns the others, newest first.
    pub fn cache_entries(&self, now_ms: i64) -> StoreResult<Vec<Entry>> {
        let mut conn = self.conn();
        conn.execute(
            "DELETE FROM cache_entries WHERE expires_ms <= ?1",
            &params![now_ms],
        )?;
        let rows = conn.query_map(
            "SELECT key, grp, embedding, partition, namespace, stream, body, integration, model, \
             cost, created_ms, expires_ms FROM cache_entries ORDER BY created_ms DESC",
            &[],
            |r| {
                let embedding: Option<Vec<u8>> = r.get(2)?;
                Ok((
                    key_of(r.get(0)?),
                    r.get::<Option<Vec<u8>>>(1)?.and_then(key_of),
                    answer_of(r.get(5)?, r.get(6)?),
                    Entry {
                        key: [0; 32],
                        group: None,
                        embedding: embedding.as_deref().map(embedding_of),
                        partition: r.get(3)?,
                        namespace: r.get(4)?,
                        answer: Answer::Json(Bytes::new()),
                        integration: r.get(7)?,
                        model: r.get(8)?,
                        cost: r.get(9)?,
                        created_ms: r.get(10)?,
                        expires_ms: r.get(11)?,
                    },
                ))
            },
        )?;
        let mut entries = Vec::new();
        for row in rows {
            // A row that does not read back (written by a newer build, say) is skipped.
            if let (Some(key), group, Some(answer), entry) = row {
                entries.push(Entry {
                    key,
                    group,
                    answer,
                    ..entry
                });
            }
        }
        Ok(entries)
    }

    /// Applies the cache's changes in order, in one transaction.
    pub fn apply_cache_writes(&self, writes: &[Write]) -> StoreResult<()> {
        let mut conn = self.conn();
        let mut tx = conn.transaction()?;
        {
            for write in writes {
                match write {
                    Write::Put(e) => {
                        let (stream, body) = answer_blob(&e.answer);
                        tx.execute(
                            "INSERT INTO cache_entries (key, grp, embedding, partition, namespace, \
                             stream, body, integration, model, cost, created_ms, expires_ms) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
                             ON CONFLICT (key) DO UPDATE SET grp = excluded.grp, \
                             embedding = excluded.embedding, partition = excluded.partition, \
                             namespace = excluded.namespace, stream = excluded.stream, \
                             body = excluded.body, integration = excluded.integration, \
                             model = excluded.model, cost = excluded.cost, \
                             created_ms = excluded.created_ms, expires_ms = excluded.expires_ms",
                            &params![
                            &e.key[..],
                            e.group.as_ref().map(|g| &g[..]),
                            e.embedding.as_deref().map(embedding_blob),
                            e.partition,
                            e.namespace,
                            stream,
                            body,
                            e.integration,
                            e.model,
                            e.cost,
                            e.created_ms,
                            e.expires_ms,
                        ])?;
                    }
                    Write::Delete(keys) => {
                        for key in keys {
                            tx.execute(
                                "DELETE FROM cache_entries WHERE key = ?1",
                                &params![&key[..]],
                            )?;
                        }
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// What cache hits saved since `since_ms`, from the request records: the sum of their
    /// `cost_saved`, and how many records had one.
    pub fn cost_saved_since(&self, since_ms: i64) -> StoreResult<(f64, u64)> {
        let row = self.logs_conn().query_opt(
            "SELECT COALESCE(SUM(cost_saved), 0), COUNT(*) FROM logs \
             WHERE created_ms >= ?1 AND cost_saved IS NOT NULL",
            &params![since_ms],
            |r| Ok((r.get::<f64>(0)?, r.get::<u64>(1)?)),
        )?;
        Ok(row.unwrap_or((0.0, 0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let cipher = crate::store::Cipher::load(dir.path()).unwrap();
        let store = Store::open(dir.path(), cipher).unwrap();
        (dir, store)
    }

    #[test]
    fn entries_round_trip_and_expired_ones_are_deleted() {
        let (_dir, store) = store();
        let entry = |n: u8, answer: Answer, expires_ms: i64| Entry {
            key: [n; 32],
            group: Some([9; 32]),
            embedding: Some(vec![0.5, -1.25]),
            partition: "ws-1".into(),
            namespace: Some("team".into()),
            answer,
            integration: Some("oai".into()),
            model: Some("gpt-4o".into()),
            cost: Some(0.25),
            created_ms: i64::from(n),
            expires_ms,
        };
        let frames = Answer::Frames(vec![
            Bytes::from("data: 1\n\n"),
            Bytes::from("data: [DONE]\n\n"),
        ]);
        store
            .apply_cache_writes(&[
                Write::Put(Arc::new(entry(1, Answer::Json(Bytes::from("{}")), 1000))),
                Write::Put(Arc::new(entry(2, frames, 1000))),
                Write::Put(Arc::new(entry(3, Answer::Json(Bytes::from("{}")), 10))),
                Write::Put(Arc::new(entry(4, Answer::Json(Bytes::from("{}")), 1000))),
                Write::Delete(vec![[4; 32]]),
            ])
            .unwrap();
        let back = store.cache_entries(500).unwrap();
        assert_eq!(back.iter().map(|e| e.key[0]).collect::<Vec<_>>(), [2, 1]);
        let Answer::Frames(f) = &back[0].answer else {
            panic!("frames expected");
        };
        assert_eq!(f[1], Bytes::from("data: [DONE]\n\n"));
        assert_eq!(back[1].embedding.as_deref(), Some(&[0.5, -1.25][..]));
        assert_eq!(back[1].group, Some([9; 32]));
        assert_eq!(back[1].namespace.as_deref(), Some("team"));
        assert_eq!(back[1].cost, Some(0.25));
        let n: i64 = store
            .conn()
            .query_row("SELECT COUNT(*) FROM cache_entries", &[], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2, "the expired row is gone");
    }
}
