//! sea-orm entities, one module per table (see migrations/ for the schema).

pub mod tenants {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tenants")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod directories {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "directories")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub name: String,
        pub kind: String,
        pub vendor: String,
        pub policy: Json,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod scim_tokens {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "scim_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub directory_id: String,
        pub label: Option<String>,
        pub prefix: String,
        pub secret_hash: String,
        pub created_at: i64,
        pub last_used_at: Option<i64>,
        pub revoked_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod directory_users {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "directory_users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub directory_id: String,
        pub user_name: String,
        pub user_name_folded: String,
        pub external_id: Option<String>,
        pub display_name: Option<String>,
        pub primary_email: Option<String>,
        pub active: bool,
        pub data: Json,
        pub version: i64,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod directory_groups {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "directory_groups")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub directory_id: String,
        pub display_name: String,
        pub display_name_folded: String,
        pub external_id: Option<String>,
        pub data: Json,
        pub version: i64,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod directory_memberships {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "directory_memberships")]
    pub struct Model {
        pub directory_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub group_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub member_id: String,
        pub member_type: String,
        pub display: Option<String>,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod users {
    use sea_orm::FromJsonQueryResult;
    use sea_orm::entity::prelude::*;
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub email: String,
        pub email_folded: String,
        pub status: String,
        pub deactivated_by: Option<String>,
        pub deactivated_at: Option<i64>,
        pub role: String,
        pub has_signed_in: bool,
        pub given_name: Option<String>,
        pub family_name: Option<String>,
        pub display_name: Option<String>,
        pub avatar_url: Option<String>,
        pub department: Option<String>,
        pub title: Option<String>,
        pub employee_number: Option<String>,
        pub manager: Option<String>,
        /// Name → string or list of strings (the attribute mapping's custom
        /// attributes; NULL when none).
        pub custom_attributes: Option<CustomAttributes>,
        pub profile_directory_id: Option<String>,
        pub version: i64,
        pub created_at: i64,
        pub updated_at: i64,
    }

    /// A user's custom attributes by name, as the column's JSON object holds
    /// them. The engine's own (`domain::custom::Custom`): the row shares them
    /// with the snapshot they were mapped into and the event about the user,
    /// and their JSON text is written once for all (this runs for every user
    /// a sync creates or updates).
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult)]
    #[serde(transparent)]
    pub struct CustomAttributes(pub crate::domain::custom::Custom);

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod user_links {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "user_links")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub directory_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub source_id: String,
        pub tenant_id: String,
        pub app_user_id: String,
        pub external_id: Option<String>,
        pub directory_active: bool,
        /// The last snapshot, read only where needed (`app::links::snapshots_of`).
        pub snapshot: Option<Json>,
        pub snapshot_hash: String,
        /// The app user's version and the policy's fingerprint when the
        /// engine last judged `snapshot_hash` (`reconcile::apply`'s fast path).
        pub judged: Option<String>,
        pub removed_at: Option<i64>,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod groups {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "groups")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub directory_id: String,
        pub source_id: String,
        pub name: String,
        pub external_id: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod group_members {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "group_members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub group_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod events {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub seq: i64,
        pub r#type: String,
        pub resource_type: String,
        pub resource_id: String,
        pub data: Json,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod event_sequences {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_sequences")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        pub last_seq: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod connections {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "connections")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub directory_id: String,
        pub tenant_id: String,
        pub provider: String,
        pub settings: Json,
        pub scope: Json,
        pub schedule: Json,
        pub secret_sealed: String,
        pub cursor: Option<String>,
        pub next_run_at: Option<i64>,
        pub lease_owner: Option<String>,
        pub lease_expires_at: Option<i64>,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod sync_runs {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sync_runs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub connection_id: String,
        pub directory_id: String,
        pub tenant_id: String,
        pub trigger: String,
        pub mode: String,
        pub status: String,
        pub started_at: i64,
        pub finished_at: Option<i64>,
        pub counts: Json,
        pub errors: Json,
        pub deactivations: i64,
        pub approved_by_run_id: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod run_deactivations {
    use sea_orm::entity::prelude::*;

    /// An app user a run the guard stopped would have deactivated
    /// (migration m20261206_000005).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "run_deactivations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub run_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        /// `missing` or `directory`.
        pub reason: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod deferred_changes {
    use sea_orm::entity::prelude::*;

    /// A directory's word on a user that waits for an address another user
    /// of the same directory still holds (migration m20261206_000004).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "deferred_changes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub directory_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub source_id: String,
        pub tenant_id: String,
        /// The folded address the change waits for.
        pub email_folded: String,
        /// The app user holding it when the change was deferred.
        pub holder_id: Option<String>,
        pub reason: String,
        /// The complete snapshot to apply once the address is free.
        pub snapshot: Json,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod webhook_endpoints {
    use sea_orm::entity::prelude::*;

    /// A host application's webhook endpoint (migration m20261206_000006).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_endpoints")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub url: String,
        pub description: String,
        /// The event types it takes; None: every type.
        pub event_types: Option<Json>,
        pub batch_size: i32,
        pub enabled: bool,
        pub disabled_reason: Option<String>,
        pub secret_sealed: String,
        pub previous_secret_sealed: Option<String>,
        pub previous_expires_at: Option<i64>,
        /// The last event the endpoint took (or skipped by its types).
        pub delivered_seq: i64,
        /// Failed attempts of the event at the head.
        pub failures: i32,
        pub next_attempt_at: i64,
        pub lease_owner: Option<String>,
        pub lease_expires_at: Option<i64>,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod webhook_attempts {
    use sea_orm::entity::prelude::*;

    /// One delivery attempt to an endpoint.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webhook_attempts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub endpoint_id: String,
        pub tenant_id: String,
        pub first_seq: i64,
        pub last_seq: i64,
        pub attempted_at: i64,
        /// The HTTP status; None when no answer came (timeout, refused).
        pub status: Option<i32>,
        pub latency_ms: i64,
        /// `delivered`, `failed`, `gone` (410) or `error`.
        pub outcome: String,
        /// At most 1 KB of the answer, or the error.
        pub excerpt: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod scim_request_batches {
    use sea_orm::entity::prelude::*;

    /// SCIM requests of one directory the log's writer took together
    /// (`store::scim_requests`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "scim_request_batches")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub directory_id: String,
        /// The newest request's id (UUIDv7, taken when it arrived).
        #[sea_orm(primary_key, auto_increment = false)]
        pub last_id: String,
        /// The oldest request's id in `records` (kept or not).
        pub first_id: String,
        /// When the newest arrived, epoch milliseconds.
        pub last_at: i64,
        /// How many requests the directory had logged up to the newest
        /// of these: the number of the newest.
        pub total: i64,
        /// How many of `records`' newest are kept: a cap or a prune that
        /// falls inside the batch lowers it, and the rest are never read.
        pub count: i32,
        /// The requests, newest first: a JSON array, written once.
        pub records: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod operators {
    use sea_orm::entity::prelude::*;

    /// Someone who signs in to the dashboard (migration m20261207_000012).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "operators")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub email: String,
        /// Lowercase; unique.
        pub email_folded: String,
        /// argon2id, as a PHC string.
        pub password_hash: String,
        pub created_at: i64,
        pub last_sign_in_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod sessions {
    use sea_orm::entity::prelude::*;

    /// A browser's session: an operator's, or a setup portal's for one
    /// tenant.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sessions")]
    pub struct Model {
        /// SHA-256 (hex) of the cookie's value.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id_hash: String,
        /// `operator` or `portal`.
        pub kind: String,
        pub operator_id: Option<String>,
        pub tenant_id: Option<String>,
        pub csrf_token: String,
        pub created_at: i64,
        pub expires_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod setup_links {
    use sea_orm::entity::prelude::*;

    /// A tenant's setup link (migration m20261207_000013): only the hash of
    /// its secret is kept.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "setup_links")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        /// SHA-256 (hex) of the secret.
        pub secret_hash: String,
        /// `scim`, `pull` or `scim,pull`.
        pub allows: String,
        pub created_at: i64,
        pub expires_at: i64,
        pub used_at: Option<i64>,
        pub revoked_at: Option<i64>,
        /// The session it opened (`sessions.id_hash`).
        pub session_hash: Option<String>,
        pub created_by: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
