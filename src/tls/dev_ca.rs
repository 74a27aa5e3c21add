//! A development PKI, so that the demo and the tests run with real mutual TLS and a
//! newcomer can try it in one command (`onshi-gateway certs dev`): a CA for the
//! gateway's own certificate, one for facilities, one for operators, and their
//! certificates. Never for production: the facility and operator CA keys are kept
//! beside the certificates (so that `certs issue` can add more), and every private
//! key is written unencrypted.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::peer::{FACILITY_URI_PREFIX, OPERATOR_URI_PREFIX, OperatorRole};
use super::pki_dir::{self, Ca};
use super::site_ca::{SITE_CA_CERT, SITE_CA_KEY};

/// A certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// What `certs dev` gives everything: from 2020 until the end of 2049, so that
    /// the tests' fixed clocks and a newcomer's machine both fall inside.
    pub fn development() -> Validity {
        Validity {
            not_before: rcgen::date_time_ymd(2020, 1, 1),
            not_after: rcgen::date_time_ymd(2049, 12, 31),
        }
    }
}

/// Why a CA cannot be read back from its files.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    #[error("the certificate: {0}")]
    Certificate(String),
    #[error("the private key: {0}")]
    Key(String),
    #[error(
        "the private key is not the certificate's: it signs nothing the certificate vouches for"
    )]
    KeyMismatch,
}

pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    pub cert_pem: String,
    /// Nothing this CA issues may outlive it.
    pub not_after: OffsetDateTime,
}

impl DevCa {
    pub fn new(name: &str) -> Result<DevCa, rcgen::Error> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "onshi-gateway development");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let validity = Validity::development();
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        let key = KeyPair::generate()?;
        let cert_pem = params.self_signed(&key)?.pem();
        Ok(DevCa {
            issuer: Issuer::new(params, key),
            cert_pem,
            not_after: validity.not_after,
        })
    }

    /// A CA from its certificate and private key (PEM), as `certs dev` wrote them.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<DevCa, CaFileError> {
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| CaFileError::Certificate(format!("not a PEM certificate: {e}")))?;
        let (_, cert) = X509Certificate::from_der(&der)
            .map_err(|e| CaFileError::Certificate(format!("cannot be read: {e}")))?;
        let key = KeyPair::from_pem(key_pem)
            .map_err(|e| CaFileError::Key(format!("not a PEM private key: {e}")))?;
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(CaFileError::KeyMismatch);
        }
        let not_after = OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp())
            .map_err(|e| CaFileError::Certificate(format!("its end of validity: {e}")))?;
        let issuer = Issuer::from_ca_cert_der(&der, key)
            .map_err(|e| CaFileError::Certificate(format!("not a CA certificate: {e}")))?;
        Ok(DevCa {
            issuer,
            cert_pem: cert_pem.to_string(),
            not_after,
        })
    }

    /// What signs: the site CA issues from CSRs with it.
    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    /// The CA's private key, PEM.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    fn issue(
        &self,
        common_name: &str,
        sans: Vec<SanType>,
        usage: ExtendedKeyUsagePurpose,
        validity: Validity,
    ) -> Result<Issued, rcgen::Error> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.subject_alt_names = sans;
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The gateway's own certificate, for these DNS names and IP addresses.
    pub fn server(&self, names: &[&str]) -> Result<Issued, rcgen::Error> {
        let sans = names
            .iter()
            .map(|n| match n.parse() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => n.to_string().try_into().map(SanType::DnsName),
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.issue(
            "onshi-gateway",
            sans,
            ExtendedKeyUsagePurpose::ServerAuth,
            Validity::development(),
        )
    }

    /// A facility's terminal certificate (the code is written as given: tests also
    /// issue malformed ones).
    pub fn facility(&self, code: &str) -> Result<Issued, rcgen::Error> {
        self.facility_valid(code, Validity::development())
    }

    pub fn facility_until(
        &self,
        code: &str,
        not_after: OffsetDateTime,
    ) -> Result<Issued, rcgen::Error> {
        let validity = Validity {
            not_after,
            ..Validity::development()
        };
        self.facility_valid(code, validity)
    }

    pub fn facility_valid(&self, code: &str, validity: Validity) -> Result<Issued, rcgen::Error> {
        self.issue(
            &format!("facility {code}"),
            vec![SanType::URI(
                format!("{FACILITY_URI_PREFIX}{code}").try_into()?,
            )],
            ExtendedKeyUsagePurpose::ClientAuth,
            validity,
        )
    }

    /// A certificate with the given SAN URIs only, for testing what is refused.
    pub fn client_with_uris(&self, uris: &[&str]) -> Result<Issued, rcgen::Error> {
        let sans = uris
            .iter()
            .map(|u| u.to_string().try_into().map(SanType::URI))
            .collect::<Result<Vec<_>, _>>()?;
        self.issue(
            "client",
            sans,
            ExtendedKeyUsagePurpose::ClientAuth,
            Validity::development(),
        )
    }

    pub fn operator(&self, role: OperatorRole, id: &str) -> Result<Issued, rcgen::Error> {
        self.operator_valid(role, id, Validity::development())
    }

    pub fn operator_valid(
        &self,
        role: OperatorRole,
        id: &str,
        validity: Validity,
    ) -> Result<Issued, rcgen::Error> {
        self.issue(
            &format!("operator {id}"),
            vec![SanType::URI(
                format!("{OPERATOR_URI_PREFIX}{}:{id}", role.as_str()).try_into()?,
            )],
            ExtendedKeyUsagePurpose::ClientAuth,
            validity,
        )
    }
}

/// The three development CAs and the gateway's certificate.
pub struct DevPki {
    pub server_ca: DevCa,
    pub facility_ca: DevCa,
    pub operator_ca: DevCa,
    /// Issues the temporary sites' certificates from their CSRs; the gateway keeps
    /// its key to do so.
    pub site_ca: DevCa,
    pub server: Issued,
}

#[derive(Debug, thiserror::Error)]
pub enum BadName {
    #[error("{0:?} is not a host name or an IP address")]
    NotAHost(String),
    #[error(transparent)]
    Certificate(#[from] rcgen::Error),
}

impl DevPki {
    pub fn generate() -> Result<DevPki, rcgen::Error> {
        DevPki::with_server_names(&[])
    }

    /// As [`DevPki::generate`], with the gateway's certificate also valid for `names`
    /// (host names or IP addresses), e.g. the DNS name of a cluster's Service.
    pub fn generate_for(names: &[String]) -> Result<DevPki, BadName> {
        if let Some(bad) = names
            .iter()
            .find(|n| rustls_pki_types::ServerName::try_from(n.as_str()).is_err())
        {
            return Err(BadName::NotAHost(bad.clone()));
        }
        Ok(DevPki::with_server_names(names)?)
    }

    fn with_server_names(names: &[String]) -> Result<DevPki, rcgen::Error> {
        let server_ca = DevCa::new("onshi-gateway development server CA")?;
        let mut all = vec!["localhost", "127.0.0.1"];
        all.extend(names.iter().map(String::as_str));
        let server = server_ca.server(&all)?;
        Ok(DevPki {
            server_ca,
            facility_ca: DevCa::new("onshi-gateway development facility CA")?,
            operator_ca: DevCa::new("onshi-gateway development operator CA")?,
            site_ca: DevCa::new("onshi-gateway development site CA")?,
            server,
        })
    }

    /// Replaces whatever PKI `dir` holds with this one: the CAs (with the facility
    /// and operator CAs' keys), the gateway's certificate, and a certificate for each
    /// of `facilities` and each operator role; returns the files written. Every
    /// certificate is made before anything is removed, and the CAs are written
    /// first, so no certificate is ever left beside a CA that did not issue it.
    pub fn write(&self, dir: &Path, facilities: &[String]) -> anyhow::Result<Vec<PathBuf>> {
        let mut files: Vec<(String, String)> = vec![
            (pki_dir::SERVER_CA.into(), self.server_ca.cert_pem.clone()),
            (
                Ca::Facility.cert_file().into(),
                self.facility_ca.cert_pem.clone(),
            ),
            (Ca::Facility.key_file().into(), self.facility_ca.key_pem()),
            (
                Ca::Operator.cert_file().into(),
                self.operator_ca.cert_pem.clone(),
            ),
            (Ca::Operator.key_file().into(), self.operator_ca.key_pem()),
            (SITE_CA_CERT.into(), self.site_ca.cert_pem.clone()),
            (SITE_CA_KEY.into(), self.site_ca.key_pem()),
            (pki_dir::SERVER_CERT.into(), self.server.cert_pem.clone()),
            (pki_dir::SERVER_KEY.into(), self.server.key_pem.clone()),
        ];
        let mut add = |stem: String, issued: Issued| {
            files.push((format!("{stem}.pem"), issued.cert_pem));
            files.push((format!("{stem}.key"), issued.key_pem));
        };
        for code in facilities {
            add(
                pki_dir::facility_stem(code),
                self.facility_ca.facility(code)?,
            );
        }
        for role in [
            OperatorRole::ActivationManager,
            OperatorRole::Auditor,
            OperatorRole::PrefectureHealth,
            OperatorRole::Reviewer,
            OperatorRole::Witness,
        ] {
            let id = format!("dev-{}", role.as_str());
            add(
                pki_dir::operator_stem(role),
                self.operator_ca.operator(role, &id)?,
            );
        }
        std::fs::create_dir_all(dir)?;
        pki_dir::remove(&pki_dir::existing(dir)?)?;
        let mut written = Vec::new();
        for (name, contents) in files {
            let path = dir.join(name);
            pki_dir::write(&path, &contents)?;
            written.push(path);
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

    use super::DevPki;

    fn server_names(pki: &DevPki) -> Vec<String> {
        let der = CertificateDer::from_pem_slice(pki.server.cert_pem.as_bytes()).expect("PEM");
        let (_, cert) = X509Certificate::from_der(&der).expect("a certificate");
        let san = cert
            .subject_alternative_name()
            .expect("parses")
            .expect("has SANs");
        san.value
            .general_names
            .iter()
            .map(|n| match n {
                GeneralName::DNSName(d) => d.to_string(),
                GeneralName::IPAddress(ip) => format!("{ip:?}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn the_server_certificate_names_the_extra_hosts() {
        let pki = DevPki::generate_for(&["gateway.onshi.svc".into()]).expect("pki");
        let names = server_names(&pki);
        assert!(names.contains(&"localhost".to_string()), "{names:?}");
        assert!(
            names.contains(&"gateway.onshi.svc".to_string()),
            "{names:?}"
        );
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn a_name_that_is_no_host_name_is_refused() {
        assert!(DevPki::generate_for(&["not a host".into()]).is_err());
    }
}
