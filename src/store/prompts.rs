//! The prompt library: prompts and partials, each with versions written once and never
//! changed, a published version, and labels pointing at versions.

use serde_json::Value;

use super::db::{self, params, Db};
use super::{new_id, new_slug, now, unique_or, Store, StoreError, StoreResult};
use crate::api::prompts::{
    Collection, CreateCollection, CreateLabel, Label, PromptRef, UpdateCollection, UpdateLabel,
    DEFAULT_LABELS,
};
use crate::api::Paging;

/// What the library keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prompt,
    Partial,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prompt => "prompt",
            Kind::Partial => "partial",
        }
    }

    fn slug_prefix(self) -> &'static str {
        match self {
            Kind::Prompt => "pp",
            Kind::Partial => "ppt",
        }
    }
}

/// A prompt or partial, without its versions' contents.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub collection_id: Option<String>,
    pub published: u32,
    pub latest: u32,
    /// Label name → the version it points at.
    pub labels: Vec<(String, u32)>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone)]
pub struct Version {
    pub id: String,
    pub version: u32,
    pub body: Value,
    pub description: Option<String>,
    pub created_at: String,
}

impl Entry {
    /// The version `reference` names, given that it names this entry.
    pub fn pick(&self, kind: Kind, reference: &PromptRef) -> StoreResult<u32> {
        match *reference {
            PromptRef::Published(_) => Ok(self.published),
            PromptRef::Version(_, n) => Ok(n),
            PromptRef::Latest(_) => Ok(self.latest),
            PromptRef::Label(_, label) => self
                .labels
                .iter()
                .find(|(name, _)| name == label)
                .map(|(_, n)| *n)
                .ok_or_else(|| {
                    StoreError::NotFound(format!(
                        "{} {:?} has no version labelled {label:?}",
                        kind.name(),
                        self.slug
                    ))
                }),
        }
    }

    pub fn labels_of(&self, version: u32) -> Vec<String> {
        self.labels
            .iter()
            .filter(|(_, n)| *n == version)
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// A new version; `name` and `collection_id` (when given) change the entry itself.
pub struct NewVersion<'a> {
    pub name: Option<&'a str>,
    pub collection_id: Option<&'a str>,
    pub body: Value,
    pub description: Option<&'a str>,
}

fn entry(conn: &mut Db, kind: Kind, id_or_slug: &str) -> StoreResult<Entry> {
    let row = conn.query_opt(
        "SELECT id, slug, name, collection_id, published_version, created_at, updated_at,
                (SELECT MAX(version) FROM prompt_versions WHERE prompt_id = prompts.id)
             FROM prompts WHERE kind = ?1 AND (id = ?2 OR slug = ?2 OR name = ?2)",
        &params![kind.name(), id_or_slug],
        |r| {
            Ok(Entry {
                id: r.get(0)?,
                slug: r.get(1)?,
                name: r.get(2)?,
                collection_id: r.get(3)?,
                published: r.get(4)?,
                created_at: r.get(5)?,
                updated_at: r.get(6)?,
                latest: r.get(7)?,
                labels: Vec::new(),
            })
        },
    )?;
    let mut e =
        row.ok_or_else(|| StoreError::NotFound(format!("no {} {id_or_slug:?}", kind.name())))?;
    e.labels = conn.query_map(
        "SELECT l.name, pl.version FROM prompt_version_labels pl
         JOIN prompt_labels l ON l.id = pl.label_id WHERE pl.prompt_id = ?1 ORDER BY l.name",
        &params![e.id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(e)
}

fn versions_where(conn: &mut Db, entry_id: &str, only: Option<u32>) -> StoreResult<Vec<Version>> {
    let rows = conn.query_map(
        "SELECT id, version, body, description, created_at FROM prompt_versions
         WHERE prompt_id = ?1 AND (CAST(?2 AS BIGINT) IS NULL OR version = ?2) ORDER BY version DESC",
        &params![entry_id, only],
        |r| {
            let body: String = r.get(2)?;
            Ok(Version {
                id: r.get(0)?,
                version: r.get(1)?,
                body: serde_json::from_str(&body).unwrap_or(Value::Null),
                description: r.get(3)?,
                created_at: r.get(4)?,
            })
        },
    )?;
    Ok(rows)
}

fn numbered(conn: &mut Db, kind: Kind, e: &Entry, n: u32) -> StoreResult<Version> {
    versions_where(conn, &e.id, Some(n))?.pop().ok_or_else(|| {
        StoreError::NotFound(format!("{} {:?} has no version {n}", kind.name(), e.slug))
    })
}

fn label_id(conn: &mut Db, id_or_name: &str) -> StoreResult<String> {
    conn.query_opt(
        "SELECT id FROM prompt_labels WHERE id = ?1 OR name = ?1",
        &params![id_or_name],
        |r| r.get(0),
    )?
    .ok_or_else(|| StoreError::NotFound(format!("no label {id_or_name:?}")))
}

fn name_taken(kind: Kind, name: &str) -> impl Fn(db::Error) -> StoreError + '_ {
    move |e| {
        unique_or(e, || {
            StoreError::Conflict(format!("a {} named {name:?} already exists", kind.name()))
        })
    }
}

impl Store {
    /// Creates a prompt or partial with its version 1, published.
    pub fn library_create(
        &self,
        kind: Kind,
        name: &str,
        collection_id: Option<&str>,
        body: &Value,
        description: Option<&str>,
    ) -> StoreResult<(Entry, Version)> {
        let (id, at) = (new_id(), now());
        let slug = new_slug(kind.slug_prefix(), name, kind.name());
        {
            let mut conn = self.conn();
            let mut tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO prompts (id, kind, slug, name, collection_id, published_version,
                    created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6)",
                &params![id, kind.name(), slug, name, collection_id, at],
            )
            .map_err(name_taken(kind, name))?;
            tx.execute(
                "INSERT INTO prompt_versions (id, prompt_id, version, body, description, created_at)
                 VALUES (?1, ?2, 1, ?3, ?4, ?5)",
                &params![new_id(), id, body.to_string(), description, at],
            )?;
            tx.commit()?;
        }
        self.library_get(kind, &format!("{id}@1"))
    }

    /// Adds a version (never an overwrite).
    pub fn library_add_version(
        &self,
        kind: Kind,
        id_or_slug: &str,
        new: &NewVersion,
    ) -> StoreResult<(Entry, Version)> {
        let version =
            {
                let mut conn = self.conn();
                let mut tx = conn.transaction()?;
                let e = entry(&mut tx, kind, id_or_slug)?;
                let at = now();
                tx.execute(
                "INSERT INTO prompt_versions (id, prompt_id, version, body, description, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                &params![new_id(), e.id, e.latest + 1, new.body.to_string(), new.description, at],
            )?;
                let name = new.name.unwrap_or(&e.name);
                tx.execute(
                "UPDATE prompts SET name = ?2, collection_id = ?3, updated_at = ?4 WHERE id = ?1",
                &params![e.id, name, new.collection_id.or(e.collection_id.as_deref()), at],
            )
            .map_err(name_taken(kind, name))?;
                tx.commit()?;
                format!("{}@{}", e.id, e.latest + 1)
            };
        self.library_get(kind, &version)
    }

    /// The entry and the version `reference` names: `ID` (published), `ID@N`, `ID@latest` or
    /// `ID@LABEL`, where ID is an id, a slug or a name.
    pub fn library_get(&self, kind: Kind, reference: &str) -> StoreResult<(Entry, Version)> {
        let mut conn = self.conn();
        let r = PromptRef::parse(reference);
        let e = entry(&mut conn, kind, r.id())?;
        let n = e.pick(kind, &r)?;
        let v = numbered(&mut conn, kind, &e, n)?;
        Ok((e, v))
    }

    /// Published versions, oldest entry first; `search` matches part of a name.
    pub fn library_list(
        &self,
        kind: Kind,
        search: Option<&str>,
        page: Paging,
    ) -> StoreResult<(u64, Vec<(Entry, Version)>)> {
        let pattern = format!("%{}%", search.unwrap_or_default());
        // SQLite's LIKE ignores the case of ASCII letters, Postgres's does not.
        let (total, ids): (u64, Vec<String>) = {
            let mut conn = self.conn();
            let total = conn.query_row(
                "SELECT COUNT(*) FROM prompts WHERE kind = ?1 AND lower(name) LIKE lower(?2)",
                &params![kind.name(), pattern],
                |r| r.get(0),
            )?;
            let ids = conn.query_map(
                "SELECT id FROM prompts WHERE kind = ?1 AND lower(name) LIKE lower(?2)
                 ORDER BY created_at, id LIMIT ?3 OFFSET ?4",
                &params![kind.name(), pattern, page.limit(), page.offset()],
                |r| r.get(0),
            )?;
            (total, ids)
        };
        let items = ids
            .iter()
            .map(|id| self.library_get(kind, id))
            .collect::<StoreResult<_>>()?;
        Ok((total, items))
    }

    /// Every version, newest first.
    pub fn library_versions(
        &self,
        kind: Kind,
        id_or_slug: &str,
    ) -> StoreResult<(Entry, Vec<Version>)> {
        let mut conn = self.conn();
        let e = entry(&mut conn, kind, id_or_slug)?;
        let versions = versions_where(&mut conn, &e.id, None)?;
        Ok((e, versions))
    }

    /// Makes version `n` the published one.
    pub fn library_publish(&self, kind: Kind, id_or_slug: &str, n: u32) -> StoreResult<()> {
        let mut conn = self.conn();
        let e = entry(&mut conn, kind, id_or_slug)?;
        numbered(&mut conn, kind, &e, n)?;
        conn.execute(
            "UPDATE prompts SET published_version = ?2, updated_at = ?3 WHERE id = ?1",
            &params![e.id, n, now()],
        )?;
        Ok(())
    }

    /// Points `label` (an id or a name) at version `n`, moving it from where it pointed.
    pub fn library_label(
        &self,
        kind: Kind,
        id_or_slug: &str,
        n: u32,
        label: &str,
    ) -> StoreResult<()> {
        let mut conn = self.conn();
        let e = entry(&mut conn, kind, id_or_slug)?;
        numbered(&mut conn, kind, &e, n)?;
        let label = label_id(&mut conn, label)?;
        conn.execute(
            "INSERT INTO prompt_version_labels (prompt_id, label_id, version) VALUES (?1, ?2, ?3)
             ON CONFLICT (prompt_id, label_id) DO UPDATE SET version = excluded.version",
            &params![e.id, label, n],
        )?;
        Ok(())
    }

    /// Every entry of `kind` with all its versions, for the gateway's in-memory library.
    pub fn library_all(&self, kind: Kind) -> StoreResult<Vec<(Entry, Vec<Version>)>> {
        let ids: Vec<String> = self.conn().query_map(
            "SELECT id FROM prompts WHERE kind = ?1",
            &params![kind.name()],
            |r| r.get(0),
        )?;
        ids.iter()
            .map(|id| self.library_versions(kind, id))
            .collect()
    }

    pub fn library_delete(&self, kind: Kind, id_or_slug: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let e = entry(&mut conn, kind, id_or_slug)?;
        conn.execute("DELETE FROM prompts WHERE id = ?1", &params![e.id])?;
        Ok(())
    }

    pub fn create_label(&self, new: &CreateLabel) -> StoreResult<Label> {
        let (id, at) = (new_id(), now());
        self.conn()
            .execute(
                "INSERT INTO prompt_labels (id, name, description, color_code, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                &params![id, new.name, new.description, new.color_code, at],
            )
            .map_err(|e| unique_or(e, || StoreError::Conflict(format!("a label named {:?} already exists", new.name))))?;
        self.label(&id)
    }

    pub fn label(&self, id_or_name: &str) -> StoreResult<Label> {
        self.labels()?
            .into_iter()
            .find(|l| l.id == id_or_name || l.name == id_or_name)
            .ok_or_else(|| StoreError::NotFound(format!("no label {id_or_name:?}")))
    }

    pub fn labels(&self) -> StoreResult<Vec<Label>> {
        let rows = self.conn().query_map(
            "SELECT id, name, description, color_code, created_at, updated_at FROM prompt_labels
             ORDER BY created_at, name",
            &[],
            |r| {
                Ok(Label {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    description: r.get(2)?,
                    color_code: r.get(3)?,
                    created_at: r.get(4)?,
                    last_updated_at: r.get(5)?,
                    object: "label".into(),
                })
            },
        )?;
        Ok(rows)
    }

    /// A default label keeps its name (requests name it).
    pub fn update_label(&self, id_or_name: &str, change: &UpdateLabel) -> StoreResult<Label> {
        let label = self.label(id_or_name)?;
        let name = change.name.as_ref().unwrap_or(&label.name);
        if *name != label.name && DEFAULT_LABELS.contains(&label.name.as_str()) {
            return Err(StoreError::Conflict(format!(
                "{:?} is a default label and keeps its name",
                label.name
            )));
        }
        self.conn()
            .execute(
                "UPDATE prompt_labels SET name = ?2, description = ?3, color_code = ?4, updated_at = ?5
                 WHERE id = ?1",
                &params![
                    label.id,
                    name,
                    change.description.as_ref().or(label.description.as_ref()),
                    change.color_code.as_ref().or(label.color_code.as_ref()),
                    now()
                ],
            )
            .map_err(|e| unique_or(e, || StoreError::Conflict(format!("a label named {name:?} already exists"))))?;
        self.label(&label.id)
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
        self.conn().execute(
            "DELETE FROM prompt_labels WHERE id = ?1",
            &params![label.id],
        )?;
        Ok(())
    }

    pub fn create_collection(&self, new: &CreateCollection) -> StoreResult<Collection> {
        if let Some(parent) = &new.parent_collection_id {
            self.collection(parent)?;
        }
        let (id, at) = (new_id(), now());
        self.conn()
            .execute(
                "INSERT INTO prompt_collections (id, name, parent_collection_id, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                &params![id, new.name, new.parent_collection_id, at],
            )
            .map_err(|e| unique_or(e, || StoreError::Conflict(format!("a collection named {:?} already exists", new.name))))?;
        self.collection(&id)
    }

    pub fn collections(&self) -> StoreResult<Vec<Collection>> {
        let rows = self.conn().query_map(
            "SELECT id, name, parent_collection_id, created_at, updated_at FROM prompt_collections
             ORDER BY created_at, name",
            &[],
            |r| {
                Ok(Collection {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    parent_collection_id: r.get(2)?,
                    created_at: r.get(3)?,
                    last_updated_at: r.get(4)?,
                    object: "collection".into(),
                })
            },
        )?;
        Ok(rows)
    }

    /// By id or name.
    pub fn collection(&self, id_or_name: &str) -> StoreResult<Collection> {
        self.collections()?
            .into_iter()
            .find(|c| c.id == id_or_name || c.name == id_or_name)
            .ok_or_else(|| StoreError::NotFound(format!("no collection {id_or_name:?}")))
    }

    pub fn update_collection(
        &self,
        id_or_name: &str,
        change: &UpdateCollection,
    ) -> StoreResult<Collection> {
        let c = self.collection(id_or_name)?;
        let parent = match &change.parent_collection_id {
            Some(p) if *p == c.id || *p == c.name => {
                return Err(StoreError::Invalid(
                    "parent_collection_id: a collection cannot hold itself".into(),
                ))
            }
            Some(p) => Some(self.collection(p)?.id),
            None => c.parent_collection_id.clone(),
        };
        let name = change.name.as_ref().unwrap_or(&c.name);
        self.conn()
            .execute(
                "UPDATE prompt_collections SET name = ?2, parent_collection_id = ?3, updated_at = ?4
                 WHERE id = ?1",
                &params![c.id, name, parent, now()],
            )
            .map_err(|e| unique_or(e, || StoreError::Conflict(format!("a collection named {name:?} already exists"))))?;
        self.collection(&c.id)
    }

    /// Refused while prompts or other collections are in it.
    pub fn delete_collection(&self, id_or_name: &str) -> StoreResult<()> {
        let c = self.collection(id_or_name)?;
        let mut conn = self.conn();
        let used: i64 = conn.query_row(
            "SELECT (SELECT COUNT(*) FROM prompts WHERE collection_id = ?1)
                + (SELECT COUNT(*) FROM prompt_collections WHERE parent_collection_id = ?1)",
            &params![c.id],
            |r| r.get(0),
        )?;
        if used > 0 {
            return Err(StoreError::Conflict(format!(
                "collection {:?} still holds {used} prompts or collections: move or delete them first",
                c.name
            )));
        }
        conn.execute(
            "DELETE FROM prompt_collections WHERE id = ?1",
            &params![c.id],
        )?;
        Ok(())
    }
}
