//! Splitting configuration lines the way OpenSSH does: the keyword (`strdelim`, which also
//! accepts `Keyword=value`), then the arguments (`argv_split`, with quotes, backslash escapes
//! and `#` comments).

/// Characters OpenSSH strips from the end of a line (`WHITESPACE` plus form feed).
const TRAILING: &[char] = &[' ', '\t', '\r', '\n', '\x0c'];

/// One configuration line, split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    /// The keyword as written (not yet lower-cased).
    pub(crate) keyword: String,
    /// The raw text after the keyword and its separator, as some keywords (`ForceCommand`,
    /// `ProxyCommand`, ...) take it verbatim.
    pub(crate) rest: &'a str,
}

/// What a line holds once split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Split<'a> {
    /// Blank line or comment.
    Empty,
    /// A keyword with no argument after it (an error for every keyword).
    NoArgument(String),
    /// A keyword and its arguments.
    Line(Line<'a>),
}

/// Splits one line into keyword and rest (OpenSSH's trailing-whitespace strip and `strdelim`).
pub(crate) fn split_line(line: &str) -> Split<'_> {
    let line = line.trim_end_matches(TRAILING);
    let line = line.trim_start_matches([' ', '\t', '\r']);
    if line.is_empty() || line.starts_with('#') {
        return Split::Empty;
    }
    let Some((keyword, rest)) = strdelim(line) else {
        // An unmatched quote in the keyword: OpenSSH ignores the line.
        return Split::Empty;
    };
    if keyword.is_empty() || keyword.starts_with('#') {
        return Split::Empty;
    }
    match rest {
        Some(rest) if !rest.is_empty() => Split::Line(Line { keyword, rest }),
        _ => Split::NoArgument(keyword),
    }
}

/// OpenSSH's `strdelim`: the first token, ended by whitespace, a quote or one `=` (with
/// whitespace around it), and the rest of the line after the separator. `None` when a quoted
/// keyword has no closing quote. The returned token never contains the quotes.
fn strdelim(s: &str) -> Option<(String, Option<&str>)> {
    let Some(pos) = s.find([' ', '\t', '\r', '\n', '"', '=']) else {
        return Some((s.to_owned(), None));
    };
    let (head, tail) = s.split_at(pos);
    if let Some(quoted) = tail.strip_prefix('"') {
        // OpenSSH drops the opening quote and ends the token at the next quote.
        let close = quoted.find('"')?;
        let token = format!("{head}{}", quoted.get(..close)?);
        let after = quoted.get(close + 1..)?.trim_start_matches(is_ws);
        return Some((token, Some(after)));
    }
    let is_equals = tail.starts_with('=');
    let mut after = tail.get(1..).unwrap_or("").trim_start_matches(is_ws);
    if !is_equals {
        if let Some(stripped) = after.strip_prefix('=') {
            after = stripped.trim_start_matches(is_ws);
        }
    }
    Some((head.to_owned(), Some(after)))
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Quotes that never close (`argv_split` failing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InvalidQuotes;

/// OpenSSH's `argv_split` with comment termination: words separated by spaces or tabs; `'` and
/// `"` quote; a backslash escapes a quote, a backslash and (outside quotes) a space; a word that
/// starts with `#` ends the line.
pub(crate) fn split_args(s: &str) -> Result<Vec<String>, InvalidQuotes> {
    let mut args = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(' ' | '\t')) {
            chars.next();
        }
        match chars.peek() {
            None | Some('#') => return Ok(args),
            Some(_) => {}
        }
        let mut arg = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.peek().copied() {
                    Some(next @ ('\'' | '"' | '\\')) => {
                        arg.push(next);
                        chars.next();
                    }
                    Some(' ') if quote.is_none() => {
                        arg.push(' ');
                        chars.next();
                    }
                    _ => arg.push('\\'),
                },
                ' ' | '\t' if quote.is_none() => break,
                '"' | '\'' if quote.is_none() => quote = Some(c),
                _ if quote == Some(c) => quote = None,
                _ => arg.push(c),
            }
        }
        if quote.is_some() {
            return Err(InvalidQuotes);
        }
        args.push(arg);
    }
}

/// Rebuilds a command line from words, quoting those that need it (OpenSSH's `argv_assemble`).
pub(crate) fn assemble_args(args: &[String]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let needs_quotes = arg.is_empty() || arg.contains([' ', '\t', '\r', '\n']);
        if needs_quotes {
            out.push('"');
        }
        for c in arg.chars() {
            if matches!(c, '\\' | '\'' | '"') {
                out.push('\\');
            }
            out.push(c);
        }
        if needs_quotes {
            out.push('"');
        }
    }
    out
}

/// The lines of a file, numbered from 1, decoded leniently (invalid UTF-8 becomes U+FFFD, which
/// no keyword or value accepts, so such a line is an error rather than a surprise).
pub(crate) fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, String)> + '_ {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| (i + 1, String::from_utf8_lossy(line).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(keyword: &str, rest: &'static str) -> Split<'static> {
        Split::Line(Line { keyword: keyword.to_owned(), rest })
    }

    /// Keyword and value are separated by whitespace or one `=`, with optional spaces.
    #[test]
    fn splits_keyword_from_value_with_space_or_equals() {
        assert_eq!(split_line("Port 22"), line("Port", "22"));
        assert_eq!(split_line("Port=22"), line("Port", "22"));
        assert_eq!(split_line("Port = 22"), line("Port", "22"));
        assert_eq!(split_line("Port =22"), line("Port", "22"));
        assert_eq!(split_line("\t  Port\t22  \r"), line("Port", "22"));
        assert_eq!(split_line("Port==22"), line("Port", "=22"));
    }

    /// Comments, blank lines and keywords without values are told apart.
    #[test]
    fn recognises_comments_blank_lines_and_missing_values() {
        assert_eq!(split_line(""), Split::Empty);
        assert_eq!(split_line("   \t"), Split::Empty);
        assert_eq!(split_line("# Port 22"), Split::Empty);
        assert_eq!(split_line("  #Port 22"), Split::Empty);
        assert_eq!(split_line("Port"), Split::NoArgument("Port".into()));
        assert_eq!(split_line("Port   "), Split::NoArgument("Port".into()));
        assert_eq!(split_line("ab\"cd\" x"), line("abcd", "x"));
        assert_eq!(split_line("\"Port\" 22"), line("Port", "22"));
    }

    /// Arguments honour quotes, escapes and trailing comments as `argv_split` does.
    #[test]
    fn splits_arguments_like_argv_split() {
        let ok = |s: &str| split_args(s).unwrap();
        assert_eq!(ok("a b\tc"), ["a", "b", "c"]);
        assert_eq!(ok("\"a b\" 'c d'"), ["a b", "c d"]);
        assert_eq!(ok("a\\ b"), ["a b"]);
        assert_eq!(ok("a\\\"b"), ["a\"b"]);
        assert_eq!(ok("a\\nb"), ["a\\nb"]);
        assert_eq!(ok("a # comment"), ["a"]);
        assert_eq!(ok("a#b"), ["a#b"]);
        assert_eq!(ok("\"\""), [""]);
        assert_eq!(ok("x\"y z\"w"), ["xy zw"]);
        assert_eq!(split_args("\"open"), Err(InvalidQuotes));
        assert_eq!(split_args("'open"), Err(InvalidQuotes));
    }

    /// Assembled arguments split back into the same words.
    #[test]
    fn assembles_arguments_that_split_back() {
        let words: Vec<String> = ["a b", "c\"d", "", "e\\f"].map(String::from).to_vec();
        assert_eq!(split_args(&assemble_args(&words)).unwrap(), words);
    }

    /// Lines are numbered from one and invalid UTF-8 is replaced, not rejected.
    #[test]
    fn numbers_lines_from_one() {
        let got: Vec<_> = lines(b"a\nb\xff\n").collect();
        assert_eq!(got, [(1, "a".into()), (2, "b\u{fffd}".into()), (3, String::new())]);
    }
}
