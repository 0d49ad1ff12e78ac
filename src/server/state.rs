use super::auth::KeyIndex;
use crate::store::{Store, StoreResult};

pub struct AppState {
    pub store: Store,
    pub keys: KeyIndex,
}

impl AppState {
    pub fn new(store: Store) -> StoreResult<AppState> {
        let state = AppState {
            store,
            keys: KeyIndex::default(),
        };
        state.reload_keys()?;
        Ok(state)
    }

    /// Refreshes the in-memory key index after a write to the keys table.
    pub fn reload_keys(&self) -> StoreResult<()> {
        self.keys.replace(self.store.key_records()?);
        Ok(())
    }
}
