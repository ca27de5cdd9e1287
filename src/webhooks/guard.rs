//! The SSRF guard of webhook targets (docs/WEBHOOKS.md): `https://` only unless plain HTTP is
//! allowed, and no address a server-side request should reach (loopback, private,
//! link-local, carrier-grade NAT, multicast, …) unless the operator's allow-list names it.
//! It is checked when an endpoint is saved and again at every delivery: reqwest resolves
//! names through [`GuardedResolver`], and address literals are checked before sending.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::Url;

/// What the operator allows beyond the default policy.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allow_http: bool,
    hosts: Vec<String>,
    nets: Vec<IpNet>,
}

impl Guard {
    /// The policy of `--webhook-allow-http` and `--webhook-allow-hosts` (host names,
    /// addresses or CIDR ranges); an entry that is none of those is an error naming it.
    pub fn new(allow_http: bool, allow: &[String]) -> anyhow::Result<Self> {
        let mut guard = Self {
            allow_http,
            ..Self::default()
        };
        for entry in allow.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<IpNet>() {
                guard.nets.push(net);
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                guard.nets.push(IpNet::from(ip));
            } else if entry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            {
                guard.hosts.push(entry.to_ascii_lowercase());
            } else {
                anyhow::bail!(
                    "--webhook-allow-hosts: {entry:?} is not a host name, address or CIDR range"
                );
            }
        }
        Ok(guard)
    }

    /// The URL if it may be a webhook target as written: absolute, `https` (or `http` when
    /// allowed), with a host that is not a refused address literal. The message names what
    /// is wrong.
    pub fn check_url(&self, raw: &str) -> Result<Url, String> {
        let url = Url::parse(raw.trim())
            .map_err(|e| format!("url must be an absolute http(s) URL ({e})"))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => {
                return Err(
                    "url must be https:// (plain http:// needs the server's --webhook-allow-http)"
                        .to_owned(),
                );
            }
            other => return Err(format!("url must be http(s), not {other}:")),
        }
        let Some(host) = url.host_str() else {
            return Err("url has no host".to_owned());
        };
        if let Some(ip) = literal(&url).filter(|&ip| !self.permits(host, ip)) {
            return Err(refused(host, ip));
        }
        Ok(url)
    }

    /// Whether a request to `host` may go to `ip`.
    pub fn permits(&self, host: &str, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.contains(&host) || self.nets.iter().any(|n| n.contains(&ip)) || !is_refused(ip)
    }

    /// The addresses of `host` a request may go to (resolved now); an error if there are none.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("{host} does not resolve: {e}"))?
            .collect();
        let allowed: Vec<SocketAddr> = found
            .iter()
            .copied()
            .filter(|a| self.permits(host, a.ip()))
            .collect();
        match (allowed.is_empty(), found.first()) {
            (false, _) => Ok(allowed),
            (true, Some(first)) => Err(refused(host, first.ip())),
            (true, None) => Err(format!("{host} does not resolve")),
        }
    }
}

/// The URL's host as an address, if it is one.
pub fn literal(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

fn refused(host: &str, ip: IpAddr) -> String {
    format!(
        "url's host {host} is {ip}, a loopback, private, link-local or otherwise internal \
         address; the server's --webhook-allow-hosts can allow it"
    )
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Addresses a server-side request must not reach by default.
fn is_refused(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(ip) => is_refused_v4(ip),
        IpAddr::V6(ip) => is_refused_v6(ip),
    }
}

fn is_refused_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0                              // "this network"
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT, 100.64/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking, 198.18/15
        || a >= 240 // reserved
}

fn is_refused_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        // 6to4 and NAT64 carry an IPv4 address: judge that one.
        || (first == 0x2002 && is_refused_v4(Ipv4Addr::from(
            ((u32::from(ip.segments()[1])) << 16) | u32::from(ip.segments()[2]),
        )))
        || (ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && is_refused_v4(Ipv4Addr::from(
            ((u32::from(ip.segments()[6])) << 16) | u32::from(ip.segments()[7]),
        )))
}

/// reqwest's resolver for webhook requests: the system's, keeping only addresses the guard
/// permits for that host (so a name that resolves to 127.0.0.1 is refused at connect time,
/// whatever it resolved to when the endpoint was saved).
pub struct GuardedResolver(pub Arc<Guard>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = Arc::clone(&self.0);
        Box::pin(async move {
            let addrs = guard.resolve(name.as_str(), 0).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_and_public_ones_allowed() {
        let guard = Guard::new(false, &[]).unwrap();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "2002:7f00:1::",
            "64:ff9b::a9fe:a9fe",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!guard.permits("example.com", ip), "{ip} should be refused");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "2002:5db8:d822::",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(guard.permits("example.com", ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn the_allow_list_takes_hosts_addresses_and_ranges() {
        let allow = ["127.0.0.1", "10.0.0.0/8", "hooks.internal"].map(String::from);
        let guard = Guard::new(false, &allow).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(guard.permits("x", ip("127.0.0.1")));
        assert!(!guard.permits("x", ip("127.0.0.2")));
        assert!(guard.permits("x", ip("10.9.8.7")));
        assert!(guard.permits("HOOKS.internal", ip("192.168.0.5")));
        assert!(!guard.permits("other.internal", ip("192.168.0.5")));
        assert!(Guard::new(false, &["not a host!".to_owned()]).is_err());
    }

    #[test]
    fn urls_must_be_absolute_https_with_an_allowed_literal() {
        let guard = Guard::new(false, &[]).unwrap();
        assert!(guard.check_url("https://example.com/hook").is_ok());
        assert!(guard.check_url("/hook").unwrap_err().contains("absolute"));
        assert!(
            guard
                .check_url("ftp://example.com")
                .unwrap_err()
                .contains("http(s)")
        );
        assert!(
            guard
                .check_url("http://example.com")
                .unwrap_err()
                .contains("--webhook-allow-http")
        );
        assert!(
            guard
                .check_url("https://127.0.0.1:8443/")
                .unwrap_err()
                .contains("127.0.0.1")
        );
        assert!(
            guard
                .check_url("https://[::ffff:a9fe:a9fe]/")
                .unwrap_err()
                .contains("--webhook-allow-hosts")
        );
        let open = Guard::new(true, &["127.0.0.1".to_owned()]).unwrap();
        assert!(open.check_url("http://127.0.0.1:9000/hook").is_ok());
    }
}
