//! Attribute mapping on the pull path (issue 14): each connector asks its
//! provider for what the rules read, through the fakes, which serve a user's
//! cost center only where the real services do (Graph: only when `$select`
//! names it), and the engine maps it into `custom_attributes`.

use dirsync::admin::{self, PolicyChange};
use dirsync::pull::PullError;
use dirsync::pull::connector;
use dirsync::pull::fake::{GRAPH_COST_CENTER, Org};
use dirsync::pull::retry::Pacing;
use dirsync::pull::run::{self, Request};
use dirsync::pull::source::{Check, GroupPage, MemberPage, Position, Source, UserPage};
use dirsync::reconcile::mapping::Rule;
use dirsync::store::Store;
use serde_json::json;

use crate::pull::{PROVIDERS, Provider, Pulled, count, pulled};

/// The rules reading each provider's cost center into `custom.cost_center`
/// (and, on Entra, the directory extension into `custom.cost_code`).
fn rules(provider: Provider) -> Vec<Rule> {
    let rules = match provider {
        Provider::Google => {
            json!([{"source": "customSchemas.HR.costCenter", "target": "custom.cost_center"}])
        }
        Provider::Entra => json!([
            {"source": "onPremisesExtensionAttributes.extensionAttribute3", "target": "custom.cost_center"},
            {"source": GRAPH_COST_CENTER, "target": "custom.cost_code"},
        ]),
        Provider::Okta => json!([{"source": "costCenter", "target": "custom.cost_center"}]),
    };
    serde_json::from_value(rules).unwrap()
}

async fn mapped(p: &Pulled, provider: Provider) {
    p.policy(PolicyChange {
        attribute_mapping: Some(rules(provider)),
        ..PolicyChange::default()
    })
    .await;
}

fn incremental() -> Request {
    Request {
        incremental: true,
        ..Request::manual()
    }
}

/// The `changed` lists of the `user.updated` events after `after`.
async fn updates_after(p: &Pulled, after: i64) -> Vec<Vec<String>> {
    p.app
        .events_after(after)
        .await
        .iter()
        .filter(|e| e["type"] == "user.updated")
        .map(|e| {
            e["data"]["changed"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| n.as_str().unwrap_or("").to_owned())
                .collect()
        })
        .collect()
}

fn all_active(users: usize) -> Org {
    let mut directory = Org::generate(users, 1, 21);
    for u in &mut directory.users {
        u.active = true;
    }
    directory
}

#[tokio::test]
async fn a_mapped_provider_property_reaches_the_app_user_and_its_change_is_an_update_naming_it() {
    for provider in PROVIDERS {
        let p = pulled(provider, all_active(12), json!({})).await;
        mapped(&p, provider).await;
        let first = p.sync().await;
        assert_eq!(first.status, "succeeded", "{provider:?}: {}", first.errors);
        let user = p.app_user(3).await;
        assert_eq!(
            user["custom_attributes"]["cost_center"],
            p.user(3).cost_center.as_str(),
            "{provider:?}: {user}"
        );
        if provider == Provider::Entra {
            assert_eq!(
                user["custom_attributes"]["cost_code"],
                p.user(3).cost_center.as_str(),
                "a directory extension is asked for by $select: {user}"
            );
        }

        let id = p.user(3).id;
        p.shared
            .directory_mut()
            .update_user(&id, |u| u.cost_center = "CC-900".into());
        let seq = p.app.last_seq().await;
        // On Entra an incremental run is a delta round: partial items.
        let (run, _) = p.sync_with(incremental()).await;
        assert_eq!(run.status, "succeeded", "{provider:?}: {}", run.errors);
        assert_eq!(count(&run, "/users/updated"), 1, "{provider:?}");
        let mut expected = vec!["custom_attributes.cost_center".to_owned()];
        if provider == Provider::Entra {
            expected.push("custom_attributes.cost_code".to_owned());
        }
        let mut changes = updates_after(&p, seq).await;
        for c in &mut changes {
            c.sort();
        }
        assert_eq!(changes, vec![expected], "{provider:?}");
        assert_eq!(
            p.app_user(3).await["custom_attributes"]["cost_center"],
            "CC-900",
            "{provider:?}"
        );
    }
}

#[tokio::test]
async fn a_change_to_an_unmapped_property_keeps_the_custom_attribute_as_it_was() {
    for provider in PROVIDERS {
        let p = pulled(provider, all_active(6), json!({})).await;
        mapped(&p, provider).await;
        p.sync().await;
        let before = p.app_user(1).await["custom_attributes"].clone();
        assert_ne!(before, json!({}), "{provider:?}");
        let id = p.user(1).id;
        p.shared
            .directory_mut()
            .update_user(&id, |u| u.department = "Research".into());
        let seq = p.app.last_seq().await;
        let (run, _) = p.sync_with(incremental()).await;
        assert_eq!(run.status, "succeeded", "{provider:?}: {}", run.errors);
        assert_eq!(
            updates_after(&p, seq).await,
            vec![vec!["department".to_owned()]],
            "{provider:?}"
        );
        let user = p.app_user(1).await;
        assert_eq!(user["custom_attributes"], before, "{provider:?}");
        assert_eq!(user["department"], "Research", "{provider:?}");
    }
}

#[tokio::test]
async fn setting_a_mapping_on_a_pull_directory_makes_the_next_run_full_and_maps_everyone() {
    for provider in PROVIDERS {
        let p = pulled(provider, all_active(8), json!({})).await;
        p.sync().await;
        let (again, _) = p.sync_with(incremental()).await;
        let expected = if provider == Provider::Google {
            // Google has no incremental listing: every run is full.
            "full"
        } else {
            "incremental"
        };
        assert_eq!(again.mode, expected, "{provider:?}");
        assert!(
            p.app
                .app_users()
                .await
                .iter()
                .all(|u| u["custom_attributes"] == json!({})),
            "{provider:?}: no rules, no custom attributes"
        );

        mapped(&p, provider).await;
        let (run, _) = p.sync_with(incremental()).await;
        assert_eq!(run.mode, "full", "{provider:?}: the cursor was forgotten");
        assert_eq!(run.status, "succeeded", "{provider:?}: {}", run.errors);
        for u in p.app.app_users().await {
            assert!(
                u["custom_attributes"]["cost_center"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("CC-")),
                "{provider:?}: {u}"
            );
        }
    }
}

/// A connector whose first users request waits while the directory's
/// mapping changes: a run under way when an operator sets rules.
struct RemappedMidRun {
    inner: connector::Connector,
    store: Store,
    directory_id: String,
    rules: Option<Vec<Rule>>,
}

impl Source for RemappedMidRun {
    async fn check(&mut self) -> Result<Check, PullError> {
        self.inner.check().await
    }

    async fn users(&mut self, at: &Position) -> Result<UserPage, PullError> {
        if let Some(rules) = self.rules.take() {
            let change = PolicyChange {
                attribute_mapping: Some(rules),
                ..PolicyChange::default()
            };
            admin::update_policy(&self.store, &self.directory_id, change)
                .await
                .unwrap();
        }
        self.inner.users(at).await
    }

    async fn groups(&mut self, next: Option<&str>) -> Result<GroupPage, PullError> {
        self.inner.groups(next).await
    }

    async fn members(&mut self, group: &str, next: Option<&str>) -> Result<MemberPage, PullError> {
        self.inner.members(group, next).await
    }
}

#[tokio::test]
async fn a_run_that_began_under_other_rules_keeps_no_cursor_so_the_next_run_is_full() {
    // Google has no incremental listing: every run is full anyway.
    for provider in [Provider::Entra, Provider::Okta] {
        let p = pulled(provider, all_active(6), json!({})).await;
        p.sync().await;
        let (pacing, _) = Pacing::recording(4);
        let (key, store, rules) = (p.key.clone(), p.app.store.clone(), rules(provider));
        let directory_id = p.directory_id.clone();
        let during = run::run_connection(
            &p.app.store,
            &p.directory_id,
            &incremental(),
            "test",
            move |c| {
                Ok(RemappedMidRun {
                    inner: connector::for_connection(Some(&key), c, pacing)?,
                    store,
                    directory_id,
                    rules: Some(rules),
                })
            },
            &mut |_| {},
        )
        .await
        .unwrap();
        assert_eq!(during.mode, "incremental", "{provider:?}");
        assert_eq!(
            during.status, "succeeded",
            "{provider:?}: {}",
            during.errors
        );
        let (next, _) = p.sync_with(incremental()).await;
        assert_eq!(
            next.mode, "full",
            "{provider:?}: the cursor of a run under the old rules was not kept"
        );
        assert!(
            p.app_user(2).await["custom_attributes"]["cost_center"].is_string(),
            "{provider:?}"
        );
    }
}

#[tokio::test]
async fn google_is_asked_for_the_custom_schemas_the_rules_read_and_no_other() {
    let p = pulled(Provider::Google, all_active(6), json!({})).await;
    let run = p.sync().await;
    assert_eq!(run.status, "succeeded", "{}", run.errors);
    let asked = p.shared.user_queries();
    assert!(!asked.is_empty());
    for q in &asked {
        assert!(
            q.contains("projection=basic") && !q.contains("customFieldMask"),
            "no rule reads a custom schema: {q}"
        );
    }
    assert_eq!(p.app_user(3).await["custom_attributes"], json!({}));

    mapped(&p, Provider::Google).await;
    let from = asked.len();
    let run = p.sync().await;
    assert_eq!(run.status, "succeeded", "{}", run.errors);
    let asked = p.shared.user_queries();
    assert!(asked.len() > from);
    for q in &asked[from..] {
        assert!(
            q.contains("projection=custom") && q.contains("customFieldMask=HR"),
            "{q}"
        );
        // The fake serves a `Security` schema too; no rule reads it.
        assert!(!q.contains("Security") && !q.contains("full"), "{q}");
    }
    assert_eq!(
        p.app_user(3).await["custom_attributes"]["cost_center"],
        p.user(3).cost_center.as_str()
    );
}
