//! Token expansion: `%x` tokens (OpenSSH's `percent_expand`), `${VAR}` environment variables
//! (`dollar_expand`) and a leading `~` (`tilde_expand`).

use std::fmt;

use super::Lookup;

/// Why a string could not be expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpandError {
    /// `%` at the end of the string.
    InvalidFormat,
    /// `%c` for a token this keyword does not accept.
    UnknownToken(char),
    /// `${` without `}`.
    MissingBrace,
    /// `${}`.
    EmptyVariable,
    /// `${NAME}` naming an unset variable.
    UnsetVariable(String),
    /// `~user` naming an unknown user.
    UnknownUser(String),
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidFormat => f.write_str("invalid format"),
            Self::UnknownToken(c) => write!(f, "unknown key %{c}"),
            Self::MissingBrace => f.write_str("environment variable missing closing '}'"),
            Self::EmptyVariable => f.write_str("zero-length environment variable"),
            Self::UnsetVariable(name) => write!(f, "env var ${{{name}}} has no value"),
            Self::UnknownUser(user) => write!(f, "No such user {user}"),
        }
    }
}

impl std::error::Error for ExpandError {}

/// Expands `%c` tokens from `tokens` (`%%` is a literal `%`) and, when `env` is given,
/// `${NAME}` variables through it.
pub fn expand(
    s: &str,
    tokens: &[(char, &str)],
    env: Option<&dyn Lookup>,
) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        rest = rest.get(c.len_utf8()..).unwrap_or("");
        if let (Some(env), '$') = (env, c) {
            if let Some(after) = rest.strip_prefix('{') {
                let end = after.find('}').ok_or(ExpandError::MissingBrace)?;
                let name = after.get(..end).unwrap_or("");
                if name.is_empty() {
                    return Err(ExpandError::EmptyVariable);
                }
                let value =
                    env.lookup(name).ok_or_else(|| ExpandError::UnsetVariable(name.into()))?;
                out.push_str(&value);
                rest = after.get(end + 1..).unwrap_or("");
                continue;
            }
        }
        if c != '%' || tokens.is_empty() {
            out.push(c);
            continue;
        }
        let key = rest.chars().next().ok_or(ExpandError::InvalidFormat)?;
        rest = rest.get(key.len_utf8()..).unwrap_or("");
        if key == '%' {
            out.push('%');
            continue;
        }
        let (_, value) =
            tokens.iter().find(|(k, _)| *k == key).ok_or(ExpandError::UnknownToken(key))?;
        out.push_str(value);
    }
    Ok(out)
}

/// Expands a leading `~` or `~user` (OpenSSH's `tilde_expand`): `home(None)` is the current
/// user's home directory, `home(Some(user))` another user's. Other paths are returned as they
/// are.
pub fn expand_tilde(
    path: &str,
    home: &dyn Fn(Option<&str>) -> Option<String>,
) -> Result<String, ExpandError> {
    let Some(after) = path.strip_prefix('~') else {
        return Ok(path.to_owned());
    };
    let (user, rest) = match after.find('/') {
        Some(i) => (after.get(..i).unwrap_or(""), after.get(i..).unwrap_or("")),
        None => (after, ""),
    };
    let rest = rest.trim_start_matches('/');
    let dir = if user.is_empty() {
        home(None).ok_or_else(|| ExpandError::UnknownUser(String::from("(current user)")))?
    } else {
        home(Some(user)).ok_or_else(|| ExpandError::UnknownUser(user.to_owned()))?
    };
    let slash = if dir.ends_with('/') { "" } else { "/" };
    Ok(format!("{dir}{slash}{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKENS: &[(char, &str)] = &[('h', "host.example"), ('p', "22"), ('r', "alice")];

    /// Known tokens are replaced, `%%` is a percent sign, unknown tokens are errors.
    #[test]
    fn expands_percent_tokens() {
        assert_eq!(expand("nc %h %p", TOKENS, None).unwrap(), "nc host.example 22");
        assert_eq!(expand("100%%", TOKENS, None).unwrap(), "100%");
        assert_eq!(expand("%r@%h", TOKENS, None).unwrap(), "alice@host.example");
        assert_eq!(expand("%x", TOKENS, None), Err(ExpandError::UnknownToken('x')));
        assert_eq!(expand("50%", TOKENS, None), Err(ExpandError::InvalidFormat));
        assert_eq!(expand("%C", TOKENS, None).unwrap_err().to_string(), "unknown key %C");
    }

    /// `${VAR}` reads the environment callback; a missing variable is an error.
    #[test]
    fn expands_environment_variables() {
        let env = |name: &str| (name == "HOME").then(|| "/home/alice".to_owned());
        let env: &dyn Lookup = &env;
        assert_eq!(
            expand("${HOME}/.ssh/%h", TOKENS, Some(env)).unwrap(),
            "/home/alice/.ssh/host.example"
        );
        assert_eq!(expand("$HOME", TOKENS, Some(env)).unwrap(), "$HOME");
        assert_eq!(
            expand("${NOPE}", TOKENS, Some(env)),
            Err(ExpandError::UnsetVariable("NOPE".into()))
        );
        assert_eq!(expand("${HOME", TOKENS, Some(env)), Err(ExpandError::MissingBrace));
        assert_eq!(expand("${}", TOKENS, Some(env)), Err(ExpandError::EmptyVariable));
    }

    /// A leading tilde becomes the home directory of the current or the named user.
    #[test]
    fn expands_leading_tilde() {
        let home = |user: Option<&str>| match user {
            None => Some("/home/me".to_owned()),
            Some("bob") => Some("/srv/bob/".to_owned()),
            Some(_) => None,
        };
        assert_eq!(expand_tilde("~/.ssh/id", &home).unwrap(), "/home/me/.ssh/id");
        assert_eq!(expand_tilde("~", &home).unwrap(), "/home/me/");
        assert_eq!(expand_tilde("~bob/x", &home).unwrap(), "/srv/bob/x");
        assert_eq!(expand_tilde("/etc/~x", &home).unwrap(), "/etc/~x");
        assert_eq!(expand_tilde("~eve/x", &home), Err(ExpandError::UnknownUser("eve".into())));
    }
}
