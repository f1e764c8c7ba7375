//! The operator dashboard (/admin): who may see and do what. Every page
//! needs an operator's session (a read without one goes to the sign-in
//! form, a form post is 403), every form its session's CSRF token, failed
//! sign-ins are throttled, every response carries the security headers,
//! and a directory's values are escaped.

use reqwest::redirect::Policy;
use reqwest::{Method, Response};
use rstest::rstest;

use crate::helpers::{TestApp, spawn_app};
use crate::pull::{Provider, pulled};
use dirsync::admin::operators;
use dirsync::crypto::Secret;
use dirsync::pull::fake::Org;

const EMAIL: &str = "ops@example.com";
const PASSWORD: &str = "correct horse battery";

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// `name=value` of a `Set-Cookie` named `name`, and the whole header.
fn set_cookie(res: &Response, name: &str) -> Option<(String, String)> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            let pair = v.split(';').next().unwrap().to_owned();
            (pair, v.to_owned())
        })
}

/// The value of the first hidden `csrf` input of a page.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

struct Session {
    cookie: String,
    csrf: String,
}

async fn operator(app: &TestApp) {
    operators::create_operator(&app.store, EMAIL, &Secret::new(PASSWORD.into()))
        .await
        .unwrap();
}

/// The sign-in form's cookie and token.
async fn login_form(app: &TestApp, client: &reqwest::Client) -> (String, String) {
    let res = client
        .get(format!("{}/admin/login", app.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (cookie, _) = set_cookie(&res, "dirsync_login").expect("the form's cookie");
    (cookie, csrf_of(&res.text().await.unwrap()))
}

async fn try_sign_in(app: &TestApp, client: &reqwest::Client, password: &str) -> Response {
    let (cookie, csrf) = login_form(app, client).await;
    client
        .post(format!("{}/admin/login", app.origin))
        .header("cookie", cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", EMAIL),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

async fn sign_in(app: &TestApp, client: &reqwest::Client) -> Session {
    let res = try_sign_in(app, client, PASSWORD).await;
    assert_eq!(res.status(), 303);
    let (cookie, header) = set_cookie(&res, "dirsync_admin").expect("a session cookie");
    assert!(header.contains("HttpOnly"), "{header}");
    assert!(header.contains("SameSite=Strict"), "{header}");
    assert!(header.contains("Path=/admin"), "{header}");
    assert!(!header.contains("Secure"), "plain http: {header}");
    let page = client
        .get(format!("{}/admin", app.origin))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csrf = csrf_of(&page.text().await.unwrap());
    Session { cookie, csrf }
}

impl Session {
    async fn get(&self, app: &TestApp, client: &reqwest::Client, path: &str) -> Response {
        client
            .get(format!("{}{path}", app.origin))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
    }

    async fn post(
        &self,
        app: &TestApp,
        client: &reqwest::Client,
        path: &str,
        form: &[(&str, &str)],
    ) -> Response {
        client
            .post(format!("{}{path}", app.origin))
            .header("cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

/// A page's or a form's address with this app's directory in it (the
/// other ids need name nothing real: the session is checked first).
fn at(app: &TestApp, path: &str) -> String {
    path.replace("{directory}", &app.directory_id)
}

#[rstest]
#[case::home("/admin")]
#[case::directory("/admin/directories/{directory}")]
#[case::tenant("/admin/tenants/some-tenant")]
#[case::users("/admin/tenants/some-tenant/users")]
#[case::user("/admin/tenants/some-tenant/users/some-user")]
#[case::run("/admin/runs/some-run")]
#[case::run_progress("/admin/runs/some-run/progress")]
#[case::import("/admin/tenants/some-tenant/import")]
#[case::groups("/admin/tenants/some-tenant/groups")]
#[case::events("/admin/tenants/some-tenant/events")]
#[case::webhooks("/admin/tenants/some-tenant/webhooks")]
#[case::webhook("/admin/tenants/some-tenant/webhooks/some-webhook")]
#[tokio::test]
async fn a_page_without_a_session_sends_the_browser_to_sign_in(#[case] path: &str) {
    let app = spawn_app().await;
    let path = at(&app, path);
    let res = browser()
        .get(format!("{}{path}?q=a", app.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{path}");
    let location = res.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("/admin/login?next="),
        "{path}: {location}"
    );
    assert!(
        location.contains("%3Fq%3Da"),
        "the page's query comes back: {location}"
    );
}

/// Every form the dashboard posts.
const FORMS: [&str; 10] = [
    "/admin/tenants",
    "/admin/tenants/some-tenant/directories",
    "/admin/directories/{directory}/tokens",
    "/admin/directories/{directory}/tokens/some-token/revoke",
    "/admin/directories/{directory}/policy",
    "/admin/directories/{directory}/sync",
    "/admin/runs/some-run/approve",
    "/admin/tenants/some-tenant/import",
    "/admin/tenants/some-tenant/webhooks/some-webhook/replay",
    "/admin/logout",
];

#[rstest]
#[case::create_tenant(FORMS[0])]
#[case::create_directory(FORMS[1])]
#[case::create_token(FORMS[2])]
#[case::revoke_token(FORMS[3])]
#[case::policy(FORMS[4])]
#[case::sync_now(FORMS[5])]
#[case::approve(FORMS[6])]
#[case::import(FORMS[7])]
#[case::replay(FORMS[8])]
#[case::logout(FORMS[9])]
#[tokio::test]
async fn a_form_posted_without_a_session_is_403(#[case] path: &str) {
    let app = spawn_app().await;
    let path = at(&app, path);
    let res = browser()
        .post(format!("{}{path}", app.origin))
        .form(&[("csrf", "anything"), ("name", "x"), ("from_seq", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "{path}");
    assert!(admin_tenants(&app).await.iter().all(|t| t != "x"));
}

async fn admin_tenants(app: &TestApp) -> Vec<String> {
    dirsync::admin::list_tenants(&app.store)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect()
}

#[rstest]
#[tokio::test]
async fn a_form_without_its_sessions_csrf_token_is_403(
    #[values(None, Some(""), Some("dGhpcyBpcyBub3QgdGhlIHNlc3Npb24ncyB0b2tlbg"))] csrf: Option<
        &str,
    >,
    #[values(
        FORMS[0], FORMS[1], FORMS[2], FORMS[3], FORMS[4], FORMS[5], FORMS[6], FORMS[7], FORMS[8],
        FORMS[9]
    )]
    path: &str,
) {
    let app = spawn_app().await;
    operator(&app).await;
    let client = browser();
    let session = sign_in(&app, &client).await;
    let path = at(&app, path);
    let mut form = vec![("name", "sneaky"), ("from_seq", "1")];
    if let Some(c) = csrf {
        form.push(("csrf", c));
    }
    let res = session.post(&app, &client, &path, &form).await;
    assert_eq!(res.status(), 403, "{path}");
    assert!(
        res.text().await.unwrap().contains("security token"),
        "{path}"
    );
    assert!(!admin_tenants(&app).await.contains(&"sneaky".to_owned()));
    // The session still works: the refusal changed nothing.
    assert_eq!(session.get(&app, &client, "/admin").await.status(), 200);
}

#[tokio::test]
async fn the_sign_in_form_refuses_a_post_without_its_token() {
    let app = spawn_app().await;
    operator(&app).await;
    let client = browser();
    let res = client
        .post(format!("{}/admin/login", app.origin))
        .form(&[("email", EMAIL), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(set_cookie(&res, "dirsync_admin").is_none());
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    operator(&app).await;
    let client = browser();
    let wrong = try_sign_in(&app, &client, "not the password").await;
    assert_eq!(wrong.status(), 401);
    let wrong = wrong.text().await.unwrap();
    let (cookie, csrf) = login_form(&app, &client).await;
    let unknown = client
        .post(format!("{}/admin/login", app.origin))
        .header("cookie", cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "nobody@example.com"),
            ("password", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    assert!(wrong.contains("Wrong email or password."));
    assert!(
        unknown
            .text()
            .await
            .unwrap()
            .contains("Wrong email or password.")
    );
}

#[tokio::test]
async fn the_sixth_failed_sign_in_is_429_even_with_the_right_password() {
    let app = spawn_app().await;
    operator(&app).await;
    let client = browser();
    for _ in 0..5 {
        assert_eq!(try_sign_in(&app, &client, "guess").await.status(), 401);
    }
    let res = try_sign_in(&app, &client, PASSWORD).await;
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    assert!(set_cookie(&res, "dirsync_admin").is_none());
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("too many failed sign-ins")
    );
}

#[tokio::test]
async fn every_admin_response_carries_the_security_headers() {
    let app = spawn_app().await;
    operator(&app).await;
    let client = browser();
    let session = sign_in(&app, &client).await;
    let paths = [
        "/admin",
        "/admin/login",
        "/admin/nowhere",
        "/admin/assets/admin.css",
        "/admin/assets/htmx.min.js",
    ];
    for path in paths {
        let res = session.get(&app, &client, path).await;
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        for part in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        let cache = h["cache-control"].to_str().unwrap();
        if path.starts_with("/admin/assets/") {
            assert_eq!(res.status(), 200, "{path}");
            assert!(cache.contains("max-age"), "{path}: {cache}");
            assert!(h.contains_key("etag"), "{path}");
        } else {
            assert_eq!(cache, "no-store", "{path}");
        }
    }
    let css = session.get(&app, &client, "/admin/assets/admin.css").await;
    let etag = css.headers()["etag"].clone();
    let again = client
        .get(format!("{}/admin/assets/admin.css", app.origin))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn an_operator_creates_a_tenant_a_directory_and_a_token_shown_once() {
    let app = spawn_app().await;
    operator(&app).await;
    let client = browser();
    let s = sign_in(&app, &client).await;
    let res = s
        .post(
            &app,
            &client,
            "/admin/tenants",
            &[("csrf", &s.csrf), ("name", "acme")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let tenant_page = res.headers()["location"].to_str().unwrap().to_owned();
    let tenant_id = tenant_page.rsplit('/').next().unwrap().to_owned();
    // The same name again: the form says why, as the CLI would.
    let res = s
        .post(
            &app,
            &client,
            "/admin/tenants",
            &[("csrf", &s.csrf), ("name", "acme")],
        )
        .await;
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("already exists"));
    let res = s
        .post(
            &app,
            &client,
            &format!("{tenant_page}/directories"),
            &[
                ("csrf", &s.csrf),
                ("name", "okta"),
                ("kind", "scim"),
                ("vendor", "okta"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let directory_page = res.headers()["location"].to_str().unwrap().to_owned();
    let page = s
        .get(&app, &client, &directory_page)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("{}/scim/v2", app.origin)),
        "the SCIM base URL"
    );
    let res = s
        .post(
            &app,
            &client,
            &format!("{directory_page}/tokens"),
            &[("csrf", &s.csrf), ("label", "okta prod")],
        )
        .await;
    assert_eq!(res.status(), 201);
    let page = res.text().await.unwrap();
    let at = page.find("dsync_").expect("the secret, once");
    let secret: String = page[at..].chars().take_while(|c| *c != '<').collect();
    // The token works for SCIM, and is never on the page again.
    let scim = app
        .client
        .get(format!("{}/Users", app.base))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(scim.status(), 200);
    let again = s
        .get(&app, &client, &directory_page)
        .await
        .text()
        .await
        .unwrap();
    assert!(!again.contains(&secret));
    assert!(again.contains("okta prod"));
    let home = s.get(&app, &client, "/admin").await.text().await.unwrap();
    assert!(home.contains("acme") && home.contains(&tenant_id));
}

#[tokio::test]
async fn a_policy_edit_is_checked_as_the_cli_checks_it() {
    let app = spawn_app().await;
    operator(&app).await;
    let client = browser();
    let s = sign_in(&app, &client).await;
    let path = format!("/admin/directories/{}/policy", app.directory_id);
    let base = [
        ("csrf", s.csrf.as_str()),
        ("default_role", "member"),
        ("new_user_status", "active"),
        ("on_delete", "delete"),
        ("on_missing", "ignore"),
        ("max_deactivations", "10"),
        ("allowed_domains", "example.com"),
    ];
    let mut bad = base.to_vec();
    bad.push(("max_deactivation_percent", "150"));
    let res = s.post(&app, &client, &path, &bad).await;
    assert_eq!(res.status(), 400);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("between 0 and 100"),
        "the admin function's words"
    );
    assert!(
        page.contains("value=\"150\""),
        "what was sent is shown again"
    );
    let mut bad = base.to_vec();
    bad.push(("require_group_membership", "on"));
    let res = s.post(&app, &client, &path, &bad).await;
    assert_eq!(res.status(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("needs at least one mapped group")
    );
    let res = s.post(&app, &client, &path, &base).await;
    assert_eq!(res.status(), 200);
    let policy = dirsync::admin::policy(&app.store, &app.directory_id)
        .await
        .unwrap();
    assert_eq!(policy.default_role, "member");
    assert_eq!(policy.deactivation_threshold.max_count, Some(10));
    assert_eq!(policy.allowed_domains, vec!["example.com".to_owned()]);
    assert_eq!(
        serde_json::to_value(policy.on_delete).unwrap(),
        serde_json::json!("delete")
    );
}

#[tokio::test]
async fn a_directorys_values_are_escaped_on_the_users_pages() {
    let app = spawn_app().await;
    operator(&app).await;
    let res = app
        .post(
            "/Users",
            &serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "mallory@example.com",
                "displayName": "<script>alert(1)</script>",
                "title": "\"><img src=x onerror=alert(2)>",
                "emails": [{"value": "mallory@example.com", "primary": true}],
                "active": true
            }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let tenant = app.store.tenant_by_name(&app.tenant).await.unwrap();
    let client = browser();
    let s = sign_in(&app, &client).await;
    let list = s
        .get(
            &app,
            &client,
            &format!("/admin/tenants/{}/users?q=mall", tenant.id),
        )
        .await;
    assert_eq!(list.status(), 200);
    let list = list.text().await.unwrap();
    assert!(
        list.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{list}"
    );
    assert!(!list.contains("<script>alert"));
    assert!(!list.contains("<img src=x"));
    let users = dirsync::admin::users(&app.store, &app.tenant)
        .await
        .unwrap();
    let id = users[0]["id"].as_str().unwrap();
    let page = s
        .get(
            &app,
            &client,
            &format!("/admin/tenants/{}/users/{id}", tenant.id),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
    assert!(!page.contains("<script>alert"));
    assert!(page.contains("user.created"), "the timeline");
}

#[tokio::test]
async fn signing_out_or_deleting_the_operator_ends_the_session() {
    let app = spawn_app().await;
    operator(&app).await;
    let client = browser();
    let s = sign_in(&app, &client).await;
    let res = s
        .post(&app, &client, "/admin/logout", &[("csrf", &s.csrf)])
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(s.get(&app, &client, "/admin").await.status(), 303);
    let s = sign_in(&app, &client).await;
    operators::delete_operator(&app.store, EMAIL).await.unwrap();
    assert_eq!(s.get(&app, &client, "/admin").await.status(), 303);
    let res = client
        .request(Method::POST, format!("{}/admin/tenants", app.origin))
        .header("cookie", &s.cookie)
        .form(&[("csrf", s.csrf.as_str()), ("name", "late")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn a_pull_directorys_page_shows_its_connection_and_last_runs() {
    let p = pulled(
        Provider::Entra,
        Org::generate(5, 1, 41),
        serde_json::json!({}),
    )
    .await;
    p.sync().await;
    operator(&p.app).await;
    let client = browser();
    let s = sign_in(&p.app, &client).await;
    let path = format!("/admin/directories/{}", p.directory_id);
    let res = s.get(&p.app, &client, &path).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("id=\"connection\""));
    assert!(
        page.contains("sealed with key"),
        "the credentials, never their value"
    );
    assert!(page.contains("succeeded"), "the last run");
    assert!(page.contains("users created 5"), "its counts");
    assert!(
        !page.contains("create-token"),
        "no tokens for a pull directory"
    );
    // Tokens are for SCIM directories: the admin function says so.
    let res = s
        .post(
            &p.app,
            &client,
            &format!("{path}/tokens"),
            &[("csrf", &s.csrf)],
        )
        .await;
    assert_eq!(res.status(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("SCIM tokens are for SCIM directories")
    );
}

/// `dirsync operator …` with the password on standard input.
fn operator_cli(db_url: &str, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .arg("--database-url")
        .arg(db_url)
        .arg("operator")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn the_cli_creates_lists_and_deletes_operators_who_then_sign_in() {
    let app = spawn_app().await;
    let db = app.db_url.clone();
    let short = operator_cli(&db, &["create", EMAIL, "--password-stdin"], "short\n");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("12 to 1024 characters"));
    let created = operator_cli(
        &db,
        &["create", EMAIL, "--password-stdin", "--json"],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let again = operator_cli(
        &db,
        &["create", "OPS@example.com", "--password-stdin"],
        "another long password\n",
    );
    assert!(
        !again.status.success(),
        "emails are unique whatever their case"
    );
    let listed = operator_cli(&db, &["list", "--json"], "");
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["email"], EMAIL);
    assert!(listed[0].get("password_hash").is_none());
    let client = browser();
    let s = sign_in(&app, &client).await;
    assert!(operator_cli(&db, &["delete", EMAIL], "").status.success());
    assert_eq!(s.get(&app, &client, "/admin").await.status(), 303);
    let listed = operator_cli(&db, &["list", "--json"], "");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&listed.stdout).unwrap(),
        serde_json::json!([])
    );
}

async fn tenant_id(app: &TestApp) -> String {
    app.store.tenant_by_name(&app.tenant).await.unwrap().id
}

/// The text between `id="ID">` and the next `<`.
fn field(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("{id} in {html}"))
        + marker.len();
    html[at..].split('<').next().unwrap().trim().to_owned()
}

/// A run's progress fragment until the run ends (it runs on a task of its
/// own): its last answer, and whether a fragment ever asked to be polled.
async fn follow(app: &TestApp, client: &reqwest::Client, s: &Session, run: &str) -> String {
    for _ in 0..400 {
        let res = s
            .get(app, client, &format!("/admin/runs/{run}/progress"))
            .await;
        assert_eq!(res.status(), 200);
        let fragment = res.text().await.unwrap();
        if !fragment.contains(">running<") {
            assert!(!fragment.contains("hx-get"), "an ended run is not polled");
            return fragment;
        }
        assert!(
            fragment.contains(&format!("hx-get=\"/admin/runs/{run}/progress\"")),
            "a running run polls itself: {fragment}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("run {run} did not end");
}

/// The run a form's answer sends the browser to.
fn run_of(res: &Response) -> String {
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap();
    location
        .strip_prefix("/admin/runs/")
        .unwrap_or_else(|| panic!("a run's page: {location}"))
        .to_owned()
}

#[tokio::test]
async fn a_scim_directorys_page_shows_its_request_log_with_the_last_errors() {
    let app = crate::helpers::spawn_app_with(dirsync::config::ServerSettings {
        scim_log: dirsync::config::ScimLogArgs::defaults(),
        ..dirsync::config::ServerSettings::for_tests()
    })
    .await;
    operator(&app).await;
    let created = app
        .post(
            "/Users",
            &serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "ada@example.com",
                "emails": [{"value": "ada@example.com", "primary": true}],
                "active": true
            }),
        )
        .await;
    assert_eq!(created.status(), 201);
    let refused = app
        .post(
            "/Users",
            &serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}),
        )
        .await;
    assert_eq!(refused.status(), 400);
    let refused: serde_json::Value = refused.json().await.unwrap();
    app.scim_log.flush().await;
    let client = browser();
    let s = sign_in(&app, &client).await;
    let path = format!("/admin/directories/{}", app.directory_id);
    let page = s.get(&app, &client, &path).await.text().await.unwrap();
    let log = &page[page.find("id=\"request-log\"").expect("the log")..];
    assert!(log.contains("POST"), "{log}");
    assert!(log.contains(">201<") && log.contains(">400<"), "{log}");
    assert!(log.contains("created "), "the user's outcome: {log}");
    let summary = &page[page.find("id=\"requests-summary\"").unwrap()..];
    let errors = field(summary, "last-errors");
    let last_errors = &summary[summary.find("id=\"last-errors\"").unwrap()..];
    assert!(
        errors.is_empty() && last_errors.contains(">400<"),
        "{summary}"
    );
    if let Some(t) = refused["scimType"].as_str() {
        assert!(last_errors.contains(t), "the scimType: {last_errors}");
    }
    // Only the errors: the created user's request is not on the page.
    let only = s
        .get(&app, &client, &format!("{path}?status=4xx"))
        .await
        .text()
        .await
        .unwrap();
    let only = &only[only.find("id=\"request-log\"").unwrap()..];
    assert!(only.contains(">400<") && !only.contains(">201<"), "{only}");
    let bad = s
        .get(&app, &client, &format!("{path}?method=BREW"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        bad.contains("id=\"requests-error\""),
        "the admin function's words"
    );
}

#[tokio::test]
async fn sync_now_starts_a_run_whose_page_follows_it_until_it_ends() {
    let p = pulled(
        Provider::Entra,
        Org::generate(5, 1, 43),
        serde_json::json!({}),
    )
    .await;
    operator(&p.app).await;
    let client = browser();
    let s = sign_in(&p.app, &client).await;
    let directory = format!("/admin/directories/{}", p.directory_id);
    let page = s
        .get(&p.app, &client, &directory)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"sync-now\""));
    let res = s
        .post(
            &p.app,
            &client,
            &format!("{directory}/sync"),
            &[("csrf", &s.csrf)],
        )
        .await;
    let run = run_of(&res);
    let fragment = follow(&p.app, &client, &s, &run).await;
    assert_eq!(field(&fragment, "run-status"), "succeeded", "{fragment}");
    assert!(field(&fragment, "run-counts").contains("users created 5"));
    // htmx, polling a run that has just ended, reloads the whole page.
    let res = client
        .get(format!("{}/admin/runs/{run}/progress", p.app.origin))
        .header("cookie", &s.cookie)
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["hx-refresh"], "true");
    let page = s
        .get(&p.app, &client, &format!("/admin/runs/{run}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("succeeded") && !page.contains("id=\"approve\""));
    // The run history links to it.
    let page = s
        .get(&p.app, &client, &directory)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("/admin/runs/{run}")));
    assert_eq!(p.app.app_users().await.len(), 5);
}

#[tokio::test]
async fn a_guarded_runs_page_lists_whom_it_holds_back_and_approving_releases_them() {
    let mut org = Org::generate(20, 1, 47);
    for u in &mut org.users {
        u.active = true;
    }
    let p = pulled(Provider::Entra, org, serde_json::json!({})).await;
    p.policy(dirsync::admin::PolicyChange {
        on_missing: Some(dirsync::reconcile::policy::OnMissing::Deactivate),
        max_deactivations: Some(Some(2)),
        ..Default::default()
    })
    .await;
    p.sync().await;
    let gone: Vec<_> = (0..3).map(|n| p.user(n)).collect();
    for u in &gone {
        p.shared.directory_mut().delete_user(&u.id);
    }
    let stopped = p.sync().await;
    assert_eq!(stopped.status, "needs_approval");
    operator(&p.app).await;
    let client = browser();
    let s = sign_in(&p.app, &client).await;
    let path = format!("/admin/runs/{}", stopped.id);
    let page = s.get(&p.app, &client, &path).await.text().await.unwrap();
    let held = &page[page
        .find("id=\"held-back-users\"")
        .expect("the held-back users")..];
    for u in &gone {
        assert!(held.contains(&u.email), "{} in {held}", u.email);
    }
    assert!(
        !held.contains(&p.user(3).email),
        "only whom it would deactivate"
    );
    assert!(page.contains("id=\"approve\""));
    let res = s
        .post(
            &p.app,
            &client,
            &format!("{path}/approve"),
            &[("csrf", &s.csrf)],
        )
        .await;
    let approval = run_of(&res);
    let fragment = follow(&p.app, &client, &s, &approval).await;
    assert_eq!(field(&fragment, "run-status"), "succeeded", "{fragment}");
    for n in 0..3 {
        assert_eq!(p.app_user(n).await["status"], "DEACTIVATED", "user {n}");
    }
    assert_eq!(p.app_user(3).await["status"], "PENDING");
    // The stopped run now names its approval and offers no second one.
    let page = s.get(&p.app, &client, &path).await.text().await.unwrap();
    assert!(page.contains(&format!("/admin/runs/{approval}")));
    assert!(!page.contains("id=\"approve\""));
    let again = s
        .post(
            &p.app,
            &client,
            &format!("{path}/approve"),
            &[("csrf", &s.csrf)],
        )
        .await;
    assert_eq!(again.status(), 400);
    assert!(again.text().await.unwrap().contains("already approved"));
}

#[tokio::test]
async fn the_import_wizard_previews_and_imports_only_the_ticked_users() {
    let p = pulled(
        Provider::Entra,
        Org::generate(8, 1, 53),
        serde_json::json!({}),
    )
    .await;
    operator(&p.app).await;
    let client = browser();
    let s = sign_in(&p.app, &client).await;
    let wizard = format!("/admin/tenants/{}/import", tenant_id(&p.app).await);
    let page = s.get(&p.app, &client, &wizard).await.text().await.unwrap();
    assert!(
        page.contains(&p.directory_id),
        "the pull directory to choose"
    );
    let page = s
        .get(
            &p.app,
            &client,
            &format!("{wizard}?directory={}", p.directory_id),
        )
        .await
        .text()
        .await
        .unwrap();
    for n in 0..8 {
        assert!(page.contains(&p.user(n).email), "user {n}");
    }
    let one = p.user(4);
    let searched = s
        .get(
            &p.app,
            &client,
            &format!("{wizard}?directory={}&search={}", p.directory_id, one.email),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(searched.contains(&one.email) && !searched.contains(&p.user(5).email));
    let department = s
        .get(
            &p.app,
            &client,
            &format!(
                "{wizard}?directory={}&department={}",
                p.directory_id, one.department
            ),
        )
        .await
        .text()
        .await
        .unwrap();
    for n in 0..8 {
        let u = p.user(n);
        assert_eq!(
            department.contains(&u.email),
            u.department.eq_ignore_ascii_case(&one.department),
            "user {n}"
        );
    }
    assert!(
        p.app.app_users().await.is_empty(),
        "a preview writes nothing"
    );
    let (a, b) = (p.user(0), p.user(1));
    let res = s
        .post(
            &p.app,
            &client,
            &wizard,
            &[
                ("csrf", s.csrf.as_str()),
                ("directory", p.directory_id.as_str()),
                ("user", a.id.as_str()),
                ("user", b.id.as_str()),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let summary = res.text().await.unwrap();
    assert_eq!(field(&summary, "imported"), "2", "{summary}");
    assert_eq!(field(&summary, "errors"), "0");
    let users = p.app.app_users().await;
    assert_eq!(users.len(), 2);
    assert!(p.app_user(0).await.is_object() && p.app_user(1).await.is_object());
    // Nothing ticked: the admin function's words.
    let none = s
        .post(
            &p.app,
            &client,
            &wizard,
            &[
                ("csrf", s.csrf.as_str()),
                ("directory", p.directory_id.as_str()),
            ],
        )
        .await;
    assert_eq!(none.status(), 400);
    assert!(
        none.text()
            .await
            .unwrap()
            .contains("name the users to import")
    );
}

#[tokio::test]
async fn the_groups_and_events_pages_show_the_tenants_groups_and_feed_newest_first() {
    let app = spawn_app().await;
    operator(&app).await;
    let user = app
        .post(
            "/Users",
            &serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "grace@example.com",
                "emails": [{"value": "grace@example.com", "primary": true}],
                "active": true
            }),
        )
        .await;
    assert_eq!(user.status(), 201);
    let user: serde_json::Value = user.json().await.unwrap();
    let group = app
        .post(
            "/Groups",
            &serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Compilers",
                "members": [{"value": user["id"]}]
            }),
        )
        .await;
    assert_eq!(group.status(), 201);
    let tenant = tenant_id(&app).await;
    let client = browser();
    let s = sign_in(&app, &client).await;
    let page = s
        .get(&app, &client, &format!("/admin/tenants/{tenant}/groups"))
        .await
        .text()
        .await
        .unwrap();
    let groups = &page[page.find("id=\"groups\"").expect("the groups")..];
    assert!(groups.contains("Compilers") && groups.contains("grace@example.com"));
    let feed = format!("/admin/tenants/{tenant}/events");
    let page = s.get(&app, &client, &feed).await.text().await.unwrap();
    let page = &page[page.find("id=\"events\"").expect("the feed")..];
    let (created, group_created) = (
        page.find(">user.created<").expect("user.created"),
        page.find(">group.created<").expect("group.created"),
    );
    assert!(group_created < created, "newest first");
    let only = s
        .get(&app, &client, &format!("{feed}?type=user.created"))
        .await
        .text()
        .await
        .unwrap();
    let only = &only[only.find("id=\"events\"").unwrap()..];
    assert!(only.contains(">user.created<") && !only.contains(">group.created<"));
    // Paged by cursor: before the user's event there is nothing.
    let seq: i64 = {
        let events = dirsync::admin::events(&app.store, &app.tenant, 0, 100)
            .await
            .unwrap();
        events
            .iter()
            .find(|e| e.r#type == "user.created")
            .unwrap()
            .seq
    };
    let older = s
        .get(&app, &client, &format!("{feed}?before={seq}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(older.contains("id=\"no-events\""), "{older}");
    let tail = s
        .get(&app, &client, &format!("{feed}?before={}", seq + 1))
        .await
        .text()
        .await
        .unwrap();
    let tail = &tail[tail.find("id=\"events\"").unwrap()..];
    assert!(tail.contains(">user.created<") && !tail.contains(">group.created<"));
}

#[tokio::test]
async fn the_webhooks_pages_show_the_delivery_log_and_a_replay_queues_a_delivery() {
    use dirsync::admin::webhooks;
    let app = spawn_app().await;
    operator(&app).await;
    let tenant = tenant_id(&app).await;
    let receiver = crate::webhooks::Receiver::start().await;
    let settings = dirsync::config::WebhookArgs::for_tests().settings();
    // An event from before the endpoint: it starts after it.
    let user = app
        .post(
            "/Users",
            &serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "linus@example.com",
                "emails": [{"value": "linus@example.com", "primary": true}],
                "active": true
            }),
        )
        .await;
    assert_eq!(user.status(), 201);
    let endpoint = webhooks::create(
        &app.store,
        app.key.as_ref(),
        &settings,
        &tenant,
        webhooks::NewWebhook {
            url: receiver.url.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .webhook;
    assert!(endpoint.delivered_seq >= 1);
    let test = webhooks::send_test(
        &app.store,
        app.key.as_ref(),
        &settings,
        Some(&tenant),
        &endpoint.id,
    )
    .await
    .unwrap();
    assert!(test.delivered);
    let client = browser();
    let s = sign_in(&app, &client).await;
    let list = s
        .get(&app, &client, &format!("/admin/tenants/{tenant}/webhooks"))
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains(&receiver.url));
    let page_path = format!("/admin/tenants/{tenant}/webhooks/{}", endpoint.id);
    let page = s.get(&app, &client, &page_path).await.text().await.unwrap();
    let log = &page[page.find("id=\"attempt-log\"").expect("the delivery log")..];
    assert!(log.contains(">test<") && log.contains(">200<"), "{log}");
    // Replay the whole feed: the endpoint goes back to its start, due now.
    let res = s
        .post(
            &app,
            &client,
            &format!("{page_path}/replay"),
            &[("csrf", s.csrf.as_str()), ("from_seq", "1")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let back = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.ends_with("?replayed=1"), "{back}");
    let after = webhooks::endpoint(&app.store, Some(&tenant), &endpoint.id)
        .await
        .unwrap();
    assert_eq!(after.delivered_seq, 0);
    assert_eq!(after.failures, 0);
    let page = s.get(&app, &client, &back).await.text().await.unwrap();
    assert!(page.contains("id=\"replayed\""));
    // The worker delivers what the replay queued.
    let worker = dirsync::webhooks::deliver::Worker::new(
        app.store.clone(),
        app.key.clone(),
        settings,
        format!("serve:{}", uuid::Uuid::now_v7()),
    )
    .unwrap();
    tokio::spawn(worker.run_forever());
    let taken = receiver.wait_for(2).await;
    assert!(
        taken.iter().any(|m| m["type"] == "user.created"),
        "{taken:?}"
    );
    let bad = s
        .post(
            &app,
            &client,
            &format!("{page_path}/replay"),
            &[("csrf", s.csrf.as_str()), ("from_seq", "zero")],
        )
        .await;
    assert_eq!(bad.status(), 400);
}
