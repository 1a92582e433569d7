//! Limits on request fields that are checked when a deployment is created, so
//! that what the kernel or the database would refuse later (E2BIG at `execve`, a
//! NUL byte in a PostgreSQL text column, a number the store cannot hold) is
//! refused up front, naming the field and the limit.

use super::{DeploymentSpec, FieldViolation};

/// The longest single argument or `NAME=value` environment entry, in bytes,
/// including its terminating NUL: Linux's `MAX_ARG_STRLEN` (32 pages of 4 KiB).
/// A longer one makes `execve` fail with E2BIG.
pub const MAX_ARG_BYTES: usize = 128 * 1024;

/// The most one program start (its argv and the spec's environment, secrets
/// included) may take, counted as the kernel counts against `ARG_MAX`: each
/// string's bytes, plus one for its NUL and eight for its pointer. Half of the
/// usual 2 MiB `ARG_MAX`, so the environment Slipway passes on (its own, `PORT`,
/// the workload id) still fits.
pub const MAX_ARGV_ENV_BYTES: usize = 1024 * 1024;

/// The longest project name.
pub const MAX_PROJECT_LENGTH: usize = 63;

/// The largest log sequence number or event revision a request may name: the
/// store keeps them as signed 64-bit integers.
pub const MAX_POSITION: u64 = i64::MAX as u64;

/// What one string costs against [`MAX_ARGV_ENV_BYTES`].
fn exec_cost(bytes: usize) -> usize {
    bytes + 1 + std::mem::size_of::<u64>()
}

/// Checks a project name: empty (no project), or 1–63 lowercase letters, digits,
/// `-`, `_` or `.`, starting with a letter or a digit.
pub fn validate_project(project: &str) -> Option<FieldViolation> {
    if project.is_empty() {
        return None;
    }
    let mut bytes = project.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit());
    let rest_ok = bytes
        .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"-_.".contains(&byte));
    if first_ok && rest_ok && project.len() <= MAX_PROJECT_LENGTH {
        None
    } else {
        Some(FieldViolation::new(
            "project",
            format!(
                "must be empty or 1-{MAX_PROJECT_LENGTH} lowercase letters, digits, '-', '_' or '.', starting with a letter or digit"
            ),
        ))
    }
}

/// Checks a log sequence number or event revision from a request.
pub fn validate_position(field: &str, value: u64) -> Option<FieldViolation> {
    (value > MAX_POSITION)
        .then(|| FieldViolation::new(field, format!("must be at most {MAX_POSITION}")))
}

/// The sizes of what a spec passes to `execve`: each argument and environment
/// entry under [`MAX_ARG_BYTES`], and each program start (command, build step,
/// exec check, each with the spec's environment) within [`MAX_ARGV_ENV_BYTES`].
pub fn check_exec_sizes(spec: &DeploymentSpec, violations: &mut Vec<FieldViolation>) {
    let mut env_cost = 0;
    let env = spec
        .env
        .iter()
        .map(|(name, value)| ("spec.env", name, value.len()))
        .chain(
            spec.secret_env
                .iter()
                .map(|(name, secret)| ("spec.secret_env", name, secret.expose().len())),
        );
    for (field, name, value_length) in env {
        let entry = name.len() + 1 + value_length;
        env_cost += exec_cost(entry);
        if entry + 1 > MAX_ARG_BYTES {
            violations.push(FieldViolation::new(
                format!("{field}[{name}]"),
                format!(
                    "NAME=value is {entry} bytes; each environment entry must be under {MAX_ARG_BYTES} bytes (128 KiB, Linux's MAX_ARG_STRLEN)"
                ),
            ));
        }
    }
    let mut argvs: Vec<(String, &[String])> = vec![("spec.command".to_owned(), &spec.command)];
    for (index, step) in spec.build.iter().enumerate() {
        argvs.push((format!("spec.build[{index}].command"), &step.command));
    }
    if let Some(super::HealthCheck {
        probe: super::Probe::Exec { command },
        ..
    }) = &spec.liveness
    {
        argvs.push(("spec.liveness.exec.command".to_owned(), command));
    }
    for (field, argv) in argvs {
        let mut total = env_cost;
        for (index, argument) in argv.iter().enumerate() {
            total += exec_cost(argument.len());
            if argument.len() + 1 > MAX_ARG_BYTES {
                violations.push(FieldViolation::new(
                    format!("{field}[{index}]"),
                    format!(
                        "is {} bytes; each argument must be under {MAX_ARG_BYTES} bytes (128 KiB, Linux's MAX_ARG_STRLEN)",
                        argument.len()
                    ),
                ));
            }
        }
        if total > MAX_ARGV_ENV_BYTES {
            violations.push(FieldViolation::new(
                field,
                format!(
                    "the arguments and the environment take {total} bytes; together they must take at most {MAX_ARGV_ENV_BYTES} (1 MiB, half of Linux's usual ARG_MAX)"
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Secret;

    fn fields(spec: &DeploymentSpec) -> Vec<String> {
        let mut violations = Vec::new();
        check_exec_sizes(spec, &mut violations);
        violations
            .into_iter()
            .map(|violation| violation.field)
            .collect()
    }

    #[test]
    fn projects_are_short_lowercase_names() {
        for good in ["", "shop", "shop-2.eu_west", &"a".repeat(63)] {
            assert!(validate_project(good).is_none(), "{good:?}");
        }
        for bad in [
            "Shop",
            "-shop",
            "a\0b",
            "a\nb",
            "a b",
            &"a".repeat(64),
            &"a".repeat(100_000),
        ] {
            assert!(validate_project(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn positions_fit_the_store() {
        assert!(validate_position("after_seq", MAX_POSITION).is_none());
        assert!(validate_position("after_seq", MAX_POSITION + 1).is_some());
        assert!(validate_position("after_seq", u64::MAX).is_some());
    }

    #[test]
    fn arguments_and_environment_fit_execve() {
        let just_fits = "x".repeat(MAX_ARG_BYTES - 1);
        let mut spec = DeploymentSpec::process(vec!["echo".into(), just_fits.clone()]);
        assert!(fields(&spec).is_empty());

        spec.command.push(format!("{just_fits}x"));
        assert_eq!(fields(&spec), ["spec.command[2]"]);

        let mut spec = DeploymentSpec::process(vec!["echo".into()]);
        spec.env.insert("BIG".into(), "x".repeat(200 * 1024));
        spec.secret_env
            .insert("TOKEN".into(), Secret::new("y".repeat(MAX_ARG_BYTES)));
        assert_eq!(fields(&spec), ["spec.env[BIG]", "spec.secret_env[TOKEN]"]);

        let many = vec!["x".repeat(100 * 1024); 12];
        let mut spec = DeploymentSpec::process(many);
        spec.build.push(crate::domain::BuildStep {
            command: vec!["make".into()],
        });
        assert_eq!(fields(&spec), ["spec.command"]);
    }
}
