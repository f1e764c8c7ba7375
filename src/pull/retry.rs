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

/// A provider's answer, read whole (one page at most).
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
}

impl Default for Pacing {
    fn default() -> Pacing {
        Pacing {
            attempts: 6,
            base: Duration::from_secs(1),
            max_wait: Duration::from_secs(64),
            sleeper: Sleeper::Real,
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
            match read(build()).await {
                Ok(answer) => match classify(&answer) {
                    Retry::No => return Ok(answer),
                    _ if last => return Ok(answer),
                    Retry::After(wait) => self.wait(wait).await,
                    Retry::Backoff => self.wait(self.backoff(retry)).await,
                },
                Err(err) if last => return Err(err),
                Err(_) => self.wait(self.backoff(retry)).await,
            }
            retry += 1;
        }
    }
}

async fn read(request: reqwest::RequestBuilder) -> Result<Answer, PullError> {
    let response = request.send().await.map_err(PullError::network)?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(PullError::network)?.to_vec();
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
