//! Throttling and faults, the same way for every provider: a connector says
//! what an answer means (retry after the provider's own wait, back off, or
//! done) and `Pacing` waits and retries, boundedly. Graph sends `Retry-After`
//! (seconds, possibly decimal), Okta `X-Rate-Limit-Reset` (epoch seconds),
//! Google nothing (exponential backoff with jitter, as its limits page asks).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::PullError;

/// The most of one provider answer dirsync reads: a page of the largest
/// (Graph's 999 users with every property selected) is a few MiB; past
/// this the provider, or something posing as it, is not sending a page.
pub const MAX_ANSWER_BYTES: usize = 32 << 20;

/// A provider's answer, read whole (one page at most, `Pacing::max_answer`
/// bytes at most).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON (Null when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Graph's `Retry-After` in seconds (RFC 9110 §10.2.3 allows only an
    /// integer or a date; Graph's own samples show `2.128`).
    pub fn retry_after(&self) -> Option<Duration> {
        let raw = self.header("retry-after")?.trim();
        raw.parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
    }
}

/// What a connector makes of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Hand the answer back (success, or an error to report).
    No,
    /// The provider said how long to wait.
    After(Duration),
    /// Transient without a hint: exponential backoff with jitter.
    Backoff,
}

/// How waits happen: really, or (in tests) recorded without sleeping, so a
/// test asserts the provider's wait was honoured without spending it.
#[derive(Clone, Default)]
pub enum Sleeper {
    #[default]
    Real,
    Record(Arc<Mutex<Vec<Duration>>>),
}

/// Bounded retries: at most `attempts` sends of one request, waits between
/// them capped at `max_wait`.
#[derive(Clone)]
pub struct Pacing {
    pub attempts: u32,
    /// The first backoff step (then 2×, 4×, … plus up to `base` of jitter).
    pub base: Duration,
    pub max_wait: Duration,
    pub sleeper: Sleeper,
    /// The most bytes of one answer read; a longer one ends the request
    /// with `PullError::Provider`, not retried.
    pub max_answer: usize,
}

impl Default for Pacing {
    fn default() -> Pacing {
        Pacing {
            attempts: 6,
            base: Duration::from_secs(1),
            max_wait: Duration::from_secs(64),
            sleeper: Sleeper::Real,
            max_answer: MAX_ANSWER_BYTES,
        }
    }
}

impl std::fmt::Debug for Pacing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacing")
            .field("attempts", &self.attempts)
            .field("base", &self.base)
            .field("max_wait", &self.max_wait)
            .finish()
    }
}

impl Pacing {
    /// Waits are recorded in the returned list instead of slept.
    pub fn recording(attempts: u32) -> (Pacing, Arc<Mutex<Vec<Duration>>>) {
        let waits = Arc::new(Mutex::new(Vec::new()));
        (
            Pacing {
                attempts,
                sleeper: Sleeper::Record(waits.clone()),
                ..Pacing::default()
            },
            waits,
        )
    }

    /// The wait before retry number `retry` (0-based): `base · 2^retry` plus
    /// a random part of `base`, capped at `max_wait`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let step = self.base.saturating_mul(1u32 << retry.min(16));
        let jitter = self.base.mul_f64(rand::random::<f64>());
        step.saturating_add(jitter).min(self.max_wait)
    }

    pub async fn wait(&self, wait: Duration) {
        let wait = wait.min(self.max_wait);
        match &self.sleeper {
            Sleeper::Real => tokio::time::sleep(wait).await,
            Sleeper::Record(waits) => {
                if let Ok(mut w) = waits.lock() {
                    w.push(wait);
                }
            }
        }
    }

    /// Send the request `build` makes (anew for each attempt) until
    /// `classify` says `Retry::No` or the attempts run out; then the last
    /// answer is returned for the connector to read or report. Network
    /// failures back off like a 5xx and end as `PullError::Network`.
    pub async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
        classify: impl Fn(&Answer) -> Retry,
    ) -> Result<Answer, PullError> {
        let attempts = self.attempts.max(1);
        let mut retry = 0;
        loop {
            let last = retry + 1 >= attempts;
            match read(build(), self.max_answer).await {
                Ok(answer) => match classify(&answer) {
                    Retry::No => return Ok(answer),
                    _ if last => return Ok(answer),
                    Retry::After(wait) => self.wait(wait).await,
                    Retry::Backoff => self.wait(self.backoff(retry)).await,
                },
                Err(PullError::Network(_)) if !last => self.wait(self.backoff(retry)).await,
                Err(err) => return Err(err),
            }
            retry += 1;
        }
    }
}

/// One answer, read a chunk at a time so a body past `max` is refused
/// before it is held (whatever its `Content-Length` claims).
async fn read(request: reqwest::RequestBuilder, max: usize) -> Result<Answer, PullError> {
    let mut response = request.send().await.map_err(PullError::network)?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let too_large = || PullError::Provider {
        status,
        message: format!("its answer is longer than {max} bytes, the most dirsync reads"),
    };
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(PullError::network)? {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// 429 and 5xx are transient for every provider; everything else is final.
pub fn transient(answer: &Answer) -> bool {
    answer.status == 429 || (500..600).contains(&answer.status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A provider that answers every request with `body`, chunked (no
    /// length said) or with its `Content-Length`.
    fn provider(body: Vec<u8>, chunked: bool) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let _ = if chunked {
                    write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    )
                    .and_then(|()| {
                        for part in body.chunks(4096) {
                            write!(stream, "{:x}\r\n", part.len())?;
                            stream.write_all(part)?;
                            stream.write_all(b"\r\n")?;
                        }
                        stream.write_all(b"0\r\n\r\n")
                    })
                } else {
                    write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .and_then(|()| stream.write_all(&body))
                };
            }
        });
        url
    }

    #[tokio::test]
    async fn an_answer_longer_than_the_most_dirsync_reads_ends_the_request_unretried() {
        let (mut pacing, waits) = Pacing::recording(3);
        pacing.max_answer = 10_000;
        let client = reqwest::Client::new();
        for chunked in [true, false] {
            let at_cap = provider(vec![b'x'; 10_000], chunked);
            let answer = pacing
                .send(|| client.get(&at_cap), |_| Retry::No)
                .await
                .unwrap();
            assert_eq!(answer.body.len(), 10_000);
            let past = provider(vec![b'x'; 10_001], chunked);
            let err = pacing
                .send(|| client.get(&past), |_| Retry::No)
                .await
                .unwrap_err();
            assert!(
                matches!(&err, PullError::Provider { status: 200, message } if message.contains("10000 bytes")),
                "{err:?}"
            );
        }
        assert!(waits.lock().unwrap().is_empty(), "not retried");
    }

    #[test]
    fn backoff_doubles_from_the_base_and_stays_under_the_cap() {
        let pacing = Pacing {
            base: Duration::from_millis(100),
            max_wait: Duration::from_secs(1),
            ..Pacing::default()
        };
        for retry in 0..3 {
            let wait = pacing.backoff(retry);
            let floor = Duration::from_millis(100 << retry);
            assert!(
                wait >= floor && wait <= floor + Duration::from_millis(100),
                "{wait:?}"
            );
        }
        assert_eq!(pacing.backoff(10), Duration::from_secs(1));
    }

    #[test]
    fn retry_after_reads_integer_and_decimal_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "2.128".parse().unwrap());
        let answer = Answer {
            status: 429,
            headers,
            body: Vec::new(),
        };
        assert_eq!(answer.retry_after(), Some(Duration::from_millis(2128)));
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "10".parse().unwrap());
        let answer = Answer { headers, ..answer };
        assert_eq!(answer.retry_after(), Some(Duration::from_secs(10)));
    }
}
