//! The data directory and the SQLite files in it hold deployments' secrets, so
//! only the user running Slipway may read them: the directory is 0700, the
//! database and its `-wal` and `-shm` files are 0600.
//!
//! The process umask is left alone (workloads inherit it); files are created
//! with the right mode, or tightened when they already exist.

use std::{
    fs::{DirBuilder, OpenOptions, Permissions},
    io,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    str::FromStr,
};

use sea_orm::sqlx::sqlite::SqliteConnectOptions;

/// The mode of the data directory.
pub const DATA_DIR_MODE: u32 = 0o700;

/// The mode of the database and its `-wal` and `-shm` files.
pub const DATA_FILE_MODE: u32 = 0o600;

/// Writes `contents` to `path`, a file only the user running Slipway may read
/// (0600; an existing file is replaced and tightened).
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(DATA_FILE_MODE)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(DATA_FILE_MODE))?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Creates `dir` with mode 0700 (missing parents as `mkdir -p` would). An
/// existing directory that others may read or enter is tightened to 0700, with a
/// warning in the log.
pub fn prepare_data_dir(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    match DirBuilder::new().mode(DATA_DIR_MODE).create(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(error) => return Err(error),
    }
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            data_dir = %dir.display(),
            mode = format!("{mode:04o}"),
            "the data directory was open to other users; tightening it to 0700"
        );
        std::fs::set_permissions(dir, Permissions::from_mode(DATA_DIR_MODE))?;
    }
    Ok(())
}

/// The database file of a SQLite URL; `None` for PostgreSQL and in-memory
/// databases.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url).ok()?;
    Some(options.get_filename().to_path_buf())
}

/// Makes the SQLite database of `url` and its `-wal` and `-shm` files 0600:
/// creates the database file with that mode when the URL lets SQLite create it
/// (`mode=rwc`, so SQLite gives the files it adds the same mode), and tightens
/// the files that exist. Nothing for other databases.
pub fn restrict_sqlite_files(url: &str) -> io::Result<()> {
    let Some(database) = sqlite_file(url) else {
        return Ok(());
    };
    if url.contains("mode=rwc") && !database.exists() {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(DATA_FILE_MODE)
            .open(&database)?;
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = database.clone().into_os_string();
        name.push(suffix);
        let file = PathBuf::from(name);
        match std::fs::metadata(&file) {
            Ok(metadata) if metadata.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&file, Permissions::from_mode(DATA_FILE_MODE))?;
            }
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .map(|metadata| metadata.permissions().mode() & 0o777)
            .unwrap_or_default()
    }

    #[test]
    fn the_data_directory_is_made_private() {
        let base = tempfile::tempdir().expect("tempdir");
        let data = base.path().join("parent/data");
        prepare_data_dir(&data).expect("created");
        assert_eq!(mode(&data), DATA_DIR_MODE);

        std::fs::set_permissions(&data, Permissions::from_mode(0o755)).expect("chmod");
        prepare_data_dir(&data).expect("tightened");
        assert_eq!(mode(&data), DATA_DIR_MODE);
    }

    #[test]
    fn only_sqlite_files_have_a_path() {
        assert_eq!(
            sqlite_file("sqlite:///var/lib/slipway/slipway.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/slipway/slipway.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://slipway@localhost/slipway"), None);
    }
}
