//! OpenSSH's host and address patterns (`match.c`, `addrmatch.c`): `*` and `?` wildcards,
//! comma-separated lists with `!` negation, and CIDR networks. Used by `from=` in
//! `authorized_keys`, host names in `known_hosts`, `source-address` in certificates, and `Match` blocks and user patterns in
//! configurations (`config::pattern`).

use std::net::IpAddr;

/// The result of matching a name against a pattern list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListMatch {
    /// No pattern matched.
    NoMatch,
    /// A positive pattern matched and no negated one did.
    Match,
    /// A negated (`!`) pattern matched: this overrides any positive match.
    Negated,
}

impl ListMatch {
    /// Whether the list accepted the name.
    pub fn is_match(self) -> bool {
        self == Self::Match
    }
}

/// Whether `text` matches the glob `pattern` (`*` any run, `?` any one byte), whole. Bytes,
/// as OpenSSH compares them.
pub fn match_pattern(text: &str, pattern: &str) -> bool {
    let text = text.as_bytes();
    let pattern = pattern.as_bytes();
    // Iterative glob with one backtrack point: linear in practice, never recursive.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || Some(&c) == text.get(t) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern.get(p..).is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

/// Splits a list entry into its negation and its pattern.
fn entry(entry: &str) -> (bool, &str) {
    match entry.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, entry),
    }
}

/// Matches `text` against a comma-separated list of globs, each optionally negated with `!`
/// (OpenSSH's `match_pattern_list`). With `lowercase`, the patterns are lower-cased before
/// they are compared (the caller lower-cases `text`, as [`match_hostname`] does).
pub fn match_pattern_list(text: &str, list: &str, lowercase: bool) -> ListMatch {
    let mut result = ListMatch::NoMatch;
    for item in list.split(',') {
        let (negated, pattern) = entry(item);
        let matched = if lowercase {
            match_pattern(text, &pattern.to_ascii_lowercase())
        } else {
            match_pattern(text, pattern)
        };
        if !matched {
            continue;
        }
        if negated {
            return ListMatch::Negated;
        }
        result = ListMatch::Match;
    }
    result
}

/// Matches a host name against a pattern list, case-insensitively (`match_hostname`).
pub fn match_hostname(host: &str, list: &str) -> ListMatch {
    match_pattern_list(&host.to_ascii_lowercase(), list, true)
}

/// A pattern list that could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError(pub String);

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PatternError {}

/// Matches an address against a list of addresses, CIDR networks and globs, each optionally
/// negated (`addr_match_list`). An address that does not parse matches nothing; `None` only
/// checks the list. An empty entry, or a network with host bits set or a mask too long for
/// its family, is an error.
pub fn match_address_list(addr: Option<&str>, list: &str) -> Result<ListMatch, PatternError> {
    let parsed = match addr {
        Some(a) => match a.parse::<IpAddr>() {
            Ok(ip) => Some((a, ip)),
            Err(_) => return Ok(ListMatch::NoMatch),
        },
        None => None,
    };
    let mut result = ListMatch::NoMatch;
    for item in list.split(',') {
        let (negated, pattern) = entry(item);
        if pattern.is_empty() {
            return Err(PatternError("empty entry in address list".into()));
        }
        let matched = match parse_cidr(pattern)? {
            Some((network, bits)) => parsed.is_some_and(|(_, ip)| in_network(ip, network, bits)),
            None => parsed.is_some_and(|(text, _)| match_pattern(text, pattern)),
        };
        if !matched {
            continue;
        }
        if negated {
            return Ok(ListMatch::Negated);
        }
        result = ListMatch::Match;
    }
    Ok(result)
}

/// Whether `addr` lies in one of a comma-separated list of addresses and CIDR networks, with
/// no globs and no negation (`addr_match_cidr_list`, as certificates' `source-address` uses
/// it). Any entry that is not an address or network makes the whole list an error.
pub fn match_cidr_list(addr: &str, list: &str) -> Result<bool, PatternError> {
    let ip = addr.parse::<IpAddr>().ok();
    let mut found = false;
    for item in list.split(',') {
        let network = parse_cidr(item)?
            .ok_or_else(|| PatternError(format!("invalid network {item:?} in list")))?;
        found |= ip.is_some_and(|ip| in_network(ip, network.0, network.1));
    }
    Ok(found)
}

/// OpenSSH's `match_host_and_ip`, as `from=` and `user@host` patterns use it: the list is
/// matched against both the client's host name and its address. A negated match of either, or
/// an error in the list, refuses ([`ListMatch::Negated`]); otherwise a match of either accepts.
pub fn match_host_and_ip(host: &str, ip: &str, list: &str) -> ListMatch {
    let by_ip = match match_address_list(Some(ip), list) {
        Ok(m) => m,
        Err(_) => return ListMatch::Negated,
    };
    if by_ip == ListMatch::Negated {
        return ListMatch::Negated;
    }
    let by_host = match_hostname(host, list);
    if by_host == ListMatch::Negated {
        return ListMatch::Negated;
    }
    if by_host == ListMatch::Match || by_ip == ListMatch::Match {
        ListMatch::Match
    } else {
        ListMatch::NoMatch
    }
}

/// Parses `address` or `address/bits` (`addr_pton_cidr`). `Ok(None)` if it is not an address
/// at all (so it is matched as a glob); an error for a mask too long for the family or host
/// bits set beyond the mask.
fn parse_cidr(text: &str) -> Result<Option<(IpAddr, u8)>, PatternError> {
    let (addr, bits) = match text.split_once('/') {
        Some((addr, bits)) => {
            if !bits.starts_with(|c: char| c.is_ascii_digit()) {
                return Ok(None);
            }
            match bits.parse::<u8>() {
                Ok(b) if b <= 128 => (addr, Some(b)),
                _ => return Ok(None),
            }
        }
        None => (text, None),
    };
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return Ok(None);
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    if bits > max || mask_host_bits(addr, bits) {
        return Err(PatternError(format!("inconsistent mask length for network {text:?}")));
    }
    Ok(Some((addr, bits)))
}

fn to_u128(addr: IpAddr) -> (u128, u32) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

fn mask(bits: u8, width: u32) -> u128 {
    let bits = u32::from(bits).min(width);
    if bits == 0 {
        return 0;
    }
    (u128::MAX << (128 - bits)) >> (128 - width)
}

/// Whether `addr` has bits set beyond the mask.
fn mask_host_bits(addr: IpAddr, bits: u8) -> bool {
    let (value, width) = to_u128(addr);
    value & !mask(bits, width) != 0
}

/// Whether `addr` lies in `network/bits` (families must agree).
fn in_network(addr: IpAddr, network: IpAddr, bits: u8) -> bool {
    if addr.is_ipv4() != network.is_ipv4() {
        return false;
    }
    let (a, width) = to_u128(addr);
    let (n, _) = to_u128(network);
    let m = mask(bits, width);
    a & m == n & m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Globs match whole strings, with `*` and `?`, including empty runs and backtracking.
    #[test]
    fn globs_match_like_openssh() {
        assert!(match_pattern("host-e.somedomain", "host-e*"));
        assert!(match_pattern("abc", "a?c"));
        assert!(match_pattern("", "*"));
        assert!(match_pattern("aXbXc", "*b*c"));
        assert!(!match_pattern("abc", "ab"));
        assert!(!match_pattern("ab", "a?c"));
        assert!(match_pattern("mississippi", "*sip*"));
    }

    /// A negated pattern overrides a positive one wherever it stands in the list, and host
    /// names compare case-insensitively.
    #[test]
    fn negation_overrides_and_hosts_ignore_case() {
        assert_eq!(match_hostname("Foo.Example.com", "*.example.com"), ListMatch::Match);
        assert_eq!(match_hostname("bad.example.com", "*.example.com,!bad.*"), ListMatch::Negated);
        assert_eq!(match_hostname("bad.example.com", "!bad.*,*.example.com"), ListMatch::Negated);
        assert_eq!(match_hostname("other.org", "*.example.com"), ListMatch::NoMatch);
    }

    /// Addresses match CIDR networks of both families, plain addresses and globs; a network
    /// with host bits set is an error; a negated network refuses.
    #[test]
    fn addresses_match_cidr_and_globs() {
        assert_eq!(match_address_list(Some("192.168.1.7"), "192.168.0.0/16"), Ok(ListMatch::Match));
        assert_eq!(match_address_list(Some("10.0.0.1"), "192.168.0.0/16"), Ok(ListMatch::NoMatch));
        assert_eq!(match_address_list(Some("10.0.0.1"), "10.0.0.*"), Ok(ListMatch::Match));
        assert_eq!(
            match_address_list(Some("10.0.0.1"), "0.0.0.0/0,!10.0.0.0/8"),
            Ok(ListMatch::Negated)
        );
        assert_eq!(match_address_list(Some("2001:db8::1"), "2001:db8::/32"), Ok(ListMatch::Match));
        assert_eq!(match_address_list(Some("2001:db8::1"), "10.0.0.0/8"), Ok(ListMatch::NoMatch));
        assert!(match_address_list(Some("10.0.0.1"), "10.0.0.1/8").is_err());
        assert!(match_address_list(Some("10.0.0.1"), "10.0.0.0/8,").is_err());
        assert_eq!(match_address_list(Some("10.0.0.1"), "10.0.0.1"), Ok(ListMatch::Match));
    }

    /// `from=` accepts on a host or address match and refuses on any negation or list error.
    #[test]
    fn host_and_ip_combine_like_from_option() {
        assert_eq!(
            match_host_and_ip("a.example.com", "10.1.2.3", "*.example.com"),
            ListMatch::Match
        );
        assert_eq!(match_host_and_ip("x.org", "10.1.2.3", "10.0.0.0/8"), ListMatch::Match);
        assert_eq!(
            match_host_and_ip("x.org", "10.1.2.3", "*.org,!10.1.0.0/16"),
            ListMatch::Negated
        );
        assert_eq!(match_host_and_ip("x.org", "10.1.2.3", "*.com"), ListMatch::NoMatch);
        assert_eq!(match_host_and_ip("x.org", "10.1.2.3", "10.1.2.3/8"), ListMatch::Negated);
    }
    /// Globs match whole strings with `*` and `?`, without pathological backtracking.
    #[test]
    fn matches_globs_whole() {
        assert!(match_pattern("foo.example.com", "*.example.com"));
        assert!(match_pattern("a", "?"));
        assert!(match_pattern("", "*"));
        assert!(!match_pattern("ab", "?"));
        assert!(!match_pattern("foo", "f"));
        assert!(match_pattern("abcabc", "*abc"));
        assert!(!match_pattern(&"a".repeat(200), &"*a".repeat(100).replace("*a*a", "*a*b")));
    }

    /// A negated entry wins over any positive one, in any order.
    #[test]
    fn negation_overrides_positive_matches() {
        assert_eq!(match_pattern_list("web1", "web*,!web1", false), ListMatch::Negated);
        assert_eq!(match_pattern_list("web2", "web*,!web1", false), ListMatch::Match);
        assert_eq!(match_pattern_list("db", "web*", false), ListMatch::NoMatch);
        assert_eq!(match_hostname("WEB.Example.COM", "*.EXAMPLE.com"), ListMatch::Match);
        assert_eq!(match_pattern_list("Alice", "alice", false), ListMatch::NoMatch);
    }

    /// Address lists take CIDR, plain addresses and globs, and reject inconsistent masks.
    #[test]
    fn matches_addresses_with_cidr_and_globs() {
        let m = |a: &str, l: &str| match_address_list(Some(a), l);
        assert_eq!(m("192.168.1.7", "192.168.0.0/16"), Ok(ListMatch::Match));
        assert_eq!(m("192.168.1.7", "10.0.0.0/8"), Ok(ListMatch::NoMatch));
        assert_eq!(m("192.168.1.7", "192.168.1.*"), Ok(ListMatch::Match));
        assert_eq!(m("192.168.1.7", "*,!192.168.1.0/24"), Ok(ListMatch::Negated));
        assert_eq!(m("::1", "::1"), Ok(ListMatch::Match));
        assert_eq!(m("2001:db8::5", "2001:db8::/32"), Ok(ListMatch::Match));
        assert_eq!(m("127.0.0.1", "::/0"), Ok(ListMatch::NoMatch));
        assert_eq!(m("127.0.0.1", "0.0.0.0/0"), Ok(ListMatch::Match));
        assert_eq!(m("not-an-ip", "*"), Ok(ListMatch::NoMatch));
        assert!(m("10.0.0.1", "10.0.0.1/8").is_err());
        assert!(m("10.0.0.1", "10.0.0.0/33").is_err());
        assert!(m("10.0.0.1", "a,,b").is_err());
        assert_eq!(match_address_list(None, "10.0.0.0/8,!1.2.3.4"), Ok(ListMatch::NoMatch));
    }

    /// `source-address` lists take addresses and networks only: a glob or a negation makes the
    /// whole list an error, as `addr_match_cidr_list` does.
    #[test]
    fn cidr_lists_take_networks_only() {
        assert_eq!(match_cidr_list("10.1.2.3", "192.168.0.0/16,10.0.0.0/8"), Ok(true));
        assert_eq!(match_cidr_list("10.1.2.3", "192.168.0.0/16"), Ok(false));
        assert_eq!(match_cidr_list("::1", "::1/128"), Ok(true));
        assert!(match_cidr_list("10.1.2.3", "10.*").is_err());
        assert!(match_cidr_list("10.1.2.3", "!10.0.0.0/8").is_err());
        assert!(match_cidr_list("10.1.2.3", "10.1.2.3/8").is_err());
    }
}
