//! `-F host`, `-R host` and `-H` on a `known_hosts` file, with `ssh-keygen`'s output, backup
//! (`file.old`) and exit codes: `-F` exits 1 when nothing is found; an invalid line makes `-R`
//! and `-H` refuse to rewrite the file and exit 1.

use std::fs;
use std::io::Write as _;

use twine::conch::crypto::OsRandom;
use twine::conch::keys::known_hosts::{self, Line, Marker};
use twine::conch::keys::KnownHosts;

use crate::keyfile::os_error_text;
use crate::{commands, prompt, Failure, Options};

/// Dispatches `-F`, `-R` and `-H`.
pub(crate) fn known_hosts(o: &Options) -> Result<u8, Failure> {
    let path = o.file.clone().unwrap_or_else(|| format!("{}/.ssh/known_hosts", prompt::home_dir()));
    let text = fs::read(&path)
        .map_err(|e| Failure::fatal(format!("Cannot stat {path}: {}", os_error_text(&e))))?;
    let kh = KnownHosts::parse(&String::from_utf8_lossy(&text));
    if let Some(host) = &o.find_host {
        return find(o, &kh, host);
    }
    if let Some(host) = &o.remove_host {
        return remove(o, &path, &kh, host);
    }
    hash(o, &path, &kh)
}

fn marker_word(marker: Marker) -> &'static str {
    match marker {
        Marker::None => "",
        Marker::CertAuthority => "CA",
        Marker::Revoked => "REVOKED",
    }
}

fn find(o: &Options, kh: &KnownHosts, host: &str) -> Result<u8, Failure> {
    let mut rng = OsRandom::new();
    let mut found = false;
    for (n, entry) in kh.find(host, known_hosts::DEFAULT_PORT) {
        found = true;
        if !o.quiet {
            println!("# Host {host} found: line {n} {}", marker_word(entry.marker));
        }
        if o.hash_hosts {
            if known_hosts::should_hash(entry) {
                let lines = known_hosts::hashed_lines(entry, &mut rng)
                    .map_err(|e| Failure::fatal(format!("hash_host failed: {e}")))?;
                for line in lines {
                    println!("{line}");
                }
            } else {
                println!("{}", raw_line(kh, n));
            }
        } else if o.fingerprint {
            if let Some(key) = &entry.key {
                // `ssh-keygen -F -l` prints "host TYPE fingerprint comment".
                let comment = entry.key_text.splitn(3, [' ', '\t']).nth(2).unwrap_or_default();
                let digest = commands::digest_text(key, o);
                println!("{host} {} {digest} {comment}", key.short_type_name());
                if o.verbose > 0 {
                    println!("{}", key.randomart(o.hash));
                }
            }
        } else {
            println!("{}", raw_line(kh, n));
        }
    }
    Ok(u8::from(!found))
}

fn raw_line(kh: &KnownHosts, n: usize) -> String {
    kh.lines().find(|(i, _, _)| *i == n).map(|(_, raw, _)| raw.to_owned()).unwrap_or_default()
}

/// Reports invalid lines; true if there were any.
fn report_invalid(path: &str, kh: &KnownHosts) -> bool {
    let invalid = kh.invalid_lines();
    for n in &invalid {
        eprintln!("{path}:{n}: invalid line");
    }
    if invalid.is_empty() {
        return false;
    }
    eprintln!("{path} is not a valid known_hosts file.");
    eprintln!("Not replacing existing known_hosts file because of errors");
    true
}

fn remove(o: &Options, path: &str, kh: &KnownHosts, host: &str) -> Result<u8, Failure> {
    let (text, removed) = kh.remove_host(host, known_hosts::DEFAULT_PORT);
    if !o.quiet {
        for n in &removed {
            println!("# Host {host} found: line {n}");
        }
    }
    if report_invalid(path, kh) {
        return Ok(1);
    }
    if removed.is_empty() {
        eprintln!("Host {host} not found in {path}");
        return Ok(0);
    }
    replace(path, &text)?;
    Ok(0)
}

fn hash(o: &Options, path: &str, kh: &KnownHosts) -> Result<u8, Failure> {
    if report_invalid(path, kh) {
        return Ok(1);
    }
    for (n, _, line) in kh.lines() {
        if let Line::Entry(e) = line {
            if !e.is_hashed()
                && e.marker == Marker::None
                && !known_hosts::should_hash(e)
                && !o.quiet
            {
                eprintln!("{path}:{n}: ignoring host name with wildcards: {:.64}", e.hosts);
            }
        }
    }
    let (text, hashed_any) = kh
        .hash_all(&mut OsRandom::new())
        .map_err(|e| Failure::fatal(format!("hash_host failed: {e}")))?;
    replace(path, &text)?;
    if hashed_any {
        eprintln!("WARNING: {path}.old contains unhashed entries");
        eprintln!("Delete this file to ensure privacy of hostnames");
    }
    Ok(0)
}

/// Replaces `path` with `text`, keeping the old contents as `path.old` (a hard link, as
/// `ssh-keygen` makes it) and the file's permissions.
fn replace(path: &str, text: &str) -> Result<(), Failure> {
    let old = format!("{path}.old");
    let tmp = format!("{path}.{}.tmp", std::process::id());
    let fail =
        |what: &str, e: std::io::Error| Failure::fatal(format!("{what}: {}", os_error_text(&e)));
    let mut file = fs::File::create(&tmp).map_err(|e| fail(&format!("mkstemp: {tmp}"), e))?;
    if let Ok(meta) = fs::metadata(path) {
        let _ = file.set_permissions(meta.permissions());
    }
    file.write_all(text.as_bytes()).map_err(|e| fail(&format!("write {tmp}"), e))?;
    drop(file);
    match fs::remove_file(&old) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(&format!("unlink {old}"), e)),
    }
    fs::hard_link(path, &old).map_err(|e| fail(&format!("link {path} to {old}"), e))?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        let _ = fs::remove_file(&old);
        return Err(fail(&format!("rename \"{tmp}\" to \"{path}\""), e));
    }
    println!("{path} updated.");
    println!("Original contents retained as {old}");
    Ok(())
}
