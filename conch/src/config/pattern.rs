//! OpenSSH's patterns as configurations use them (`match.c`, `addrmatch.c`): `*`/`?` globs,
//! comma-separated lists with `!` negation, CIDR networks, and `user@host` patterns.
//!
//! These sit behind small functions so that they can later defer to `keys::pattern`, which
//! implements the same rules for `authorized_keys` and `known_hosts`.

use std::net::IpAddr;

/// The outcome of matching against a pattern list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListMatch {
    /// No pattern matched.
    NoMatch,
    /// A positive pattern matched and no negated one did.
    Match,
    /// A negated pattern matched (this overrides any positive match).
    Negated,
}

impl ListMatch {
    /// Whether the list accepted the name.
    pub fn is_match(self) -> bool {
        self == Self::Match
    }
}

/// Whether `text` matches the glob `pattern` whole (`*` any run, `?` any one character).
/// Iterative, with one backtrack point: linear in practice and never recursive.
pub fn match_pattern(text: &str, pattern: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || Some(&c) == text.get(t) => {
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
    pattern.get(p..).is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

/// OpenSSH's `match_pattern_list`: each comma-separated entry may be negated with `!`. With
/// `lowercase`, the patterns are compared in lower case (the caller lower-cases the text).
pub fn match_pattern_list(text: &str, list: &str, lowercase: bool) -> ListMatch {
    let mut result = ListMatch::NoMatch;
    for entry in list.split(',') {
        let (negated, pattern) = match entry.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
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

/// A host name against a pattern list, case-insensitively (`match_hostname`).
pub fn match_hostname(host: &str, list: &str) -> ListMatch {
    match_pattern_list(&host.to_ascii_lowercase(), list, true)
}

/// A malformed entry in an address list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadAddressList;

/// OpenSSH's `addr_match_list`: entries are CIDR networks (`10.0.0.0/8`), addresses, or globs
/// compared with the address text; each may be negated. `addr` of `None` only checks the
/// list. An address that does not parse matches nothing.
pub fn match_address_list(addr: Option<&str>, list: &str) -> Result<ListMatch, BadAddressList> {
    let parsed = match addr {
        Some(a) => match a.parse::<IpAddr>() {
            Ok(ip) => Some((a, ip)),
            Err(_) => return Ok(ListMatch::NoMatch),
        },
        None => None,
    };
    let mut result = ListMatch::NoMatch;
    for entry in list.split(',') {
        let (negated, pattern) = match entry.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        if pattern.is_empty() {
            return Err(BadAddressList);
        }
        let matched = match parse_cidr(pattern) {
            Cidr::Network(network, bits) => {
                parsed.is_some_and(|(_, ip)| in_network(ip, network, bits))
            }
            Cidr::Inconsistent => return Err(BadAddressList),
            Cidr::NotAnAddress => parsed.is_some_and(|(text, _)| match_pattern(text, pattern)),
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

enum Cidr {
    Network(IpAddr, u8),
    /// A mask too long for the family, or host bits set (`addr_pton_cidr` returning -2).
    Inconsistent,
    NotAnAddress,
}

fn parse_cidr(s: &str) -> Cidr {
    let (addr, bits) = match s.split_once('/') {
        Some((addr, bits)) => {
            if !bits.starts_with(|c: char| c.is_ascii_digit()) {
                return Cidr::NotAnAddress;
            }
            match bits.parse::<u8>() {
                Ok(b) if b <= 128 => (addr, Some(b)),
                _ => return Cidr::NotAnAddress,
            }
        }
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return Cidr::NotAnAddress;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    if bits > max || !host_bits_zero(ip, bits) {
        return Cidr::Inconsistent;
    }
    Cidr::Network(ip, bits)
}

fn to_bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

fn mask(width: u8, bits: u8) -> u128 {
    let host_bits = u32::from(width.saturating_sub(bits));
    let all = if width == 128 { u128::MAX } else { (1u128 << width) - 1 };
    all & !(1u128.checked_shl(host_bits).map_or(u128::MAX, |v| v - 1))
}

fn host_bits_zero(ip: IpAddr, bits: u8) -> bool {
    let (value, width) = to_bits(ip);
    value & !mask(width, bits) == 0
}

fn in_network(ip: IpAddr, network: IpAddr, bits: u8) -> bool {
    if ip.is_ipv4() != network.is_ipv4() {
        return false;
    }
    let (a, width) = to_bits(ip);
    let (n, _) = to_bits(network);
    a & mask(width, bits) == n
}

/// OpenSSH's `match_host_and_ip`: the list is matched against both the host name and the
/// address; a negated match of either, or no match at all, refuses.
pub fn match_host_and_ip(host: &str, ip: &str, list: &str) -> Result<bool, BadAddressList> {
    let by_ip = match_address_list(Some(ip), list)?;
    if by_ip == ListMatch::Negated {
        return Ok(false);
    }
    let by_host = match_hostname(host, list);
    if by_host == ListMatch::Negated {
        return Ok(false);
    }
    Ok(by_ip == ListMatch::Match || by_host == ListMatch::Match)
}

/// Whether a `user` or `user@host` pattern (`AllowUsers`, `DenyUsers`) is well formed: the
/// host part, if any, must be a valid address list (`match_user` in test mode).
pub fn valid_user_pattern(pattern: &str) -> bool {
    match pattern.split_once('@') {
        Some((_, hosts)) => match_address_list(None, hosts).is_ok(),
        None => true,
    }
}

/// OpenSSH's `match_user`: `user` or `user@host-or-address-list`.
pub fn match_user(user: &str, host: &str, ip: &str, pattern: &str) -> bool {
    match pattern.split_once('@') {
        None => match_pattern(user, pattern),
        Some((user_pattern, hosts)) => {
            match_pattern(user, user_pattern) && match_host_and_ip(host, ip, hosts).unwrap_or(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(m("10.0.0.1", "10.0.0.1/8"), Err(BadAddressList));
        assert_eq!(m("10.0.0.1", "10.0.0.0/33"), Err(BadAddressList));
        assert_eq!(m("10.0.0.1", "a,,b"), Err(BadAddressList));
        assert_eq!(match_address_list(None, "10.0.0.0/8,!1.2.3.4"), Ok(ListMatch::NoMatch));
    }

    /// `user@host` patterns check both parts; the host part accepts names and addresses.
    #[test]
    fn matches_user_at_host_patterns() {
        assert!(match_user("alice", "h.example", "10.1.2.3", "alice"));
        assert!(match_user("alice", "h.example", "10.1.2.3", "al*@10.0.0.0/8"));
        assert!(match_user("alice", "h.example", "10.1.2.3", "alice@*.example"));
        assert!(!match_user("alice", "h.example", "10.1.2.3", "alice@192.168.0.0/16"));
        assert!(!match_user("bob", "h.example", "10.1.2.3", "alice@*"));
        assert!(valid_user_pattern("alice@10.0.0.0/8"));
        assert!(!valid_user_pattern("alice@10.0.0.1/8"));
    }
}
