//! Clients that send their body slowly: `--body-timeout` bounds how long a
//! request's body may take, on SCIM and the host API alike.

use std::time::{Duration, Instant};

use dirsync::config::ServerSettings;
use rstest::rstest;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, spawn_app_with};
use crate::host_api::token;

const DEADLINE: Duration = Duration::from_secs(2);

async fn app() -> TestApp {
    spawn_app_with(ServerSettings {
        body_timeout: DEADLINE,
        ..ServerSettings::for_tests()
    })
    .await
}

/// A POST's head, with a valid token, declaring `length` bytes of body.
fn head(app: &TestApp, surface: &str, length: usize) -> (String, String) {
    match surface {
        "scim" => (
            format!(
                "POST /scim/v2/Users HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/scim+json\r\nContent-Length: {length}\r\n\r\n",
                app.token
            ),
            "application/scim+json".to_owned(),
        ),
        _ => (
            format!(
                "POST /api/v1/tenants HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n",
                token("*", "read write admin")
            ),
            "application/problem+json".to_owned(),
        ),
    }
}

/// Everything the server sends until it closes the connection (or `limit`
/// passes), and when it closed.
async fn read_to_close(reader: &mut tokio::net::tcp::OwnedReadHalf, limit: Duration) -> String {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(limit, reader.read_to_end(&mut got)).await;
    String::from_utf8_lossy(&got).into_owned()
}

/// 500 connections trickling a declared 1 MB body stayed open for good
/// (issue 13): each is now answered 408, with the surface's error body,
/// and closed, within the deadline.
#[rstest]
#[case::scim("scim")]
#[case::host_api("api")]
#[tokio::test]
async fn a_body_trickled_past_the_deadline_is_408_and_the_connection_closed(#[case] surface: &str) {
    let app = app().await;
    let (head, media) = head(&app, surface, 1_000_000);
    let stream = TcpStream::connect(app.origin.trim_start_matches("http://"))
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    writer.write_all(head.as_bytes()).await.unwrap();
    // Ten bytes a second, for as long as the server listens.
    let trickle = tokio::spawn(async move {
        loop {
            if writer.write_all(b"{\"userName").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let answer = read_to_close(&mut reader, DEADLINE * 5).await;
    let closed_after = started.elapsed();
    trickle.abort();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        closed_after >= DEADLINE && closed_after < DEADLINE * 3,
        "answered and closed after {closed_after:?}: {answer}"
    );
    let (headers, body) = answer.split_once("\r\n\r\n").unwrap();
    let headers = headers.to_ascii_lowercase();
    assert!(
        headers.contains(&format!("content-type: {media}")),
        "{headers}"
    );
    assert!(headers.contains("connection: close"), "{headers}");
    let body: Value = serde_json::from_str(body).unwrap();
    if surface == "scim" {
        assert_eq!(
            body["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
        );
        assert_eq!(body["status"], "408");
    } else {
        assert_eq!(body["status"], 408);
    }
}

/// The limit itself: a body that arrives in pieces, slowly but within the
/// deadline, is read and answered as any other.
#[rstest]
#[case::scim("scim", 201)]
#[case::host_api("api", 201)]
#[tokio::test]
async fn a_body_that_arrives_slowly_within_the_deadline_is_served(
    #[case] surface: &str,
    #[case] status: u16,
) {
    let app = app().await;
    let body = match surface {
        "scim" => json!({"userName": "slow@example.com"}),
        _ => json!({"name": "slow-tenant"}),
    }
    .to_string();
    let (head, _) = head(&app, surface, body.len());
    let mut stream = TcpStream::connect(app.origin.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    for piece in [first, rest] {
        tokio::time::sleep(DEADLINE / 3).await;
        stream.write_all(piece.as_bytes()).await.unwrap();
    }
    let mut answer = vec![0; 4096];
    let n = tokio::time::timeout(DEADLINE * 5, stream.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(
        answer.starts_with(&format!("HTTP/1.1 {status}")),
        "{answer}"
    );
}
