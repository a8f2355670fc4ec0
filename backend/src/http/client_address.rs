//! The client's address, as rate limits and the sign-in log see it.
//!
//! Behind a reverse proxy every request comes from the proxy, so the proxy's
//! `X-Forwarded-For` names the client. That header is believed only when the connection
//! comes from an address listed in `trusted_proxies`, and then only its entries added by
//! trusted proxies: reading right to left, the first address that is not a trusted proxy
//! is the client (anything left of it was written by the client and proves nothing).

use super::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use ipnet::IpNet;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

/// The client address of a request (see the module notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    /// The address as rate limits count it (IPv6 by /64).
    pub fn group(&self) -> String {
        super::rate_limit::address_group(self.0)
    }
}

impl std::fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Parses `trusted_proxies` entries: an address (`10.0.0.1`) or a network (`10.0.0.0/8`).
pub fn parse_trusted(entries: &[String]) -> Result<Vec<IpNet>, String> {
    entries
        .iter()
        .map(|entry| {
            let entry = entry.trim();
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!(
                        "trusted_proxies: {entry:?} is neither an address nor a network like 10.0.0.0/8"
                    )
                })
        })
        .collect()
}

fn trusted(proxies: &[IpNet], ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    proxies.iter().any(|net| net.contains(&ip))
}

/// The client behind `peer`, given the `X-Forwarded-For` values of the request.
pub fn client_of(peer: IpAddr, forwarded_for: &[&str], proxies: &[IpNet]) -> IpAddr {
    if !trusted(proxies, peer) {
        return peer;
    }
    let hops = forwarded_for
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            // A garbled entry: whatever stands left of it cannot be trusted either.
            break;
        };
        client = ip;
        if !trusted(proxies, ip) {
            break;
        }
    }
    client
}

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Ok(ClientAddress(client_of(
            peer,
            &forwarded,
            &state.trusted_proxies,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies = parse_trusted(&["10.0.0.0/8".into(), "192.0.2.7".into()]).unwrap();
        // Not from a proxy: the header is the client's own word and ignored.
        assert_eq!(
            client_of(ip("203.0.113.5"), &["1.1.1.1"], &proxies),
            ip("203.0.113.5")
        );
        // From a proxy: the rightmost untrusted hop is the client, not what it claimed.
        assert_eq!(
            client_of(
                ip("10.1.1.1"),
                &["6.6.6.6, 198.51.100.9, 192.0.2.7"],
                &proxies
            ),
            ip("198.51.100.9")
        );
        assert_eq!(
            client_of(ip("10.1.1.1"), &["6.6.6.6", "198.51.100.9"], &proxies),
            ip("198.51.100.9")
        );
        // From a proxy with no header: the proxy itself.
        assert_eq!(client_of(ip("10.1.1.1"), &[], &proxies), ip("10.1.1.1"));
        // A garbled hop stops the walk at the last good one.
        assert_eq!(
            client_of(ip("10.1.1.1"), &["6.6.6.6, junk, 10.2.2.2"], &proxies),
            ip("10.2.2.2")
        );
        // IPv4-mapped peers match IPv4 networks.
        assert_eq!(
            client_of(ip("::ffff:10.1.1.1"), &["198.51.100.9"], &proxies),
            ip("198.51.100.9")
        );
        assert!(parse_trusted(&["not-an-address".into()]).is_err());
    }
}
