//! OpenSSH's patterns as configurations use them: the glob, list and address rules of
//! [`crate::keys::pattern`] (one implementation for configs, `authorized_keys` and
//! `known_hosts`), plus the `user@host` patterns of `AllowUsers`/`DenyUsers` and `Match User`.

pub use crate::keys::pattern::{
    match_address_list, match_host_and_ip, match_hostname, match_pattern, match_pattern_list,
    ListMatch, PatternError,
};

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
            match_pattern(user, user_pattern) && match_host_and_ip(host, ip, hosts).is_match()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
