//! OpenSSH's host and address patterns (`match.c`, `addrmatch.c`): `*` and `?` wildcards,
//! comma-separated lists with `!` negation, and CIDR networks. Used by `from=` in
//! `authorized_keys`, host names in `known_hosts`, and (later) `Match` blocks in configs.

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

/// Whether `text` matches the glob `pattern` (`*` any run, `?` any one character), whole.
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

/// Matches `text` against a comma-separated list of globs, each optionally negated with `!`
/// (OpenSSH's `match_pattern_list`). With `lowercase`, `text` is compared in lower case, as
/// host names are.
pub fn match_pattern_list(text: &str, list: &str, lowercase: bool) -> ListMatch {
    let text = if lowercase { text.to_ascii_lowercase() } else { text.to_owned() };
    let mut result = ListMatch::NoMatch;
    for entry in list.split(',') {
        let (negated, pattern) = match entry.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        if !match_pattern(&text, pattern) {
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
    match_pattern_list(host, list, true)
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
/// negated (`addr_match_list`). An address that does not parse matches nothing; an empty entry
/// or a network with host bits set is an error.
pub fn match_address_list(addr: &str, list: &str) -> Result<ListMatch, PatternError> {
    let parsed: Option<IpAddr> = addr.parse().ok();
    let mut result = ListMatch::NoMatch;
    for entry in list.split(',') {
        let (negated, pattern) = match entry.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        if pattern.is_empty() {
            return Err(PatternError("empty entry in address list".into()));
        }
        let matched = match parse_cidr(pattern)? {
            Some((network, bits)) => parsed.is_some_and(|a| in_network(a, network, bits)),
            None => parsed.is_some() && match_pattern(addr, pattern),
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

/// OpenSSH's `match_host_and_ip`, as `from=` uses it: the list is matched against both the
/// client's host name and its address. A negated match of either, or an error in the list,
/// refuses; otherwise a match of either accepts.
pub fn match_host_and_ip(host: &str, ip: &str, list: &str) -> ListMatch {
    let by_ip = match match_address_list(ip, list) {
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

/// Parses `address` or `address/bits`. `Ok(None)` if it is not an address at all (so it is
/// matched as a glob); an error for a bad mask length or host bits set beyond the mask.
fn parse_cidr(text: &str) -> Result<Option<(IpAddr, u8)>, PatternError> {
    let (addr, bits) = match text.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (text, None),
    };
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return Ok(None);
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => max,
        Some(b) => match b.parse::<u8>() {
            Ok(n) if n <= max && !b.starts_with('+') => n,
            _ => return Ok(None),
        },
    };
    if mask_host_bits(addr, bits) {
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
        assert_eq!(match_address_list("192.168.1.7", "192.168.0.0/16"), Ok(ListMatch::Match));
        assert_eq!(match_address_list("10.0.0.1", "192.168.0.0/16"), Ok(ListMatch::NoMatch));
        assert_eq!(match_address_list("10.0.0.1", "10.0.0.*"), Ok(ListMatch::Match));
        assert_eq!(match_address_list("10.0.0.1", "0.0.0.0/0,!10.0.0.0/8"), Ok(ListMatch::Negated));
        assert_eq!(match_address_list("2001:db8::1", "2001:db8::/32"), Ok(ListMatch::Match));
        assert_eq!(match_address_list("2001:db8::1", "10.0.0.0/8"), Ok(ListMatch::NoMatch));
        assert!(match_address_list("10.0.0.1", "10.0.0.1/8").is_err());
        assert!(match_address_list("10.0.0.1", "10.0.0.0/8,").is_err());
        assert_eq!(match_address_list("10.0.0.1", "10.0.0.1"), Ok(ListMatch::Match));
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
}
