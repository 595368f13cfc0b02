//! Sets of ports per protocol, kept as sorted, disjoint, non-adjacent inclusive ranges, so that
//! unions, intersections and the rendered output are canonical (8080-8084 and 8085-8089 become
//! 8080-8089). Only TCP and UDP exist here; SCTP is deliberately not modelled (the platform
//! uses none, and the evaluator reports SCTP ports as notes instead of guessing).

use std::collections::BTreeMap;

use crate::layout::Protocol;

/// The lowest and highest port a policy can name (port 0 is not a port).
pub(crate) const MIN_PORT: u16 = 1;
pub(crate) const MAX_PORT: u16 = u16::MAX;

/// Ports per protocol; a protocol with no ranges is absent, so `==` is set equality.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PortSet {
    ranges: BTreeMap<Protocol, Vec<(u16, u16)>>,
}

impl PortSet {
    pub(crate) fn empty() -> PortSet {
        PortSet::default()
    }

    /// Every TCP and every UDP port: what an unisolated pod or an absent `ports` list allows.
    pub(crate) fn all() -> PortSet {
        let mut set = PortSet::whole(Protocol::Tcp);
        set.insert(Protocol::Udp, MIN_PORT, MAX_PORT);
        set
    }

    pub(crate) fn whole(protocol: Protocol) -> PortSet {
        PortSet::range(protocol, MIN_PORT, MAX_PORT)
    }

    pub(crate) fn range(protocol: Protocol, first: u16, last: u16) -> PortSet {
        let mut set = PortSet::empty();
        set.insert(protocol, first, last);
        set
    }

    pub(crate) fn insert(&mut self, protocol: Protocol, first: u16, last: u16) {
        debug_assert!(first <= last, "range {first}-{last} is reversed");
        let ranges = self.ranges.entry(protocol).or_default();
        ranges.push((first, last));
        normalize(ranges);
    }

    pub(crate) fn union_with(&mut self, other: &PortSet) {
        for (protocol, theirs) in &other.ranges {
            let ranges = self.ranges.entry(*protocol).or_default();
            ranges.extend_from_slice(theirs);
            normalize(ranges);
        }
    }

    pub(crate) fn intersection(&self, other: &PortSet) -> PortSet {
        let mut out = PortSet::empty();
        for (protocol, ours) in &self.ranges {
            let Some(theirs) = other.ranges.get(protocol) else { continue };
            let (mut i, mut j) = (0, 0);
            let mut both = Vec::new();
            while i < ours.len() && j < theirs.len() {
                let (a_first, a_last) = ours[i];
                let (b_first, b_last) = theirs[j];
                let first = a_first.max(b_first);
                let last = a_last.min(b_last);
                if first <= last {
                    both.push((first, last));
                }
                if a_last < b_last { i += 1 } else { j += 1 }
            }
            if !both.is_empty() {
                out.ranges.insert(*protocol, both);
            }
        }
        out
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, protocol: Protocol, port: u16) -> bool {
        self.ranges
            .get(&protocol)
            .is_some_and(|ranges| ranges.iter().any(|&(first, last)| first <= port && port <= last))
    }

    /// `(protocol, first, last)` in protocol order, then port order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Protocol, u16, u16)> + '_ {
        self.ranges
            .iter()
            .flat_map(|(protocol, ranges)| ranges.iter().map(move |&(first, last)| (*protocol, first, last)))
    }
}

/// Sorts and merges overlapping and adjacent ranges; drops the protocol's entry if empty.
fn normalize(ranges: &mut Vec<(u16, u16)>) {
    ranges.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
    for &(first, last) in ranges.iter() {
        match merged.last_mut() {
            // `u32` so that a range ending at 65535 cannot overflow.
            Some(prev) if u32::from(first) <= u32::from(prev.1) + 1 => prev.1 = prev.1.max(last),
            _ => merged.push((first, last)),
        }
    }
    *ranges = merged;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(ranges: &[(u16, u16)]) -> PortSet {
        let mut set = PortSet::empty();
        for &(a, b) in ranges {
            set.insert(Protocol::Tcp, a, b);
        }
        set
    }

    #[test]
    fn adjacent_and_overlapping_ranges_merge() {
        let set = tcp(&[(8085, 8089), (80, 80), (8080, 8084), (81, 90), (65535, 65535), (100, 65534)]);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![(Protocol::Tcp, 80, 90), (Protocol::Tcp, 100, 65535)]);
    }

    #[test]
    fn intersection_keeps_only_common_ports_per_protocol() {
        let a = tcp(&[(1, 9091), (9093, 65535)]);
        let mut b = tcp(&[(9090, 9095)]);
        b.insert(Protocol::Udp, 53, 53);
        let both = a.intersection(&b);
        assert_eq!(both.iter().collect::<Vec<_>>(), vec![(Protocol::Tcp, 9090, 9091), (Protocol::Tcp, 9093, 9095)]);
        assert!(!both.contains(Protocol::Tcp, 9092));
        assert!(!both.contains(Protocol::Udp, 53));
        assert!(tcp(&[(1, 10)]).intersection(&PortSet::whole(Protocol::Udp)).is_empty());
    }
}
