//! The prompt library in memory, so rendering and prompt completions never wait on the
//! database; reloaded after every write to prompts, partials or labels.

use std::collections::HashMap;
use std::sync::Arc;

use crate::api::prompts::PromptRef;
use crate::store::prompts::{Entry, Kind, Version};
use crate::store::{Store, StoreError, StoreResult};

/// One prompt or partial with all its versions.
pub struct Held {
    pub entry: Entry,
    pub versions: Vec<Version>,
}

/// Entries of one kind, found by id, slug or name.
#[derive(Default)]
struct Shelf(HashMap<String, Arc<Held>>);

impl Shelf {
    fn load(store: &Store, kind: Kind) -> StoreResult<Shelf> {
        let mut map = HashMap::new();
        for (entry, versions) in store.library_all(kind)? {
            let held = Arc::new(Held { entry, versions });
            for key in [&held.entry.id, &held.entry.slug, &held.entry.name] {
                map.insert(key.clone(), held.clone());
            }
        }
        Ok(Shelf(map))
    }

    /// The entry and version `reference` names.
    fn resolve(&self, kind: Kind, reference: &str) -> StoreResult<(Arc<Held>, Version)> {
        let r = PromptRef::parse(reference);
        let held = self
            .0
            .get(r.id())
            .cloned()
            .ok_or_else(|| StoreError::NotFound(format!("no {} {:?}", kind.name(), r.id())))?;
        let n = held.entry.pick(kind, &r)?;
        let version = held
            .versions
            .iter()
            .find(|v| v.version == n)
            .cloned()
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "{} {:?} has no version {n}",
                    kind.name(),
                    held.entry.slug
                ))
            })?;
        Ok((held, version))
    }
}

#[derive(Default)]
pub struct Library {
    prompts: Shelf,
    partials: Shelf,
}

impl Library {
    pub fn load(store: &Store) -> StoreResult<Library> {
        Ok(Library {
            prompts: Shelf::load(store, Kind::Prompt)?,
            partials: Shelf::load(store, Kind::Partial)?,
        })
    }

    pub fn prompt(&self, reference: &str) -> StoreResult<(Arc<Held>, Version)> {
        self.prompts.resolve(Kind::Prompt, reference)
    }

    /// A partial's text by name (or id or slug) and pinned version; the published one unpinned.
    pub fn partial(&self, name: &str, version: Option<u32>) -> Option<String> {
        let reference = match version {
            Some(n) => format!("{name}@{n}"),
            None => name.to_string(),
        };
        let (_, v) = self.partials.resolve(Kind::Partial, &reference).ok()?;
        v.body.get("string")?.as_str().map(String::from)
    }
}
