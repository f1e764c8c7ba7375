//! The folded columns (`directory_users.user_name_folded`,
//! `directory_groups.display_name_folded`, `users.email_folded` with
//! `users.email`, `deferred_changes.email_folded`) hold dirsync's fold of
//! today: Unicode NFKC with full case folding (`domain::names::fold`), where
//! they held a lower-casing. The fold is dirsync's own code, which this crate
//! does not have: `store::Store::migrate` recomputes the columns (`store::
//! folds`) just before it applies this step, so the step is recorded only
//! once every row is refolded. The schema does not change; down leaves the
//! refolded values as they are.

use sea_orm_migration::prelude::*;

pub struct Migration;

/// The name `store::Store::migrate` looks for.
pub const NAME: &str = "m20261206_000009_name_folds";

impl MigrationName for Migration {
    fn name(&self) -> &str {
        NAME
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
