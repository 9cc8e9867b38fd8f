//! [`Account`]: a user as the system's password database describes it.

use std::path::PathBuf;

use nix::unistd::{Uid, User};

/// A user account: what a login needs to know to start the user's session and to find the
/// user's files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The login name.
    pub name: String,
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// The home directory.
    pub home: PathBuf,
    /// The login shell (empty in the database means `/bin/sh`).
    pub shell: PathBuf,
}

type Lookup = dyn Fn(&str) -> Result<Option<Account>, twine_core::Error> + Send + Sync;

static LOOKUP_OVERRIDE: std::sync::OnceLock<Box<Lookup>> = std::sync::OnceLock::new();

/// Makes every later [`Account::lookup`] of this process ask `lookup` instead of the user
/// database: a privilege-separated worker, which cannot read it, asks its monitor. Set once;
/// returns `false` if it was already set.
pub fn set_lookup_override(
    lookup: impl Fn(&str) -> Result<Option<Account>, twine_core::Error> + Send + Sync + 'static,
) -> bool {
    LOOKUP_OVERRIDE.set(Box::new(lookup)).is_ok()
}

impl Account {
    /// Looks `name` up in the system's user database (`getpwnam_r`, so NSS sources count).
    /// Blocking: call it from a thread ([`Offload::run`](super::Offload::run)).
    ///
    /// # Errors
    ///
    /// The database could not be read.
    pub fn lookup(name: &str) -> Result<Option<Self>, twine_core::Error> {
        if let Some(lookup) = LOOKUP_OVERRIDE.get() {
            return lookup(name);
        }
        let user = User::from_name(name)
            .map_err(|err| twine_core::Error::from_errno(err as i32, format!("look up {name}")))?;
        Ok(user.map(Self::from_user))
    }

    /// The account this process runs as.
    ///
    /// # Errors
    ///
    /// The database could not be read, or has no entry for our uid.
    pub fn current() -> Result<Self, twine_core::Error> {
        let uid = Uid::effective();
        let user = User::from_uid(uid)
            .map_err(|err| twine_core::Error::from_errno(err as i32, "look up our own uid"))?;
        user.map(Self::from_user).ok_or_else(|| {
            twine_core::Error::new(
                twine_core::ErrorKind::NotFound,
                format!("no user with uid {uid}"),
            )
        })
    }

    fn from_user(user: User) -> Self {
        let shell =
            if user.shell.as_os_str().is_empty() { PathBuf::from("/bin/sh") } else { user.shell };
        Self {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            home: user.dir,
            shell,
        }
    }
}

/// Runs `f` with this thread's filesystem identity (`setfsuid`, `setfsgid`: per thread, so
/// the process's other threads keep theirs) set to `uid`/`gid`, so that paths are reached, and
/// files made, with that user's permissions and ownership rather than root's; the identity is
/// restored after. Without root's privilege the calls change nothing and `f` runs as is. The
/// user's supplementary groups do not apply.
pub fn as_filesystem_user<T>(uid: u32, gid: u32, f: impl FnOnce() -> T) -> T {
    use nix::unistd::{setfsgid, setfsuid, Gid};
    let old_gid = setfsgid(Gid::from_raw(gid));
    let old_uid = setfsuid(Uid::from_raw(uid));
    let out = f();
    setfsuid(old_uid);
    setfsgid(old_gid);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The account we run as is found by name and by uid, with the same fields.
    #[test]
    fn finds_the_current_account_by_name_and_uid() {
        let me = Account::current().unwrap();
        assert_eq!(me.uid, Uid::effective().as_raw());
        assert_eq!(Account::lookup(&me.name).unwrap(), Some(me));
        assert_eq!(Account::lookup("no-such-user-twine-test").unwrap(), None);
    }
}
