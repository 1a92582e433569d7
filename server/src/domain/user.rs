//! Who a workload runs as, and the other limits a spec puts on its processes
//! (open files, memory, CPU), checked without I/O.

use super::{DeploymentSpec, FieldViolation};

/// A user or a group: a name, or a numeric id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameOrId {
    Name(String),
    Id(u32),
}

impl NameOrId {
    fn parse(text: &str) -> Option<NameOrId> {
        if text.is_empty() {
            return None;
        }
        if text.bytes().all(|byte| byte.is_ascii_digit()) {
            return text.parse().ok().map(NameOrId::Id);
        }
        // The portable user name set (POSIX), plus what Debian's adduser and
        // systemd allow: letters, digits, '_', '.', '-', a trailing '$'
        // (machine accounts); not starting with '-'.
        let body = text.strip_suffix('$').unwrap_or(text);
        let valid = !body.is_empty()
            && !body.starts_with('-')
            && body
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"_.-".contains(&byte));
        (valid && text.len() <= 256).then(|| NameOrId::Name(text.to_owned()))
    }
}

impl std::fmt::Display for NameOrId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NameOrId::Name(name) => formatter.write_str(name),
            NameOrId::Id(id) => write!(formatter, "{id}"),
        }
    }
}

/// A user to run as, in Docker's syntax: `name`, `uid`, `name:group`, `uid:gid`
/// (a group given by name or id either way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub user: NameOrId,
    /// The primary group; `None`: the user's own (from the user database).
    pub group: Option<NameOrId>,
}

impl UserSpec {
    /// Parses `USER[:GROUP]`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<UserSpec, String> {
        let (user, group) = match text.split_once(':') {
            Some((user, group)) => (user, Some(group)),
            None => (text, None),
        };
        let user = NameOrId::parse(user)
            .ok_or("must be a user name or a numeric uid, optionally followed by :group or :gid")?;
        let group = group
            .map(|group| {
                NameOrId::parse(group).ok_or("the group must be a group name or a numeric gid")
            })
            .transpose()?;
        Ok(UserSpec { user, group })
    }
}

impl std::fmt::Display for UserSpec {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.group {
            Some(group) => write!(formatter, "{}:{group}", self.user),
            None => write!(formatter, "{}", self.user),
        }
    }
}

/// The most `max_open_files` may be: Linux's default `fs.nr_open`, above which
/// `setrlimit(RLIMIT_NOFILE)` fails.
pub const MAX_OPEN_FILES: u64 = 1024 * 1024;

/// The least a memory limit may be (Docker's minimum).
pub const MIN_MEMORY_BYTES: u64 = 6 * 1024 * 1024;

/// The most CPUs a limit may name, in thousandths (far above any machine; keeps
/// `cpu.max` and Docker's NanoCPUs inside their integers).
pub const MAX_MILLICPUS: u32 = 1024 * 1000;

/// Checks `user`, `max_open_files` and `resources`, for every runtime. Whether
/// the user exists is the runtime's to say (a process's in the server's user
/// database, a container's in its image).
pub fn check_process_limits(spec: &DeploymentSpec, violations: &mut Vec<FieldViolation>) {
    if let Some(user) = &spec.user {
        if let Err(reason) = UserSpec::parse(user) {
            violations.push(FieldViolation::new("spec.user", reason));
        }
    }
    if let Some(files) = spec.max_open_files {
        if files == 0 || files > MAX_OPEN_FILES {
            violations.push(FieldViolation::new(
                "spec.max_open_files",
                format!("must be between 1 and {MAX_OPEN_FILES}"),
            ));
        }
    }
    if spec
        .resources
        .memory_bytes
        .is_some_and(|bytes| bytes < MIN_MEMORY_BYTES)
    {
        violations.push(FieldViolation::new(
            "spec.resources.memory_bytes",
            "must be at least 6 MiB (6291456)",
        ));
    }
    if spec
        .resources
        .millicpus
        .is_some_and(|millicpus| millicpus == 0 || millicpus > MAX_MILLICPUS)
    {
        violations.push(FieldViolation::new(
            "spec.resources.millicpus",
            format!("must be between 1 and {MAX_MILLICPUS}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_parse_in_dockers_syntax() {
        assert_eq!(
            UserSpec::parse("nobody"),
            Ok(UserSpec {
                user: NameOrId::Name("nobody".into()),
                group: None
            })
        );
        assert_eq!(
            UserSpec::parse("65534:65534"),
            Ok(UserSpec {
                user: NameOrId::Id(65534),
                group: Some(NameOrId::Id(65534))
            })
        );
        assert_eq!(
            UserSpec::parse("www-data:nogroup").map(|user| user.to_string()),
            Ok("www-data:nogroup".to_owned())
        );
        for bad in [
            "",
            ":",
            "nobody:",
            ":0",
            "a b",
            "-x",
            "x:y:z",
            "99999999999",
            "ro\0ot",
        ] {
            assert!(UserSpec::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits_name_their_field() {
        let mut spec = DeploymentSpec::process(vec!["true".into()]);
        spec.user = Some("a b".into());
        spec.max_open_files = Some(0);
        spec.resources.memory_bytes = Some(1024);
        spec.resources.millicpus = Some(0);
        let mut violations = Vec::new();
        check_process_limits(&spec, &mut violations);
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.user",
                "spec.max_open_files",
                "spec.resources.memory_bytes",
                "spec.resources.millicpus"
            ]
        );
    }
}
