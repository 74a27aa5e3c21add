//! The files of a PKI directory as `certs dev` writes it, `certs issue` adds to it
//! and `serve --tls-dir` reads it: the CA certificates, the facility and operator
//! CAs' keys, the gateway's certificate, and a `facility-<code>` or
//! `operator-<role>` pair (`.pem`, `.key`) per client. Private keys are written
//! readable by their owner only.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::peer::OperatorRole;

/// The CA the gateway's certificate chains to; clients trust it. Its key is not kept.
pub const SERVER_CA: &str = "server-ca.pem";
pub const SERVER_CERT: &str = "server.pem";
pub const SERVER_KEY: &str = "server.key";

/// A CA that issues client certificates, whose key is kept so that `certs issue`
/// can add to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ca {
    Facility,
    Operator,
}

impl Ca {
    pub fn as_str(self) -> &'static str {
        match self {
            Ca::Facility => "facility",
            Ca::Operator => "operator",
        }
    }

    pub fn cert_file(self) -> &'static str {
        match self {
            Ca::Facility => "facility-ca.pem",
            Ca::Operator => "operator-ca.pem",
        }
    }

    pub fn key_file(self) -> &'static str {
        match self {
            Ca::Facility => "facility-ca.key",
            Ca::Operator => "operator-ca.key",
        }
    }
}

/// `facility-<code>`: the name of a facility's `.pem` and `.key`.
pub fn facility_stem(code: &str) -> String {
    format!("facility-{code}")
}

/// `operator-<role>`: the name of an operator's `.pem` and `.key`.
pub fn operator_stem(role: OperatorRole) -> String {
    format!("operator-{}", role.as_str())
}

/// Whether a file of this name belongs to a PKI directory: replacing the PKI
/// replaces it too, so that no certificate outlives the CA that issued it.
fn is_pki_file(name: &str) -> bool {
    let Some(stem) = name
        .strip_suffix(".pem")
        .or_else(|| name.strip_suffix(".key"))
    else {
        return false;
    };
    matches!(stem, "server" | "server-ca" | "site-ca")
        || stem.starts_with("facility-")
        || stem.starts_with("operator-")
}

/// The PKI files in `dir`, sorted; none if `dir` does not exist.
pub fn existing(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        if entry.file_name().to_str().is_some_and(is_pki_file) {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

pub fn remove(files: &[PathBuf]) -> anyhow::Result<()> {
    for file in files {
        std::fs::remove_file(file).with_context(|| format!("removing {}", file.display()))?;
    }
    Ok(())
}

/// Writes `contents` to `path`, replacing it; a `.key` file is made readable by
/// its owner only before the key is written into it.
pub fn write(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    if path.extension().is_some_and(|e| e == "key") {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", path.display()))?;
    }
    file.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_of_a_pki_are_told_from_others() {
        for name in [
            "server.pem",
            "server.key",
            "server-ca.pem",
            "facility-ca.key",
            "facility-0410110019.pem",
            "operator-auditor.key",
        ] {
            assert!(is_pki_file(name), "{name}");
        }
        for name in [
            "README.md",
            "server.csr",
            "gateway.pem",
            "facility",
            "ca.key",
        ] {
            assert!(!is_pki_file(name), "{name}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn keys_are_readable_by_their_owner_only_even_when_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let key = dir.path().join("server.key");
        std::fs::write(&key, "old").expect("written");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write(&key, "new").expect("written");
        let mode = std::fs::metadata(&key).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&key).expect("read"), "new");
    }
}
