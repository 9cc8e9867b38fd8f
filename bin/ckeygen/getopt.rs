//! POSIX `getopt(3)` as `ssh-keygen` uses it: single-dash flags that cluster (`-qt ed25519`),
//! arguments attached (`-b2048`) or separate (`-b 2048`), `--` ending the options, and the
//! first operand ending them too. clap cannot reproduce this syntax and its error texts, which
//! scripts written for `ssh-keygen` meet, so this small parser does.

/// One option found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Opt {
    /// The option letter.
    pub(crate) letter: char,
    /// Its argument, for options that take one.
    pub(crate) arg: Option<String>,
}

/// A command line that does not parse.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum GetoptError {
    /// An option letter not in the spec (`unknown option -- x`).
    Unknown(char),
    /// An option that needs an argument came last (`option requires an argument -- f`).
    MissingArgument(char),
}

/// Parses `args` (without the program name) against `spec`, where a letter followed by `:`
/// takes an argument. Returns the options in order and the operands after them.
pub(crate) fn getopt(args: &[String], spec: &str) -> Result<(Vec<Opt>, Vec<String>), GetoptError> {
    let mut opts = Vec::new();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        if arg == "--" {
            i += 1;
            break;
        }
        let Some(cluster) = arg.strip_prefix('-').filter(|c| !c.is_empty()) else {
            break;
        };
        i += 1;
        for (at, letter) in cluster.char_indices() {
            let takes_arg = match spec.find(letter) {
                Some(pos) if letter != ':' => spec[pos + letter.len_utf8()..].starts_with(':'),
                _ => return Err(GetoptError::Unknown(letter)),
            };
            if !takes_arg {
                opts.push(Opt { letter, arg: None });
                continue;
            }
            let attached = &cluster[at + letter.len_utf8()..];
            let value = if attached.is_empty() {
                let value = args.get(i).ok_or(GetoptError::MissingArgument(letter))?;
                i += 1;
                value.clone()
            } else {
                attached.to_owned()
            };
            opts.push(Opt { letter, arg: Some(value) });
            break;
        }
    }
    Ok((opts, args.get(i..).unwrap_or_default().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<(Vec<Opt>, Vec<String>), GetoptError> {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        getopt(&args, "qlvf:t:b:N:")
    }

    fn opt(letter: char, arg: Option<&str>) -> Opt {
        Opt { letter, arg: arg.map(str::to_owned) }
    }

    /// Clustered flags, attached and separate arguments, and operands parse as getopt does.
    #[test]
    fn parses_clusters_and_attached_arguments() {
        let (opts, rest) = parse("-qt ed25519 -b2048 -lvf key file").unwrap();
        assert_eq!(
            opts,
            vec![
                opt('q', None),
                opt('t', Some("ed25519")),
                opt('b', Some("2048")),
                opt('l', None),
                opt('v', None),
                opt('f', Some("key")),
            ]
        );
        assert_eq!(rest, vec!["file".to_owned()]);
    }

    /// Unknown letters and a missing argument are errors naming the letter.
    #[test]
    fn reports_unknown_options_and_missing_arguments() {
        assert_eq!(parse("-x"), Err(GetoptError::Unknown('x')));
        assert_eq!(parse("-q -f"), Err(GetoptError::MissingArgument('f')));
        assert_eq!(parse("-:"), Err(GetoptError::Unknown(':')));
    }

    /// `--` ends the options; an argument that starts with a dash is still an argument.
    #[test]
    fn double_dash_ends_options_and_dash_arguments_are_values() {
        let (opts, rest) = parse("-N -q -- -l").unwrap();
        assert_eq!(opts, vec![opt('N', Some("-q"))]);
        assert_eq!(rest, vec!["-l".to_owned()]);
    }
}
