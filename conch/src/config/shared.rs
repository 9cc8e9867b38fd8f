//! Pieces both configuration parsers use: argument cursors, line errors, algorithm lists.

use crate::crypto::algorithms::Category;

/// A bad line: its message, and whether OpenSSH stops at once (`fatal`) or counts it and goes
/// on (`error`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LineError {
    pub(crate) message: String,
    pub(crate) fatal: bool,
}

/// The arguments of a line, consumed left to right.
#[derive(Debug)]
pub(crate) struct Args {
    items: std::vec::IntoIter<String>,
}

impl Args {
    pub(crate) fn new(items: Vec<String>) -> Self {
        Self { items: items.into_iter() }
    }

    pub(crate) fn next(&mut self) -> Option<String> {
        self.items.next()
    }

    pub(crate) fn next_nonempty(&mut self) -> Option<String> {
        self.items.next().filter(|a| !a.is_empty())
    }

    pub(crate) fn remaining(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn consume(&mut self) {
        self.items.by_ref().for_each(drop);
    }

    pub(crate) fn peek(&self) -> Option<&str> {
        self.items.as_slice().first().map(String::as_str)
    }
}

/// Checks an algorithm list value: every name outside a `-` list must be one we support
/// (OpenSSH, too, refuses names it does not know).
pub(crate) fn valid_algorithm_list(category: Category, value: &str) -> bool {
    if value.starts_with('-') {
        return true;
    }
    let names = value.strip_prefix(['+', '^']).unwrap_or(value);
    !names.is_empty() && names.split(',').all(|name| category.supported().contains(&name))
}

/// Finds `arg` in a multistate table (case-insensitively), as OpenSSH's multistate parsing does.
pub(crate) fn choice(table: &[(&str, u8)], arg: &str) -> Option<u8> {
    table.iter().find(|(name, _)| name.eq_ignore_ascii_case(arg)).map(|(_, v)| *v)
}

/// The `strerror` text OpenSSH prints for a file that cannot be read.
pub(crate) fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "No such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "Permission denied".into(),
        _ => e.to_string(),
    }
}
