//! The build context: a tar of the service directory without what
//! `.dockerignore` excludes, made off the async threads.

use std::path::{Path, PathBuf};

use glob::{MatchOptions, Pattern};

/// `.dockerignore` rules: patterns relative to the context root, in order; a
/// later `!pattern` brings back what an earlier one excluded.
#[derive(Debug, Default)]
pub struct DockerIgnore {
    rules: Vec<(Pattern, bool)>,
}

const MATCH: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl DockerIgnore {
    /// Parses the text of a `.dockerignore`; lines that are not valid patterns are skipped.
    pub fn parse(text: &str) -> Self {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (pattern, include) = match line.strip_prefix('!') {
                Some(rest) => (rest.trim(), true),
                None => (line, false),
            };
            let cleaned = pattern.trim_start_matches('/').trim_end_matches('/');
            let cleaned = cleaned.strip_prefix("./").unwrap_or(cleaned);
            if let Ok(compiled) = Pattern::new(cleaned) {
                rules.push((compiled, include));
            }
        }
        Self { rules }
    }

    /// Whether `relative` (a path inside the context, `/`-separated) is left out.
    /// A path is also left out when one of its parent directories is.
    pub fn excludes(&self, relative: &str) -> bool {
        let mut excluded = false;
        for (pattern, include) in &self.rules {
            let matched = pattern.matches_with(relative, MATCH)
                || ancestors(relative).any(|parent| pattern.matches_with(parent, MATCH));
            if matched {
                excluded = !include;
            }
        }
        excluded
    }
}

/// `a/b/c` → `a`, `a/b`.
fn ancestors(relative: &str) -> impl Iterator<Item = &str> {
    relative
        .match_indices('/')
        .map(move |(index, _)| &relative[..index])
}

/// The tar of `directory` for a build, `.dockerignore` applied. The Dockerfile and
/// `.dockerignore` are always sent, as Docker does.
pub fn build_context(directory: &Path, dockerfile: &str) -> std::io::Result<Vec<u8>> {
    let ignore = match std::fs::read_to_string(directory.join(".dockerignore")) {
        Ok(text) => DockerIgnore::parse(&text),
        Err(_) => DockerIgnore::default(),
    };
    let mut files: Vec<PathBuf> = Vec::new();
    collect(directory, directory, &ignore, dockerfile, &mut files)?;
    files.sort();
    let mut archive = tar::Builder::new(Vec::new());
    archive.follow_symlinks(false);
    for relative in files {
        archive.append_path_with_name(directory.join(&relative), &relative)?;
    }
    archive.into_inner()
}

fn collect(
    root: &Path,
    directory: &Path,
    ignore: &DockerIgnore,
    dockerfile: &str,
    files: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(directory)? {
        let entry = entry?;
        let path = entry.path();
        let Ok(relative) = path.strip_prefix(root) else {
            continue;
        };
        let relative_text = relative.to_string_lossy().replace('\\', "/");
        let always = relative_text == dockerfile || relative_text == ".dockerignore";
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            // A directory is walked even when excluded, so that `!` rules inside it work.
            collect(root, &path, ignore, dockerfile, files)?;
        } else if always || !ignore.excludes(&relative_text) {
            files.push(relative.to_path_buf());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_follows_dockers_rules() {
        let ignore =
            DockerIgnore::parse("# comment\n*.log\ntarget\n!target/keep.txt\n/secret/\n**/*.tmp\n");
        assert!(ignore.excludes("debug.log"));
        assert!(
            !ignore.excludes("logs/debug.log"),
            "patterns are anchored at the root"
        );
        assert!(ignore.excludes("target/debug/app"));
        assert!(!ignore.excludes("target/keep.txt"));
        assert!(ignore.excludes("secret/key"));
        assert!(ignore.excludes("a/b/c.tmp"));
        assert!(!ignore.excludes("src/main.rs"));
    }

    #[test]
    fn the_context_leaves_out_ignored_files_but_keeps_the_dockerfile() {
        let directory = tempfile::tempdir().expect("tempdir");
        let root = directory.path();
        std::fs::write(root.join("Dockerfile"), "FROM scratch\n").expect("write");
        std::fs::write(root.join(".dockerignore"), "Dockerfile\n*.secret\n").expect("write");
        std::fs::write(root.join("app.sh"), "echo hi\n").expect("write");
        std::fs::write(root.join("token.secret"), "hunter2\n").expect("write");
        std::fs::create_dir(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("sub/data.txt"), "data\n").expect("write");
        let tar_bytes = build_context(root, "Dockerfile").expect("context");
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let mut names: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|entry| {
                entry
                    .expect("entry")
                    .path()
                    .expect("path")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        assert_eq!(
            names,
            [".dockerignore", "Dockerfile", "app.sh", "sub/data.txt"]
        );
    }
}
