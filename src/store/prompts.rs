//! Prompts, their versions (written once, never changed) and the labels pointing at them.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{Map, Value};

use super::{is_unique_violation, new_id, new_slug, now, Store, StoreError, StoreResult};
use crate::api::prompts::{
    CreateLabel, CreatePrompt, Label, Prompt, PromptCreated, PromptRef, PromptVersion,
    UpdatePrompt, DEFAULT_LABELS,
};
use crate::api::Paging;

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound(format!("no prompt {id:?}"))
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

/// The prompt's row: (id, slug, name, collection_id, published, created_at, updated_at).
struct PromptRow {
    id: String,
    slug: String,
    name: String,
    collection_id: Option<String>,
    published: u32,
    created_at: String,
    updated_at: String,
}

fn prompt_row(conn: &Connection, id_or_slug: &str) -> StoreResult<PromptRow> {
    conn.query_row(
        "SELECT id, slug, name, collection_id, published_version, created_at, updated_at
         FROM prompts WHERE id = ?1 OR slug = ?1",
        [id_or_slug],
        |r| {
            Ok(PromptRow {
                id: r.get(0)?,
                slug: r.get(1)?,
                name: r.get(2)?,
                collection_id: r.get(3)?,
                published: r.get(4)?,
                created_at: r.get(5)?,
                updated_at: r.get(6)?,
            })
        },
    )
    .optional()?
    .ok_or_else(|| not_found(id_or_slug))
}

const VERSION_COLUMNS: &str = "id, prompt_id, version, template, description, created_at";

fn version_row(r: &Row) -> rusqlite::Result<PromptVersion> {
    let template: String = r.get(3)?;
    Ok(PromptVersion {
        id: r.get(0)?,
        prompt_id: r.get(1)?,
        version: r.get(2)?,
        template: serde_json::from_str(&template).unwrap_or_default(),
        description: r.get(4)?,
        created_at: r.get(5)?,
        labels: Vec::new(),
        published: false,
        object: "prompt_version".into(),
    })
}

/// Label name → version, for one prompt.
fn labels_of(conn: &Connection, prompt_id: &str) -> StoreResult<Vec<(String, u32)>> {
    let mut stmt = conn.prepare(
        "SELECT l.name, pl.version FROM prompt_version_labels pl
         JOIN prompt_labels l ON l.id = pl.label_id WHERE pl.prompt_id = ?1 ORDER BY l.name",
    )?;
    let rows = stmt
        .query_map([prompt_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

fn version_numbered(conn: &Connection, prompt: &PromptRow, n: u32) -> StoreResult<PromptVersion> {
    conn.query_row(
        &format!(
            "SELECT {VERSION_COLUMNS} FROM prompt_versions WHERE prompt_id = ?1 AND version = ?2"
        ),
        params![prompt.id, n],
        version_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("prompt {:?} has no version {n}", prompt.slug)))
}

fn latest(conn: &Connection, prompt_id: &str) -> StoreResult<u32> {
    Ok(conn.query_row(
        "SELECT MAX(version) FROM prompt_versions WHERE prompt_id = ?1",
        [prompt_id],
        |r| r.get(0),
    )?)
}

fn label_id(conn: &Connection, id_or_name: &str) -> StoreResult<String> {
    conn.query_row(
        "SELECT id FROM prompt_labels WHERE id = ?1 OR name = ?1",
        [id_or_name],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("no label {id_or_name:?}")))
}

impl Store {
    pub fn create_prompt(&self, new: &CreatePrompt) -> StoreResult<PromptCreated> {
        let (id, version_id, slug, at) = (
            new_id(),
            new_id(),
            new_slug("pp", &new.name, "prompt"),
            now(),
        );
        let conn = self.conn();
        let tx = conn.unchecked_transaction()?;
        tx.execute(
            "INSERT INTO prompts (id, slug, name, collection_id, published_version, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5)",
            params![id, slug, new.name, new.collection_id, at],
        )
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("a prompt named {:?} already exists", new.name))
            } else {
                e.into()
            }
        })?;
        tx.execute(
            &format!(
                "INSERT INTO prompt_versions ({VERSION_COLUMNS}) VALUES (?1, ?2, 1, ?3, ?4, ?5)"
            ),
            params![
                version_id,
                id,
                json(&new.template),
                new.version_description,
                at
            ],
        )?;
        tx.commit()?;
        Ok(PromptCreated {
            id,
            slug,
            version_id,
            version: 1,
            object: "prompt".into(),
        })
    }

    /// A new version with the change's template; the prompt's name and collection change too.
    pub fn update_prompt(
        &self,
        id_or_slug: &str,
        change: &UpdatePrompt,
    ) -> StoreResult<PromptCreated> {
        let conn = self.conn();
        let tx = conn.unchecked_transaction()?;
        let p = prompt_row(&tx, id_or_slug)?;
        let version = latest(&tx, &p.id)? + 1;
        let (version_id, at) = (new_id(), now());
        tx.execute(
            &format!(
                "INSERT INTO prompt_versions ({VERSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            ),
            params![
                version_id,
                p.id,
                version,
                json(&change.template),
                change.version_description,
                at
            ],
        )?;
        tx.execute(
            "UPDATE prompts SET name = ?2, collection_id = ?3, updated_at = ?4 WHERE id = ?1",
            params![
                p.id,
                change.name.as_ref().unwrap_or(&p.name),
                change.collection_id.as_ref().or(p.collection_id.as_ref()),
                at
            ],
        )
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!(
                    "a prompt named {:?} already exists",
                    change.name.as_deref().unwrap_or_default()
                ))
            } else {
                e.into()
            }
        })?;
        tx.commit()?;
        Ok(PromptCreated {
            id: p.id,
            slug: p.slug,
            version_id,
            version,
            object: "prompt".into(),
        })
    }

    /// The prompt with the version `reference` names (`ID`, `ID@N`, `ID@latest`, `ID@LABEL`).
    pub fn prompt(&self, reference: &str) -> StoreResult<Prompt> {
        let conn = self.conn();
        let (id, wanted) = match PromptRef::parse(reference) {
            PromptRef::Published(id) => (id, None),
            PromptRef::Version(id, n) => (id, Some(Ok(n))),
            PromptRef::Latest(id) => (id, Some(Err(None))),
            PromptRef::Label(id, label) => (id, Some(Err(Some(label)))),
        };
        let p = prompt_row(&conn, id)?;
        let labels = labels_of(&conn, &p.id)?;
        let n = match wanted {
            None => p.published,
            Some(Ok(n)) => n,
            Some(Err(None)) => latest(&conn, &p.id)?,
            Some(Err(Some(label))) => labels
                .iter()
                .find(|(name, _)| name == label)
                .map(|(_, v)| *v)
                .ok_or_else(|| {
                    StoreError::NotFound(format!(
                        "prompt {:?} has no version labelled {label:?}",
                        p.slug
                    ))
                })?,
        };
        let v = version_numbered(&conn, &p, n)?;
        Ok(Prompt {
            latest_version: latest(&conn, &p.id)?,
            labels: labels
                .into_iter()
                .map(|(k, v)| (k, Value::from(v)))
                .collect::<Map<_, _>>(),
            prompt_version: v.version,
            prompt_version_id: v.id,
            prompt_version_status: if v.version == p.published {
                "published"
            } else {
                "draft"
            }
            .into(),
            template: v.template,
            published_version: p.published,
            id: p.id,
            slug: p.slug,
            name: p.name,
            collection_id: p.collection_id,
            created_at: p.created_at,
            last_updated_at: p.updated_at,
            object: "prompt".into(),
        })
    }

    /// Published versions, oldest prompt first; `search` matches part of a name.
    pub fn prompts(&self, search: Option<&str>, page: Paging) -> StoreResult<(u64, Vec<Prompt>)> {
        let pattern = format!("%{}%", search.unwrap_or_default());
        let ids: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "SELECT id FROM prompts WHERE name LIKE ?1 ORDER BY created_at, id LIMIT ?2 OFFSET ?3",
            )?;
            let ids = stmt
                .query_map(params![pattern, page.limit(), page.offset()], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            ids
        };
        let total: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM prompts WHERE name LIKE ?1",
            [&pattern],
            |r| r.get(0),
        )?;
        let items = ids
            .iter()
            .map(|id| self.prompt(id))
            .collect::<StoreResult<_>>()?;
        Ok((total as u64, items))
    }

    pub fn delete_prompt(&self, id_or_slug: &str) -> StoreResult<()> {
        let conn = self.conn();
        let p = prompt_row(&conn, id_or_slug)?;
        conn.execute("DELETE FROM prompts WHERE id = ?1", [&p.id])?;
        Ok(())
    }

    /// Every version, newest first, with the labels pointing at each.
    pub fn prompt_versions(&self, id_or_slug: &str) -> StoreResult<Vec<PromptVersion>> {
        let conn = self.conn();
        let p = prompt_row(&conn, id_or_slug)?;
        let labels = labels_of(&conn, &p.id)?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {VERSION_COLUMNS} FROM prompt_versions WHERE prompt_id = ?1 ORDER BY version DESC"
        ))?;
        let versions = stmt
            .query_map([&p.id], version_row)?
            .map(|v| {
                v.map(|mut v| {
                    v.published = v.version == p.published;
                    v.labels = labels
                        .iter()
                        .filter(|(_, n)| *n == v.version)
                        .map(|(name, _)| name.clone())
                        .collect();
                    v
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(versions)
    }

    /// One version, by its id or its number.
    pub fn prompt_version(&self, id_or_slug: &str, version: &str) -> StoreResult<PromptVersion> {
        self.prompt_versions(id_or_slug)?
            .into_iter()
            .find(|v| v.id == version || v.version.to_string() == version)
            .ok_or_else(|| {
                StoreError::NotFound(format!("prompt {id_or_slug:?} has no version {version:?}"))
            })
    }

    /// Makes version `n` the published (default) one.
    pub fn publish_prompt(&self, id_or_slug: &str, n: u32) -> StoreResult<()> {
        let conn = self.conn();
        let p = prompt_row(&conn, id_or_slug)?;
        version_numbered(&conn, &p, n)?;
        conn.execute(
            "UPDATE prompts SET published_version = ?2, updated_at = ?3 WHERE id = ?1",
            params![p.id, n, now()],
        )?;
        Ok(())
    }

    /// Points `label` (an id or a name) at version `n` of the prompt, moving it if it pointed
    /// at another.
    pub fn label_prompt_version(&self, id_or_slug: &str, n: u32, label: &str) -> StoreResult<()> {
        let conn = self.conn();
        let p = prompt_row(&conn, id_or_slug)?;
        version_numbered(&conn, &p, n)?;
        let label = label_id(&conn, label)?;
        conn.execute(
            "INSERT INTO prompt_version_labels (prompt_id, label_id, version) VALUES (?1, ?2, ?3)
             ON CONFLICT (prompt_id, label_id) DO UPDATE SET version = excluded.version",
            params![p.id, label, n],
        )?;
        Ok(())
    }

    pub fn create_label(&self, new: &CreateLabel) -> StoreResult<Label> {
        let (id, at) = (new_id(), now());
        self.conn()
            .execute(
                "INSERT INTO prompt_labels (id, name, description, color_code, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![id, new.name, new.description, new.color_code, at],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("a label named {:?} already exists", new.name))
                } else {
                    e.into()
                }
            })?;
        self.label(&id)
    }

    pub fn label(&self, id_or_name: &str) -> StoreResult<Label> {
        self.labels()?
            .into_iter()
            .find(|l| l.id == id_or_name || l.name == id_or_name)
            .ok_or_else(|| StoreError::NotFound(format!("no label {id_or_name:?}")))
    }

    pub fn labels(&self) -> StoreResult<Vec<Label>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, name, description, color_code, created_at, updated_at FROM prompt_labels
             ORDER BY created_at, name",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Label {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    description: r.get(2)?,
                    color_code: r.get(3)?,
                    created_at: r.get(4)?,
                    last_updated_at: r.get(5)?,
                    object: "label".into(),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Deletes a custom label (and where it pointed); the default labels stay.
    pub fn delete_label(&self, id_or_name: &str) -> StoreResult<()> {
        let label = self.label(id_or_name)?;
        if DEFAULT_LABELS.contains(&label.name.as_str()) {
            return Err(StoreError::Conflict(format!(
                "{:?} is a default label and cannot be deleted",
                label.name
            )));
        }
        self.conn()
            .execute("DELETE FROM prompt_labels WHERE id = ?1", [&label.id])?;
        Ok(())
    }
}
