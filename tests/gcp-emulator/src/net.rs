//! IPv4 prefixes (parsing with the "host bits must be zero" rule, containment, overlap, the n-th
//! address of a prefix) and the pool external addresses come from.
//!
//! IPv6 is not handled: a prefix that is not IPv4 is refused as malformed.

use std::net::Ipv4Addr;

/// An IPv4 prefix with its host bits zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cidr {
    base: u32,
    len: u8,
}

/// Why a prefix was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CidrError {
    /// Not `a.b.c.d/n` with n ≤ 32.
    Malformed,
    /// Host bits set; carries the prefix it should have been.
    HostBits(String),
}

fn mask(len: u8) -> u32 {
    if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) }
}

impl Cidr {
    pub(crate) fn parse(s: &str) -> Result<Cidr, CidrError> {
        let (ip, len) = s.split_once('/').ok_or(CidrError::Malformed)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| CidrError::Malformed)?;
        let len: u8 = len.parse().map_err(|_| CidrError::Malformed)?;
        if len > 32 {
            return Err(CidrError::Malformed);
        }
        let raw = u32::from(ip);
        let base = raw & mask(len);
        if base != raw {
            return Err(CidrError::HostBits(format!("{}/{len}", Ipv4Addr::from(base))));
        }
        Ok(Cidr { base, len })
    }

    /// A prefix or a bare address (a /32), host bits allowed (firewall source ranges).
    pub(crate) fn parse_loose(s: &str) -> Option<Cidr> {
        let (ip, len) = s.split_once('/').unwrap_or((s, "32"));
        let ip: Ipv4Addr = ip.parse().ok()?;
        let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
        Some(Cidr { base: u32::from(ip) & mask(len), len })
    }

    pub(crate) fn len(&self) -> u8 {
        self.len
    }

    pub(crate) fn contains_ip(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.len) == self.base
    }

    /// Whether `other` lies wholly inside this prefix.
    pub(crate) fn contains(&self, other: &Cidr) -> bool {
        other.len >= self.len && other.base & mask(self.len) == self.base
    }

    pub(crate) fn overlaps(&self, other: &Cidr) -> bool {
        self.contains(other) || other.contains(self)
    }

    /// The `n`th address of the prefix (0 is the network address), if it has that many.
    pub(crate) fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        let size = if self.len == 0 { u32::MAX } else { (1u32 << (32 - u32::from(self.len))) - 1 };
        (n <= size).then(|| Ipv4Addr::from(self.base + n))
    }

    /// How many addresses it has.
    pub(crate) fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.len))
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.len)
    }
}

/// The `n`th external address handed out: 34.0.0.1, 34.0.0.2, ... skipping .0 and .255 so every
/// address looks like a usable host address. Never the same address twice.
pub(crate) fn external_ip(n: u32) -> Ipv4Addr {
    let host = n % 254 + 1;
    let net = n / 254;
    Ipv4Addr::new(34, (net >> 8) as u8, net as u8, host as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_contain_and_overlap() {
        let net = Cidr::parse("10.0.0.0/16").unwrap();
        let a = Cidr::parse("10.0.1.0/24").unwrap();
        let b = Cidr::parse("10.0.0.0/22").unwrap();
        assert!(net.contains(&a) && !a.contains(&net));
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&Cidr::parse("10.0.4.0/24").unwrap()));
        assert_eq!(Cidr::parse("10.0.0.1/24"), Err(CidrError::HostBits("10.0.0.0/24".into())));
        assert_eq!(Cidr::parse("10.0.0.0/33"), Err(CidrError::Malformed));
        assert_eq!(Cidr::parse("fd00::/8"), Err(CidrError::Malformed));
        assert_eq!(a.nth(2), Some(Ipv4Addr::new(10, 0, 1, 2)));
        assert_eq!(a.nth(256), None);
        assert_eq!(a.size(), 256);
        assert_eq!(Cidr::parse_loose("1.2.3.4").unwrap().to_string(), "1.2.3.4/32");
        assert!(net.contains_ip("10.0.255.10".parse().unwrap()));
    }

    #[test]
    fn external_ips_are_distinct_host_addresses() {
        let ips: std::collections::HashSet<_> = (0..2000).map(external_ip).collect();
        assert_eq!(ips.len(), 2000);
        assert!(ips.iter().all(|ip| ip.octets()[3] != 0 && ip.octets()[3] != 255 && ip.octets()[0] == 34));
    }
}
