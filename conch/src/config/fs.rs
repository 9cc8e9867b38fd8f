//! Where configuration files come from: the real file system, or memory (tests, fuzzing).

use std::collections::BTreeMap;
use std::io;

use super::pattern::match_pattern;

/// Largest configuration file read (OpenSSH has no limit; a file this big is a mistake).
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// Reads configuration files and expands `Include` globs.
pub trait Filesystem {
    /// The contents of the file at `path`.
    fn read(&self, path: &str) -> io::Result<Vec<u8>>;
    /// The paths matching the glob `pattern`, sorted; empty when nothing matches.
    fn glob(&self, pattern: &str) -> Result<Vec<String>, String>;
}

/// The real file system (`glob(3)` semantics through the `glob` crate).
#[derive(Clone, Copy, Debug, Default)]
pub struct OsFilesystem;

impl Filesystem for OsFilesystem {
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let file = std::fs::File::open(path)?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_FILE_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "file too large"));
        }
        Ok(bytes)
    }

    fn glob(&self, pattern: &str) -> Result<Vec<String>, String> {
        let paths = glob::glob(pattern).map_err(|e| e.to_string())?;
        let mut out: Vec<String> =
            paths.filter_map(Result::ok).filter_map(|p| p.to_str().map(str::to_owned)).collect();
        out.sort();
        Ok(out)
    }
}

/// Files held in memory, for tests and fuzzing. Globs match path component by component.
#[derive(Clone, Debug, Default)]
pub struct MemoryFilesystem {
    files: BTreeMap<String, Vec<u8>>,
}

impl MemoryFilesystem {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a file.
    pub fn insert(&mut self, path: impl Into<String>, contents: impl Into<Vec<u8>>) -> &mut Self {
        self.files.insert(path.into(), contents.into());
        self
    }
}

impl Filesystem for MemoryFilesystem {
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "No such file or directory"))
    }

    fn glob(&self, pattern: &str) -> Result<Vec<String>, String> {
        let wanted: Vec<&str> = pattern.split('/').collect();
        Ok(self
            .files
            .keys()
            .filter(|path| {
                let parts: Vec<&str> = path.split('/').collect();
                parts.len() == wanted.len()
                    && parts.iter().zip(&wanted).all(|(p, w)| match_pattern(p, w))
            })
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory globs match per component and come back sorted.
    #[test]
    fn memory_globs_match_per_component_in_order() {
        let mut fs = MemoryFilesystem::new();
        fs.insert("/etc/ssh/d/b.conf", "").insert("/etc/ssh/d/a.conf", "");
        fs.insert("/etc/ssh/d/sub/c.conf", "");
        assert_eq!(
            fs.glob("/etc/ssh/d/*.conf").unwrap(),
            ["/etc/ssh/d/a.conf", "/etc/ssh/d/b.conf"]
        );
        assert!(fs.glob("/etc/ssh/none/*").unwrap().is_empty());
        assert!(fs.read("/nope").is_err());
    }
}
