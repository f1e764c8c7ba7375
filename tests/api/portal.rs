//! The customer's setup portal (/portal) and its setup links: a link made
//! through the host API, the CLI or the store opens one short-lived portal
//! session, once; a used, expired, revoked or unknown link is a page that
//! says so; the session sees only its tenant and only what its link
//! allowed; every form needs the session's CSRF token. Then the two setups
//! an IT admin goes through: a SCIM directory whose first requests show up
//! live, and a pull connection against the local fake Entra ID.

use reqwest::redirect::Policy;
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::host_api::{call, token};
use crate::pull::{Provider, start_fake};
use dirsync::admin::operators;
use dirsync::admin::setup::{self, Allows};
use dirsync::config::{ScimLogArgs, ServerSettings};
use dirsync::crypto::Secret;
use dirsync::pull::fake::{Org, Shared};

const PUBLIC: &str = "http://portal.example";

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// A link for the tenant, made as the host application's code would.
async fn link(app: &TestApp, tenant: &str, allows: Allows) -> String {
    setup::create(
        &app.store,
        tenant,
        allows,
        setup::DEFAULT_EXPIRY,
        "test",
        PUBLIC,
    )
    .await
    .unwrap()
    .url
}

/// The link's path on this server (its URL is built on another public URL).
fn path_of(url: &str) -> String {
    url.strip_prefix(PUBLIC).unwrap().to_owned()
}

fn only(scim: bool, pull: bool) -> Allows {
    Allows { scim, pull }
}

/// A portal session: its cookie and the CSRF token its pages carry.
struct Session {
    cookie: String,
    csrf: String,
}

/// The value of the first hidden `csrf` input of a page.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

/// The text of the element with this id (up to the next tag).
fn text_of(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let start = at + html[at..].find('>')? + 1;
    let end = start + html[start..].find('<')?;
    Some(html[start..end].trim().to_owned())
}

async fn open(app: &TestApp, client: &reqwest::Client, url: &str) -> Response {
    client
        .get(format!("{}{}", app.origin, path_of(url)))
        .send()
        .await
        .unwrap()
}

/// Open the link: its page (a GET, which a mail scanner may send too)
/// uses nothing up; its button (a POST) sets the session's cookie and the
/// browser goes on to /portal, without the secret in its address.
async fn redeem(app: &TestApp, client: &reqwest::Client, url: &str) -> Session {
    for _ in 0..2 {
        let page = open(app, client, url).await;
        assert_eq!(page.status(), 200);
        assert!(page.headers().get("set-cookie").is_none());
        let html = page.text().await.unwrap();
        assert!(html.contains("id=\"portal-start\""), "{html}");
    }
    let res = client
        .post(format!("{}{}", app.origin, path_of(url)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/portal");
    let header = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("dirsync_portal="))
        .expect("the portal's cookie")
        .to_owned();
    for attribute in ["Path=/portal", "HttpOnly", "SameSite=Strict"] {
        assert!(header.contains(attribute), "{header}");
    }
    let cookie = header.split(';').next().unwrap().to_owned();
    let home = get(app, client, &cookie, "/portal").await;
    assert_eq!(home.status(), 200);
    let csrf = csrf_of(&home.text().await.unwrap());
    Session { cookie, csrf }
}

async fn get(app: &TestApp, client: &reqwest::Client, cookie: &str, path: &str) -> Response {
    client
        .get(format!("{}{path}", app.origin))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

async fn post(
    app: &TestApp,
    client: &reqwest::Client,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> Response {
    client
        .post(format!("{}{path}", app.origin))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap()
}

impl Session {
    async fn get(&self, app: &TestApp, client: &reqwest::Client, path: &str) -> Response {
        get(app, client, &self.cookie, path).await
    }

    async fn post(
        &self,
        app: &TestApp,
        client: &reqwest::Client,
        path: &str,
        form: &[(&str, &str)],
    ) -> Response {
        let mut with = vec![("csrf", self.csrf.as_str())];
        with.extend_from_slice(form);
        post(app, client, &self.cookie, path, &with).await
    }
}

/// The refusal page: the status, and the words it shows.
async fn refused(res: Response, status: u16, words: &str) {
    assert_eq!(res.status(), status);
    for header in ["content-security-policy", "x-content-type-options"] {
        assert!(res.headers().contains_key(header), "{header}");
    }
    let html = res.text().await.unwrap();
    assert!(html.contains(words), "{words:?} in {html}");
    assert!(html.contains("id=\"portal-error-hint\""), "{html}");
}

#[tokio::test]
async fn a_link_from_the_host_api_opens_the_portal_once_and_the_second_use_is_gone() {
    let app = spawn_app().await;
    let admin = token("*", "admin");
    let (status, created, headers) = call(
        &app,
        Some(&admin),
        Method::POST,
        &format!("/api/v1/tenants/{}/setup-links", app.tenant),
        Some(json!({"allow": ["scim"], "expires_in": "2d"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(headers["cache-control"], "no-store");
    let url = created["url"].as_str().unwrap().to_owned();
    let secret = url.rsplit('/').next().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("{}/portal/setup/", app.origin)),
        "{url}"
    );
    assert_eq!(created["allows"], json!(["scim"]));
    assert_eq!(created["status"], "unused");
    assert_eq!(created["created_by"], "api");

    // The list never carries the secret, nor its hash.
    let (status, list, _) = call(
        &app,
        Some(&admin),
        Method::GET,
        &format!("/api/v1/tenants/{}/setup-links", app.tenant),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let listed = list.to_string();
    assert!(!listed.contains(&secret), "{listed}");
    assert!(!listed.contains(&dirsync::crypto::hash_token(&secret)));
    assert!(list[0].get("url").is_none(), "{list}");

    let client = browser();
    let path = url.strip_prefix(&app.origin).unwrap();
    // Fetching the link (a mail scanner, a chat's preview) uses nothing up.
    let scanned = client
        .get(format!("{}{path}", app.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(scanned.status(), 200);
    let first = client
        .post(format!("{}{path}", app.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 303);
    let again = client
        .post(format!("{}{path}", app.origin))
        .send()
        .await
        .unwrap();
    refused(again, 410, "already used").await;
    let shown = client
        .get(format!("{}{path}", app.origin))
        .send()
        .await
        .unwrap();
    refused(shown, 410, "already used").await;

    let (_, list, _) = call(
        &app,
        Some(&admin),
        Method::GET,
        &format!("/api/v1/tenants/{}/setup-links", app.tenant),
        None,
    )
    .await;
    assert_eq!(list[0]["status"], "used");
    assert!(list[0]["used_at"].is_string());
}

#[tokio::test]
async fn the_host_api_refuses_bad_links_and_another_tenants_token() {
    let app = spawn_app().await;
    let admin = token("*", "admin");
    let path = format!("/api/v1/tenants/{}/setup-links", app.tenant);
    for (body, field) in [
        (json!({"allow": ["ldap"]}), "allow"),
        (json!({"expires_in": "soon"}), "expires_in"),
        (json!({"expires_in": "90d"}), "expires_in"),
    ] {
        let (status, problem, _) = call(&app, Some(&admin), Method::POST, &path, Some(body)).await;
        assert_eq!(status, 400, "{problem}");
        assert!(problem.to_string().contains(field), "{problem}");
    }
    // A tenant's own token makes links for itself, not for another.
    let own = token(&app.tenant, "admin");
    let (status, _, _) = call(&app, Some(&own), Method::POST, &path, None).await;
    assert_eq!(status, 201);
    dirsync::admin::create_tenant(&app.store, "other-co")
        .await
        .unwrap();
    let (status, _, _) = call(
        &app,
        Some(&own),
        Method::POST,
        "/api/v1/tenants/other-co/setup-links",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let read = token(&app.tenant, "read");
    let (status, _, _) = call(&app, Some(&read), Method::POST, &path, None).await;
    assert_eq!(status, 403);
}

/// Run `dirsync --database-url URL ARGS… --json`.
fn cli(db_url: &str, args: &[&str]) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .arg("--database-url")
        .arg(db_url)
        .args(args)
        .arg("--json")
        .output()
        .expect("run dirsync");
    assert!(
        out.status.success(),
        "dirsync {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[tokio::test]
async fn the_cli_creates_lists_and_revokes_links_and_a_revoked_link_is_gone() {
    let app = spawn_app().await;
    let created = cli(
        &app.db_url,
        &[
            "setup-link",
            "create",
            "--tenant",
            &app.tenant,
            "--allow",
            "pull",
            "--expires",
            "1h",
            "--public-url",
            PUBLIC,
        ],
    );
    let url = created["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with("http://portal.example/portal/setup/"),
        "{url}"
    );
    assert_eq!(created["allows"], json!(["pull"]));
    assert_eq!(created["created_by"], "cli");
    let id = created["id"].as_str().unwrap().to_owned();
    let listed = cli(
        &app.db_url,
        &["setup-link", "list", "--tenant", &app.tenant],
    );
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["status"], "unused");
    assert!(!listed.to_string().contains(url.rsplit('/').next().unwrap()));
    let revoked = cli(
        &app.db_url,
        &["setup-link", "revoke", "--tenant", &app.tenant, &id],
    );
    assert_eq!(revoked["status"], "revoked");
    refused(open(&app, &browser(), &url).await, 410, "revoked").await;
}

#[tokio::test]
async fn an_expired_or_unknown_link_is_a_page_that_says_so() {
    let app = spawn_app().await;
    let url = link(&app, &app.tenant, Allows::default()).await;
    let id = setup::list(&app.store, &app.tenant).await.unwrap()[0]
        .id
        .clone();
    dirsync::store::setup_links::set_expires_at(app.store.connection(), &id, 1)
        .await
        .unwrap();
    let client = browser();
    refused(open(&app, &client, &url).await, 410, "expired").await;
    assert_eq!(
        setup::list(&app.store, &app.tenant).await.unwrap()[0].status,
        "expired"
    );
    refused(
        open(&app, &client, &format!("{PUBLIC}/portal/setup/not-a-link")).await,
        404,
        "not known",
    )
    .await;
}

#[tokio::test]
async fn revoking_a_link_ends_the_session_it_opened() {
    let app = spawn_app().await;
    let client = browser();
    let url = link(&app, &app.tenant, Allows::default()).await;
    let session = redeem(&app, &client, &url).await;
    let id = setup::list(&app.store, &app.tenant).await.unwrap()[0]
        .id
        .clone();
    setup::revoke(&app.store, &app.tenant, &id).await.unwrap();
    refused(session.get(&app, &client, "/portal").await, 403, "ended").await;
}

/// Every portal page and form, on the app's own directory.
fn portal_routes(app: &TestApp) -> Vec<(Method, String)> {
    let dir = &app.directory_id;
    vec![
        (Method::GET, "/portal".into()),
        (Method::POST, "/portal/scim".into()),
        (Method::GET, "/portal/pull/entra".into()),
        (Method::POST, "/portal/pull/entra".into()),
        (Method::GET, format!("/portal/directories/{dir}")),
        (Method::GET, format!("/portal/directories/{dir}/requests")),
        (Method::POST, format!("/portal/directories/{dir}/test")),
        (Method::POST, format!("/portal/directories/{dir}/preview")),
        (Method::POST, format!("/portal/directories/{dir}/mapping")),
        (Method::POST, format!("/portal/directories/{dir}/schedule")),
        (Method::POST, "/portal/finish".into()),
    ]
}

async fn send(
    app: &TestApp,
    client: &reqwest::Client,
    cookie: Option<&str>,
    method: Method,
    path: &str,
) -> Response {
    let mut req = client.request(method, format!("{}{path}", app.origin));
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    req.form(&[("csrf", "x"), ("vendor", "okta")])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_portal_route_refuses_no_session_and_an_operators_session() {
    let app = spawn_app().await;
    let client = browser();
    operators::create_operator(
        &app.store,
        "ops@example.com",
        &Secret::new("correct horse battery".into()),
    )
    .await
    .unwrap();
    let operator = operators::sign_in(
        &app.store,
        "ops@example.com",
        &Secret::new("correct horse battery".into()),
    )
    .await
    .unwrap();
    let as_portal = format!("dirsync_portal={}", operator.cookie.expose());
    let as_admin = format!("dirsync_admin={}", operator.cookie.expose());
    for (method, path) in portal_routes(&app) {
        for cookie in [None, Some(as_portal.as_str()), Some(as_admin.as_str())] {
            let res = send(&app, &client, cookie, method.clone(), &path).await;
            assert_eq!(res.status(), 403, "{method} {path} with {cookie:?}");
            let html = res.text().await.unwrap();
            assert!(html.contains("setup session"), "{html}");
        }
    }
    assert_eq!(
        dirsync::admin::list_directories(&app.store, &app.tenant)
            .await
            .unwrap()
            .len(),
        1,
        "nothing was created"
    );
}

#[tokio::test]
async fn a_portal_session_does_not_see_another_tenants_directories() {
    let app = spawn_app().await;
    let client = browser();
    dirsync::admin::create_tenant(&app.store, "other-co")
        .await
        .unwrap();
    let session = redeem(
        &app,
        &client,
        &link(&app, "other-co", Allows::default()).await,
    )
    .await;
    let home = session
        .get(&app, &client, "/portal")
        .await
        .text()
        .await
        .unwrap();
    assert!(!home.contains(&app.directory_id), "{home}");
    for (method, path) in portal_routes(&app)
        .into_iter()
        .filter(|(_, p)| p.contains(&app.directory_id))
    {
        let res = match method {
            Method::GET => session.get(&app, &client, &path).await,
            _ => session.post(&app, &client, &path, &[]).await,
        };
        assert_eq!(res.status(), 404, "{method} {path}");
    }
}

#[tokio::test]
async fn forms_without_the_sessions_csrf_token_are_refused() {
    let app = spawn_app().await;
    let client = browser();
    let session = redeem(
        &app,
        &client,
        &link(&app, &app.tenant, Allows::default()).await,
    )
    .await;
    for form in [
        vec![("vendor", "okta")],
        vec![("vendor", "okta"), ("csrf", "")],
        vec![("vendor", "okta"), ("csrf", "not-the-sessions")],
    ] {
        let res = post(&app, &client, &session.cookie, "/portal/scim", &form).await;
        assert_eq!(res.status(), 403, "{form:?}");
    }
    assert_eq!(
        dirsync::admin::list_directories(&app.store, &app.tenant)
            .await
            .unwrap()
            .len(),
        1,
        "nothing was created"
    );
    let res = session
        .post(&app, &client, "/portal/scim", &[("vendor", "okta")])
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_link_that_allows_only_scim_cannot_open_pull_setup() {
    let app = spawn_app().await;
    let client = browser();
    let session = redeem(
        &app,
        &client,
        &link(&app, &app.tenant, only(true, false)).await,
    )
    .await;
    let home = session
        .get(&app, &client, "/portal")
        .await
        .text()
        .await
        .unwrap();
    assert!(home.contains("id=\"scim-choices\""));
    assert!(!home.contains("id=\"pull-choices\""), "{home}");
    refused(
        session.get(&app, &client, "/portal/pull/entra").await,
        403,
        "does not allow",
    )
    .await;
    let res = session
        .post(
            &app,
            &client,
            "/portal/pull/entra",
            &[("tenant_id", "x"), ("client_id", "y"), ("secret", "z")],
        )
        .await;
    assert_eq!(res.status(), 403);
    // And one that allows only pull sets up no SCIM directory.
    let session = redeem(
        &app,
        &client,
        &link(&app, &app.tenant, only(false, true)).await,
    )
    .await;
    let res = session
        .post(&app, &client, "/portal/scim", &[("vendor", "okta")])
        .await;
    assert_eq!(res.status(), 403);
    let res = session
        .get(
            &app,
            &client,
            &format!("/portal/directories/{}", app.directory_id),
        )
        .await;
    assert_eq!(
        res.status(),
        403,
        "the tenant's SCIM directory is not this link's"
    );
}

#[tokio::test]
async fn the_scim_setup_shows_the_token_once_and_the_requests_that_arrive() {
    let app = spawn_app_with(ServerSettings {
        scim_log: ScimLogArgs::defaults(),
        ..ServerSettings::for_tests()
    })
    .await;
    let client = browser();
    let session = redeem(
        &app,
        &client,
        &link(&app, &app.tenant, only(true, false)).await,
    )
    .await;
    let res = session
        .post(&app, &client, "/portal/scim", &[("vendor", "okta")])
        .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert_eq!(
        text_of(&html, "scim-base-url").unwrap(),
        format!("{}/scim/v2", app.origin)
    );
    let secret = text_of(&html, "scim-token").expect("the token, once");
    assert!(html.contains("Okta"), "the vendor's steps");
    assert!(html.contains("Test Connector Configuration"), "{html}");
    assert!(html.contains("hx-trigger=\"every 3s\""), "live status");
    let directory = dirsync::admin::list_directories(&app.store, &app.tenant)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.vendor == "okta")
        .expect("an Okta directory");
    assert_eq!(directory.name, "Okta (SCIM)");

    // The IdP's first request, with the token the portal showed.
    let created = app
        .client
        .post(format!("{}/Users", app.base))
        .bearer_auth(&secret)
        .header("content-type", "application/scim+json")
        .json(&json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "first@customer.example",
            "emails": [{"value": "first@customer.example", "primary": true}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    app.scim_log.flush().await;
    let status = session
        .get(
            &app,
            &client,
            &format!("/portal/directories/{}/requests", directory.id),
        )
        .await;
    assert_eq!(status.status(), 200);
    let status = status.text().await.unwrap();
    assert!(status.contains("POST /scim/v2/Users"), "{status}");
    assert!(
        status.contains("201") && status.contains("created"),
        "{status}"
    );

    // Its page later: the base URL and the status, never the token.
    let page = session
        .get(
            &app,
            &client,
            &format!("/portal/directories/{}", directory.id),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains(&secret));
    assert!(page.contains("first@customer.example") || page.contains("POST /scim/v2/Users"));
    // A second setup gets a name of its own.
    let again = session
        .post(&app, &client, "/portal/scim", &[("vendor", "okta")])
        .await;
    assert_eq!(again.status(), 200);
    assert!(
        dirsync::admin::list_directories(&app.store, &app.tenant)
            .await
            .unwrap()
            .iter()
            .any(|d| d.name == "Okta (SCIM) 2")
    );
}

#[tokio::test]
async fn the_pull_setup_tests_previews_maps_and_schedules_against_the_fake() {
    let app = spawn_app().await;
    let client = browser();
    let shared = Shared::new(Org::generate(12, 2, 7));
    let (_running, definition) = start_fake(Provider::Entra, shared);
    let settings = &definition["settings"];
    let field = |k: &str| settings[k].as_str().unwrap().to_owned();
    let session = redeem(
        &app,
        &client,
        &link(&app, &app.tenant, only(false, true)).await,
    )
    .await;

    let form = session.get(&app, &client, "/portal/pull/entra").await;
    assert_eq!(form.status(), 200);
    // A wrong secret is stored (it reads as a secret), and the test says
    // what Entra said.
    let (tenant_id, client_id, authority, graph) = (
        field("tenant_id"),
        field("client_id"),
        field("authority_base"),
        field("graph_base"),
    );
    let res = session
        .post(
            &app,
            &client,
            "/portal/pull/entra",
            &[
                ("tenant_id", tenant_id.as_str()),
                ("client_id", client_id.as_str()),
                ("authority_base", authority.as_str()),
                ("graph_base", graph.as_str()),
                ("secret", definition["secret"].as_str().unwrap()),
                ("department", ""),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let directory_id = location.rsplit('/').next().unwrap().to_owned();
    let page = session
        .get(&app, &client, &location)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Microsoft Entra ID"), "{page}");
    assert!(!page.contains(definition["secret"].as_str().unwrap()));

    let tested = session
        .post(&app, &client, &format!("{location}/test"), &[])
        .await;
    assert_eq!(tested.status(), 200);
    let tested = tested.text().await.unwrap();
    assert!(
        text_of(&tested, "test-ok")
            .unwrap()
            .starts_with("Connected"),
        "{tested}"
    );

    let before = dirsync::admin::users(&app.store, &app.tenant)
        .await
        .unwrap()
        .len();
    let previewed = session
        .post(&app, &client, &format!("{location}/preview"), &[])
        .await;
    assert_eq!(previewed.status(), 200);
    let previewed = previewed.text().await.unwrap();
    assert!(previewed.contains("id=\"preview-users\""), "{previewed}");
    assert!(previewed.matches("<tr>").count() > 2, "{previewed}");
    assert_eq!(
        dirsync::admin::users(&app.store, &app.tenant)
            .await
            .unwrap()
            .len(),
        before,
        "a preview writes nothing"
    );

    let bad = session
        .post(
            &app,
            &client,
            &format!("{location}/mapping"),
            &[("mapping", "[{\"source\": \"jobTitle\"}]")],
        )
        .await;
    assert_eq!(bad.status(), 400);
    assert!(text_of(&bad.text().await.unwrap(), "mapping-error").is_some());
    let rules = r#"[{"source": "jobTitle", "target": "custom.job"}]"#;
    let saved = session
        .post(
            &app,
            &client,
            &format!("{location}/mapping"),
            &[("mapping", rules)],
        )
        .await;
    assert_eq!(saved.status(), 200);
    let policy = dirsync::admin::policy(&app.store, &directory_id)
        .await
        .unwrap();
    assert_eq!(policy.attribute_mapping.len(), 1);

    let connection = dirsync::admin::connections::show(&app.store, &directory_id)
        .await
        .unwrap();
    assert_eq!(connection.schedule["enabled"], false);
    let scheduled = session
        .post(
            &app,
            &client,
            &format!("{location}/schedule"),
            &[("enabled", "on")],
        )
        .await;
    assert_eq!(scheduled.status(), 200);
    let connection = dirsync::admin::connections::show(&app.store, &directory_id)
        .await
        .unwrap();
    assert_eq!(connection.schedule["enabled"], true);
    assert!(connection.next_run_at.is_some());
}

#[tokio::test]
async fn a_failing_test_shows_the_providers_own_reason() {
    let app = spawn_app().await;
    let client = browser();
    let shared = Shared::new(Org::generate(3, 1, 1));
    let (_running, definition) = start_fake(Provider::Entra, shared);
    let settings = &definition["settings"];
    let field = |k: &str| settings[k].as_str().unwrap().to_owned();
    let session = redeem(
        &app,
        &client,
        &link(&app, &app.tenant, only(false, true)).await,
    )
    .await;
    let (tenant_id, client_id, authority, graph) = (
        field("tenant_id"),
        field("client_id"),
        field("authority_base"),
        field("graph_base"),
    );
    let res = session
        .post(
            &app,
            &client,
            "/portal/pull/entra",
            &[
                ("tenant_id", tenant_id.as_str()),
                ("client_id", client_id.as_str()),
                ("authority_base", authority.as_str()),
                ("graph_base", graph.as_str()),
                ("secret", "not-the-secret"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let tested = session
        .post(&app, &client, &format!("{location}/test"), &[])
        .await;
    assert_eq!(tested.status(), 400);
    let why = text_of(&tested.text().await.unwrap(), "test-error").unwrap();
    assert!(why.contains("AADSTS"), "Entra's own words: {why}");

    // A form missing what the provider needs comes back with the reason,
    // and without the secret.
    let res = session
        .post(
            &app,
            &client,
            "/portal/pull/okta",
            &[
                ("org_url", "not a url"),
                ("auth", "ssws"),
                ("secret", "s3cret-value"),
            ],
        )
        .await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(text_of(&html, "form-error").is_some(), "{html}");
    assert!(!html.contains("s3cret-value"));
}

#[tokio::test]
async fn an_operator_creates_a_link_on_the_tenant_page_and_sees_its_url_once() {
    let app = spawn_app().await;
    let client = browser();
    let password = Secret::new("correct horse battery".into());
    operators::create_operator(&app.store, "ops@example.com", &password)
        .await
        .unwrap();
    let opened = operators::sign_in(&app.store, "ops@example.com", &password)
        .await
        .unwrap();
    let cookie = format!("dirsync_admin={}", opened.cookie.expose());
    let tenant = app.store.tenant_by_name(&app.tenant).await.unwrap();
    let page = format!("/admin/tenants/{}", tenant.id);
    let res = post(
        &app,
        &client,
        &cookie,
        &format!("{page}/setup-links"),
        &[
            ("csrf", opened.session.csrf_token.as_str()),
            ("allow", "scim"),
            ("expires", "1d"),
        ],
    )
    .await;
    assert_eq!(res.status(), 201);
    let html = res.text().await.unwrap();
    let url = text_of(&html, "setup-link-url").expect("the URL, once");
    assert!(
        url.starts_with(&format!("{}/portal/setup/", app.origin)),
        "{url}"
    );
    let again = get(&app, &client, &cookie, &page)
        .await
        .text()
        .await
        .unwrap();
    assert!(!again.contains(&url));
    assert!(again.contains("ops@example.com"), "who made it");
    // Without the CSRF token: refused.
    let res = post(
        &app,
        &client,
        &cookie,
        &format!("{page}/setup-links"),
        &[("allow", "scim"), ("expires", "1d")],
    )
    .await;
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn the_readmes_setup_link_commands_run_as_written() {
    use crate::readme::{block, readme_secret};
    use dirsync::config::ApiSettings;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let secret = readme_secret(&readme);
    let app = spawn_app_with(ServerSettings {
        api: ApiSettings {
            jwt_secrets: vec![secret.clone()],
            ..ApiSettings::for_tests()
        },
        ..ServerSettings::for_tests()
    })
    .await;
    dirsync::admin::create_tenant(&app.store, "acme")
        .await
        .unwrap();
    let script = block(&readme, "<!-- setup-portal:")
        .replace("http://127.0.0.1:8080", &app.origin)
        .replace(
            "cargo run -q --",
            "\"$DIRSYNC_BIN\" --database-url \"$DIRSYNC_DB\"",
        );
    let db_url = app.db_url.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .env("DIRSYNC_BIN", env!("CARGO_BIN_EXE_dirsync"))
            .env("DIRSYNC_DB", &db_url)
            .env("DIRSYNC_API_JWT_SECRET", &secret)
            .env_remove("DIRSYNC_PUBLIC_URL")
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The API's link (its URL on this server), the list, then the CLI's
    // (on the default public URL) and its list.
    let created: Value = serde_json::Deserializer::from_str(&stdout)
        .into_iter()
        .next()
        .unwrap()
        .unwrap();
    assert!(
        created["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/portal/setup/", app.origin)),
        "{stdout}"
    );
    assert!(
        stdout.contains("http://127.0.0.1:8080/portal/setup/"),
        "{stdout}"
    );
    let links = setup::list(&app.store, "acme").await.unwrap();
    let by: Vec<&str> = links.iter().map(|l| l.created_by.as_str()).collect();
    assert_eq!(by, ["cli", "api"], "newest first");
    assert!(links.iter().all(|l| l.status == "unused"));
}
