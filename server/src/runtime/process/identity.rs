//! Who a process workload runs as: a [`UserSpec`] resolved in the server's
//! user database, and the environment a process inherits from the server.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use nix::unistd::{Group, Uid, User, getegid, geteuid};

use crate::domain::{NameOrId, UserSpec};

/// What a process workload inherits from the server's environment when the
/// server is given no `--process-env-allow`: what programs need to find other
/// programs, their locale and time zone, a place for temporary files, and who
/// they are. Nothing that could hold a secret of the server's.
pub const DEFAULT_ENV_ALLOW: &str = "PATH,HOME,LANG,LC_ALL,TZ,TMPDIR,USER,LOGNAME";

/// The `PATH` a workload gets when the server has none: Docker's default.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where `setpriv` (util-linux) is looked for: it drops privileges after the
/// launching shell entered the cgroup and set the rlimits as root.
const SETPRIV_CANDIDATES: [&str; 4] = [
    "/usr/bin/setpriv",
    "/bin/setpriv",
    "/usr/sbin/setpriv",
    "/sbin/setpriv",
];

/// A user to switch to, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// The user's name and home directory, when the user database has an
    /// entry for the uid (then its supplementary groups apply too).
    pub account: Option<(String, PathBuf)>,
    /// How the user was asked for, for messages.
    pub shown: String,
}

impl Identity {
    /// Whether the workload runs as someone else than the server.
    pub fn is_other_than_server(&self) -> bool {
        self.uid != geteuid().as_raw() || self.gid != getegid().as_raw()
    }

    /// The arguments of `setpriv` that become this identity before running
    /// the program that follows them.
    pub fn setpriv_arguments(&self) -> Vec<String> {
        let groups = if self.account.is_some() {
            "--init-groups"
        } else {
            "--clear-groups"
        };
        vec![
            format!("--reuid={}", self.uid),
            format!("--regid={}", self.gid),
            groups.to_owned(),
            "--".to_owned(),
        ]
    }

    /// What describes the user in a login environment (`HOME`, `USER`,
    /// `LOGNAME`), from its entry in the user database; `HOME=/` without one,
    /// as Docker does.
    pub fn login_env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        match &self.account {
            Some((name, home)) => {
                env.insert("HOME".to_owned(), home.to_string_lossy().into_owned());
                env.insert("USER".to_owned(), name.clone());
                env.insert("LOGNAME".to_owned(), name.clone());
            }
            None => {
                env.insert("HOME".to_owned(), "/".to_owned());
            }
        }
        env
    }
}

/// Resolves `user` in the server's user database, and checks that this
/// server may become it. The error is a sentence for the user.
pub fn resolve(user: &UserSpec) -> Result<Identity, String> {
    let (uid, account) = match &user.user {
        NameOrId::Name(name) => {
            let account = User::from_name(name)
                .map_err(|error| format!("looking up user {name}: {error}"))?
                .ok_or_else(|| format!("no user named {name} on this server"))?;
            (account.uid.as_raw(), Some(account))
        }
        NameOrId::Id(uid) => (
            *uid,
            User::from_uid(Uid::from_raw(*uid))
                .map_err(|error| format!("looking up uid {uid}: {error}"))?,
        ),
    };
    let gid = match (&user.group, &account) {
        (Some(NameOrId::Name(name)), _) => Group::from_name(name)
            .map_err(|error| format!("looking up group {name}: {error}"))?
            .ok_or_else(|| format!("no group named {name} on this server"))?
            .gid
            .as_raw(),
        (Some(NameOrId::Id(gid)), _) => *gid,
        (None, Some(account)) => account.gid.as_raw(),
        // Docker would take group 0 (root) here: refused instead.
        (None, None) => {
            return Err(format!(
                "uid {uid} has no entry in the user database, so it has no group: give one as {uid}:GID"
            ));
        }
    };
    let identity = Identity {
        uid,
        gid,
        account: account.map(|account| (account.name, account.dir)),
        shown: user.to_string(),
    };
    if identity.is_other_than_server() && !geteuid().is_root() {
        return Err(format!(
            "running as {} needs slipway to run as root (it runs as uid {})",
            identity.shown,
            geteuid()
        ));
    }
    Ok(identity)
}

/// Where `setpriv` is on this server, if it is.
pub fn find_setpriv() -> Option<PathBuf> {
    SETPRIV_CANDIDATES
        .iter()
        .map(Path::new)
        .find(|path| path.is_file())
        .map(Path::to_path_buf)
}

/// The variables named in `allow` (comma-separated) taken from `server_env`,
/// with `PATH` set to [`DEFAULT_PATH`] when the server has none.
pub fn inherited_env(
    allow: &[String],
    server_env: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = server_env
        .into_iter()
        .filter(|(name, _)| allow.iter().any(|allowed| allowed == name))
        .collect();
    env.entry("PATH".to_owned())
        .or_insert_with(|| DEFAULT_PATH.to_owned());
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_variables_are_inherited() {
        let allow = vec!["PATH".to_owned(), "LANG".to_owned()];
        let server = [
            ("PATH".to_owned(), "/opt/bin".to_owned()),
            ("DATABASE_PASSWORD".to_owned(), "hunter2".to_owned()),
            ("LANG".to_owned(), "C.UTF-8".to_owned()),
        ];
        let env = inherited_env(&allow, server);
        assert_eq!(
            env.into_iter().collect::<Vec<_>>(),
            [
                ("LANG".to_owned(), "C.UTF-8".to_owned()),
                ("PATH".to_owned(), "/opt/bin".to_owned())
            ]
        );
        let env = inherited_env(&allow, []);
        assert_eq!(env.get("PATH").map(String::as_str), Some(DEFAULT_PATH));
    }

    #[test]
    fn users_resolve_in_the_user_database() {
        // The server's own user needs no privileges to become.
        let own = geteuid().as_raw();
        let me = resolve(&UserSpec::parse(&own.to_string()).expect("parse")).expect("own uid");
        assert_eq!(me.uid, own);
        let unknown = resolve(&UserSpec::parse("no-such-user-slipway").expect("parse"));
        assert_eq!(
            unknown,
            Err("no user named no-such-user-slipway on this server".to_owned())
        );
        let no_group = resolve(&UserSpec::parse("4000000").expect("parse"));
        assert!(no_group.is_err_and(|error| error.contains("4000000:GID")));
    }
}
