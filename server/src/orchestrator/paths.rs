//! Checks on request fields that need the file system: service paths stay under
//! the server's root.

use std::{
    collections::BTreeMap,
    path::{Component, Path},
};

use crate::domain::FieldViolation;

/// Resolves `service_path` (relative to `root`, or absolute inside it) to the
/// directory it names, relative to `root` ("." for the root itself). A path that
/// escapes the root, also through a symbolic link, or that is not a directory, is
/// refused.
pub fn resolve_service_path(root: &Path, service_path: &str) -> Result<String, FieldViolation> {
    let requested = if service_path.trim().is_empty() {
        "."
    } else {
        service_path
    };
    if requested.contains('\0') {
        return Err(FieldViolation::new(
            "service_path",
            "must not contain a NUL byte",
        ));
    }
    let joined = root.join(requested);
    let canonical = match joined.canonicalize() {
        Ok(canonical) => canonical,
        Err(_) if escapes_lexically(Path::new(requested)) || !joined.starts_with(root) => {
            return Err(escapes(root));
        }
        Err(_) => {
            return Err(FieldViolation::new(
                "service_path",
                format!("directory {requested:?} does not exist under the server's root"),
            ));
        }
    };
    let Ok(relative) = canonical.strip_prefix(root) else {
        return Err(escapes(root));
    };
    if !canonical.is_dir() {
        return Err(FieldViolation::new(
            "service_path",
            format!("{requested:?} is not a directory"),
        ));
    }
    let relative = relative.to_string_lossy().into_owned();
    Ok(if relative.is_empty() {
        ".".to_owned()
    } else {
        relative
    })
}

fn escapes(root: &Path) -> FieldViolation {
    FieldViolation::new(
        "service_path",
        format!("must stay inside the server's root {}", root.display()),
    )
}

fn escapes_lexically(path: &Path) -> bool {
    let mut depth: i64 = 0;
    for component in path.components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

/// Label keys: 1–253 characters of letters, digits, `.`, `_`, `-`, `/`; values at
/// most 1024 characters.
pub fn validate_labels(labels: &BTreeMap<String, String>) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    for (key, value) in labels {
        let key_ok = !key.is_empty()
            && key.len() <= 253
            && key
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"._-/".contains(&byte));
        if !key_ok {
            violations.push(FieldViolation::new(
                format!("labels[{key}]"),
                "a label key is 1-253 letters, digits, '.', '_', '-' or '/'",
            ));
        }
        if value.len() > 1024 || value.contains('\0') {
            violations.push(FieldViolation::new(
                format!("labels[{key}]"),
                "a label value is at most 1024 characters, with no NUL byte",
            ));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_paths_stay_under_the_root() {
        let root = tempfile::tempdir().expect("tempdir");
        let root_path = root.path().canonicalize().expect("canonical");
        std::fs::create_dir_all(root_path.join("svc/api")).expect("mkdir");
        std::fs::write(root_path.join("file"), b"").expect("write");
        std::os::unix::fs::symlink("/", root_path.join("escape")).expect("symlink");
        assert_eq!(
            resolve_service_path(&root_path, "svc/api").as_deref(),
            Ok("svc/api")
        );
        assert_eq!(resolve_service_path(&root_path, "").as_deref(), Ok("."));
        assert_eq!(
            resolve_service_path(&root_path, root_path.join("svc").to_str().expect("utf-8"))
                .as_deref(),
            Ok("svc")
        );
        for bad in [
            "..",
            "../../etc",
            "/etc",
            "escape",
            "missing",
            "file",
            "svc/../../x",
        ] {
            let violation = resolve_service_path(&root_path, bad).expect_err(bad);
            assert_eq!(violation.field, "service_path");
        }
    }
}
