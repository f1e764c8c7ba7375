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

fn page_paths(app: &TestApp) -> Vec<String> {
    vec![
        "/admin".into(),
        format!("/admin/directories/{}", app.directory_id),
        "/admin/tenants/some-tenant".into(),
        "/admin/tenants/some-tenant/users".into(),
        "/admin/tenants/some-tenant/users/some-user".into(),
    ]
}

fn form_paths(app: &TestApp) -> Vec<String> {
    vec![
        "/admin/tenants".into(),
        "/admin/tenants/some-tenant/directories".into(),
        format!("/admin/directories/{}/tokens", app.directory_id),
        format!(
            "/admin/directories/{}/tokens/some-token/revoke",
            app.directory_id
        ),
        format!("/admin/directories/{}/policy", app.directory_id),
        "/admin/logout".into(),
    ]
}

#[tokio::test]
async fn a_page_without_a_session_sends_the_browser_to_sign_in() {
    let app = spawn_app().await;
    let client = browser();
    for path in page_paths(&app) {
        let res = client
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
}

#[tokio::test]
async fn a_form_posted_without_a_session_is_403() {
    let app = spawn_app().await;
    let client = browser();
    for path in form_paths(&app) {
        let res = client
            .post(format!("{}{path}", app.origin))
            .form(&[("csrf", "anything"), ("name", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{path}");
    }
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
#[case::missing(None)]
#[case::empty(Some(""))]
#[case::another_sessions(Some("dGhpcyBpcyBub3QgdGhlIHNlc3Npb24ncyB0b2tlbg"))]
#[tokio::test]
async fn a_form_without_its_sessions_csrf_token_is_403(#[case] csrf: Option<&str>) {
    let app = spawn_app().await;
    operator(&app).await;
    let client = browser();
    let session = sign_in(&app, &client).await;
    for path in form_paths(&app) {
        let mut form = vec![("name", "sneaky")];
        if let Some(c) = csrf {
            form.push(("csrf", c));
        }
        let res = session.post(&app, &client, &path, &form).await;
        assert_eq!(res.status(), 403, "{path}");
        assert!(
            res.text().await.unwrap().contains("security token"),
            "{path}"
        );
    }
    assert!(!admin_tenants(&app).await.contains(&"sneaky".to_owned()));
    // The session still works: the refusals changed nothing.
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
