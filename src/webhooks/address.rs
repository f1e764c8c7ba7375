//! Where a webhook may be sent: https, or http to loopback when the server
//! allows it (development, tests); never to a private, link-local, loopback
//! or cloud-metadata address unless the server allows it, checked on the
//! URL as given and again on every address its host resolves to at send
//! time (so a name that later points inside the network is refused too).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// What the server allows beyond public https.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// `http://` to a loopback address (and loopback addresses at all).
    pub allow_http_loopback: bool,
    /// Private, link-local, unique-local and metadata addresses.
    pub allow_private: bool,
}

/// Longest URL an endpoint may have.
pub const MAX_URL: usize = 2048;

/// Check a URL an operator gives; the reason when it is refused.
pub fn check_url(url: &str, policy: UrlPolicy) -> Result<reqwest::Url, String> {
    if url.len() > MAX_URL {
        return Err(format!("at most {MAX_URL} characters"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("credentials in the URL are refused: the signature authenticates".into());
    }
    if parsed.fragment().is_some() {
        return Err("a URL with a #fragment is refused".into());
    }
    let literal = literal_ip(&parsed);
    match parsed.scheme() {
        "https" => {}
        "http" if policy.allow_http_loopback && is_loopback_host(&parsed) => {}
        "http" => {
            return Err(if policy.allow_http_loopback {
                "http is allowed to loopback only; use https".into()
            } else {
                "use https (plain http is allowed to loopback only, and only when the \
                 server allows it: --webhook-allow-http-loopback)"
                    .into()
            });
        }
        other => return Err(format!("scheme {other:?} is refused; use https")),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the URL names no host".into());
    }
    if let Some(ip) = literal {
        allowed(ip, policy)?;
    }
    Ok(parsed)
}

fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

fn is_loopback_host(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(v4)) => v4.is_loopback(),
        Some(url::Host::Ipv6(v6)) => v6.is_loopback(),
        None => false,
    }
}

/// Whether a webhook may reach `ip`; the reason when it may not.
pub fn allowed(ip: IpAddr, policy: UrlPolicy) -> Result<(), String> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if ip.is_loopback() {
        return if policy.allow_http_loopback || policy.allow_private {
            Ok(())
        } else {
            Err(format!("{ip} is a loopback address"))
        };
    }
    match kind(ip) {
        None => Ok(()),
        Some(_) if policy.allow_private => Ok(()),
        Some(what) => Err(format!(
            "{ip} is {what} (allowed only with --webhook-allow-private-addresses)"
        )),
    }
}

/// What kind of non-public address `ip` is, if it is one.
fn kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => kind_v4(v4),
        IpAddr::V6(v6) => kind_v6(v6),
    }
}

fn kind_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        // 169.254.169.254 answers for the cloud's metadata.
        Some("a link-local (metadata) address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (carrier-grade NAT) address")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("a multicast or reserved address")
    } else {
        None
    }
}

fn kind_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        Some("an unspecified address")
    } else if first & 0xfe00 == 0xfc00 {
        // fd00:ec2::254 answers for EC2's metadata.
        Some("a unique-local (private) address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else {
        None
    }
}

/// A resolver for the delivery client that drops every address the policy
/// refuses; a host left with none fails to connect, naming why.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub policy: UrlPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match allowed(a.ip(), policy) {
                    Ok(()) => true,
                    Err(why) => {
                        refused = Some(why);
                        false
                    }
                })
                .collect();
            if kept.is_empty() {
                let why = refused.unwrap_or_else(|| "no address".into());
                return Err(format!("{host} resolves to a refused address: {why}").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// The delivery client: the guarded resolver, no redirects (a redirect
/// could lead anywhere), a timeout per attempt.
pub fn client(policy: UrlPolicy, timeout: std::time::Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(std::time::Duration::from_secs(10)))
        .user_agent(concat!("dirsync-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("the webhook HTTP client: {e}"))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    const STRICT: UrlPolicy = UrlPolicy {
        allow_http_loopback: false,
        allow_private: false,
    };
    const DEV: UrlPolicy = UrlPolicy {
        allow_http_loopback: true,
        allow_private: false,
    };

    #[rstest]
    #[case("https://hooks.example.com/dirsync", STRICT)]
    #[case("https://93.184.216.34/in", STRICT)]
    #[case("http://127.0.0.1:9000/hook", DEV)]
    #[case("http://localhost:9000/hook", DEV)]
    #[case("http://[::1]:9000/hook", DEV)]
    fn these_urls_are_taken(#[case] url: &str, #[case] policy: UrlPolicy) {
        assert!(check_url(url, policy).is_ok(), "{url}");
    }

    #[rstest]
    #[case("http://hooks.example.com/x", STRICT, "use https")]
    #[case("http://hooks.example.com/x", DEV, "loopback only")]
    #[case("http://127.0.0.1:9000/", STRICT, "use https")]
    #[case("https://127.0.0.1/", STRICT, "loopback")]
    #[case("https://10.1.2.3/", DEV, "private")]
    #[case("https://192.168.0.10/", STRICT, "private")]
    #[case("https://169.254.169.254/latest/meta-data", DEV, "metadata")]
    #[case("https://[fd00:ec2::254]/", DEV, "unique-local")]
    #[case("https://[::ffff:10.0.0.1]/", DEV, "private")]
    #[case("https://100.64.0.1/", STRICT, "carrier-grade")]
    #[case("https://0.0.0.0/", STRICT, "unspecified")]
    #[case("ftp://hooks.example.com/", STRICT, "scheme")]
    #[case("https://user:pw@hooks.example.com/", STRICT, "credentials")]
    #[case("not a url", STRICT, "not a URL")]
    fn these_urls_are_refused_with_a_reason(
        #[case] url: &str,
        #[case] policy: UrlPolicy,
        #[case] reason: &str,
    ) {
        let why = check_url(url, policy).unwrap_err();
        assert!(why.contains(reason), "{url}: {why}");
    }

    #[test]
    fn private_addresses_pass_when_the_server_allows_them() {
        let open = UrlPolicy {
            allow_http_loopback: false,
            allow_private: true,
        };
        assert!(check_url("https://10.1.2.3/hook", open).is_ok());
        assert!(check_url("https://169.254.169.254/", open).is_ok());
    }
}
