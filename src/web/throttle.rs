//! Failed sign-ins, counted per email and per client address: the sixth
//! failure within 15 minutes of the first of five is refused before the
//! password is checked (429, `Retry-After`). Counted in this process (a
//! replica behind a load balancer counts its own); at most `MAX_KEYS` keys
//! are held, the stalest dropped first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Failures a key may have in a window.
pub const LIMIT: usize = 5;
/// The window, in milliseconds.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl Throttle {
    /// Seconds until every key may try again, or None if all may now.
    pub fn wait(&self, keys: &[String], now: i64) -> Option<u64> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = None;
        for key in keys {
            if let Some(times) = failures.get_mut(key) {
                while times.front().is_some_and(|t| *t <= now - WINDOW_MS) {
                    times.pop_front();
                }
                if times.len() >= LIMIT {
                    let oldest = times.front().copied().unwrap_or(now);
                    let secs = ((oldest + WINDOW_MS - now).max(1000) / 1000) as u64;
                    wait = Some(wait.map_or(secs, |w: u64| w.max(secs)));
                }
            }
        }
        wait
    }

    /// A failed sign-in for each key.
    pub fn failed(&self, keys: &[String], now: i64) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_KEYS {
            failures.retain(|_, times| times.back().is_some_and(|t| *t > now - WINDOW_MS));
            if failures.len() >= MAX_KEYS {
                failures.clear();
            }
        }
        for key in keys {
            let times = failures.entry(key.clone()).or_default();
            times.push_back(now);
            while times.len() > LIMIT {
                times.pop_front();
            }
        }
    }

    /// A sign-in went through: the email's failures are forgotten (the
    /// address's stand).
    pub fn succeeded(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_attempt_within_the_window_waits_for_the_first_to_age_out() {
        let t = Throttle::default();
        let keys = vec!["email:a@b.c".to_owned(), "addr:127.0.0.1".to_owned()];
        for i in 0..LIMIT as i64 {
            assert_eq!(t.wait(&keys, i * 1000), None);
            t.failed(&keys, i * 1000);
        }
        assert_eq!(t.wait(&keys, 5_000), Some(895));
        assert_eq!(t.wait(&["email:other@b.c".to_owned()], 5_000), None);
        assert_eq!(t.wait(&keys, WINDOW_MS + 1), None);
    }

    #[test]
    fn a_success_forgets_the_email_but_not_the_address() {
        let t = Throttle::default();
        let (email, addr) = ("email:a@b.c".to_owned(), "addr:10.0.0.1".to_owned());
        for _ in 0..LIMIT {
            t.failed(&[email.clone(), addr.clone()], 0);
        }
        t.succeeded(&email);
        assert_eq!(t.wait(std::slice::from_ref(&email), 1), None);
        assert!(t.wait(std::slice::from_ref(&addr), 1).is_some());
    }
}
