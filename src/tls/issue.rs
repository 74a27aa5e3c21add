//! `certs issue`: one more facility or operator certificate, signed by the CA a
//! development PKI directory keeps, valid for a bounded number of days from now.

use std::path::{Path, PathBuf};

use time::{Duration, OffsetDateTime};

use super::dev_ca::{CaFileError, DevCa, Issued, Validity};
use super::peer::OperatorRole;
use super::pki_dir::{self, Ca};
use crate::domain::facility::FacilityCode;

pub const DEFAULT_DAYS: u16 = 365;
/// About 27 months, as the public Web PKI once allowed: long enough for a
/// development cycle, short enough that a forgotten certificate expires.
pub const MAX_DAYS: u16 = 825;

/// Clocks of terminals and gateway may disagree a little: a new certificate is
/// valid from slightly before now.
const SKEW: Duration = Duration::minutes(5);

/// Whom a certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Facility(FacilityCode),
    Operator { role: OperatorRole, id: String },
}

impl Subject {
    /// An operator given as `ROLE:ID`, e.g. `auditor:alice`.
    pub fn operator(spec: &str) -> Result<Subject, String> {
        let Some((role, id)) = spec.split_once(':') else {
            return Err(format!(
                "{spec:?} is not ROLE:ID (e.g. auditor:alice or activation-manager:op-1)"
            ));
        };
        let Some(role) = OperatorRole::parse(role) else {
            return Err(format!(
                "{role:?} is not an operator role: activation-manager, auditor, prefecture, reviewer or witness"
            ));
        };
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"._-".contains(&b);
        if id.is_empty() || id.len() > 64 || !id.bytes().all(allowed) {
            return Err(format!(
                "{id:?} is not an operator id: 1 to 64 letters, digits, '.', '_' or '-'"
            ));
        }
        Ok(Subject::Operator {
            role,
            id: id.to_string(),
        })
    }

    fn ca(&self) -> Ca {
        match self {
            Subject::Facility(_) => Ca::Facility,
            Subject::Operator { .. } => Ca::Operator,
        }
    }

    /// The name of its `.pem` and `.key`, as `certs dev` names them.
    fn stem(&self) -> String {
        match self {
            Subject::Facility(code) => pki_dir::facility_stem(code.as_str()),
            Subject::Operator { role, .. } => pki_dir::operator_stem(*role),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("{}: cannot read it: {problem}", path.display())]
    Unreadable { path: PathBuf, problem: String },
    #[error("{}: {source}", path.display())]
    CaFiles { path: PathBuf, source: CaFileError },
    #[error("{} already exists; --force replaces it", path.display())]
    Exists { path: PathBuf },
    #[error("the {ca} CA is valid until {until}: a certificate for {days} days would outlive it")]
    OutlivesCa {
        ca: &'static str,
        until: String,
        days: u16,
    },
    #[error("making the certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error(transparent)]
    Write(anyhow::Error),
}

impl IssueError {
    /// Whether the fault is in what was asked (the directory, the period), not in
    /// the machine.
    pub fn is_input(&self) -> bool {
        !matches!(self, IssueError::Certificate(_) | IssueError::Write(_))
    }
}

/// What `issue` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub not_after: OffsetDateTime,
}

fn read(path: &Path, hint: &str) -> Result<String, IssueError> {
    std::fs::read_to_string(path).map_err(|e| IssueError::Unreadable {
        path: path.to_path_buf(),
        problem: format!("{e}{hint}"),
    })
}

/// The CA of `ca` in `dir`, with its key.
pub fn load_ca(dir: &Path, ca: Ca) -> Result<DevCa, IssueError> {
    let cert_path = dir.join(ca.cert_file());
    let cert = read(&cert_path, "; is it a directory `certs dev` wrote?")?;
    let key = read(
        &dir.join(ca.key_file()),
        "; without the CA's key no certificate can be issued \
         (`certs dev --force` makes a new PKI that keeps it)",
    )?;
    DevCa::load(&cert, &key).map_err(|source| IssueError::CaFiles {
        path: cert_path,
        source,
    })
}

/// Issues a certificate for `subject`, valid from now for `days`, signed by the CA
/// in `dir`, and writes it there beside its key. Refuses to replace an existing
/// one unless `force`.
pub fn issue(
    dir: &Path,
    subject: &Subject,
    days: u16,
    force: bool,
    now: OffsetDateTime,
) -> Result<Written, IssueError> {
    let ca = load_ca(dir, subject.ca())?;
    let validity = Validity {
        not_before: now - SKEW,
        not_after: now + Duration::days(i64::from(days)),
    };
    if validity.not_after > ca.not_after {
        return Err(IssueError::OutlivesCa {
            ca: subject.ca().as_str(),
            until: ca.not_after.date().to_string(),
            days,
        });
    }
    let stem = subject.stem();
    let cert = dir.join(format!("{stem}.pem"));
    let key = dir.join(format!("{stem}.key"));
    if !force && let Some(path) = [&cert, &key].into_iter().find(|p| p.exists()) {
        return Err(IssueError::Exists { path: path.clone() });
    }
    let issued: Issued = match subject {
        Subject::Facility(code) => ca.facility_valid(code.as_str(), validity)?,
        Subject::Operator { role, id } => ca.operator_valid(*role, id, validity)?,
    };
    // The key first: a certificate is never left without the key it names.
    pki_dir::write(&key, &issued.key_pem).map_err(IssueError::Write)?;
    pki_dir::write(&cert, &issued.cert_pem).map_err(IssueError::Write)?;
    Ok(Written {
        cert,
        key,
        not_after: validity.not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::dev_ca::DevPki;

    #[test]
    fn operators_are_role_and_id() {
        assert_eq!(
            Subject::operator("auditor:alice"),
            Ok(Subject::Operator {
                role: OperatorRole::Auditor,
                id: "alice".into()
            })
        );
        for (spec, says) in [
            ("auditor", "is not ROLE:ID"),
            ("admin:alice", "\"admin\" is not an operator role"),
            ("auditor:", "is not an operator id"),
            ("auditor:a b", "is not an operator id"),
        ] {
            let err = Subject::operator(spec).expect_err(spec);
            assert!(err.contains(says), "{spec}: {err}");
        }
    }

    #[test]
    fn a_certificate_may_not_outlive_its_ca() {
        let dir = tempfile::tempdir().expect("temp dir");
        DevPki::generate()
            .expect("pki")
            .write(dir.path(), &[])
            .expect("written");
        let subject = Subject::operator("auditor:alice").expect("operator");
        let dev = std::fs::read(dir.path().join("operator-auditor.pem")).expect("read");
        let late = rcgen::date_time_ymd(2049, 6, 1);
        let err = issue(dir.path(), &subject, 365, true, late).expect_err("outlives");
        assert!(err.to_string().contains("valid until 2049-12-31"), "{err}");
        let kept = std::fs::read(dir.path().join("operator-auditor.pem")).expect("read");
        assert_eq!(kept, dev, "nothing is written");
        let written = issue(dir.path(), &subject, 30, true, late).expect("within");
        assert_eq!(written.not_after, rcgen::date_time_ymd(2049, 7, 1));
    }
}
