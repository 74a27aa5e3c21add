//! A development PKI, so that the demo and the tests run with real mutual TLS and a
//! newcomer can try it in one command (`onshi-gateway certs dev`): a CA for the
//! gateway's own certificate, one for facilities, one for operators, and their
//! certificates. Never for production: the CA keys are discarded once the files are
//! written, and the private keys are written unencrypted.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use super::peer::{FACILITY_URI_PREFIX, OPERATOR_URI_PREFIX, OperatorRole};

/// A certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

pub struct DevCa {
    params: CertificateParams,
    key: KeyPair,
    pub cert_pem: String,
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
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2049, 12, 31);
        let key = KeyPair::generate()?;
        let cert_pem = params.self_signed(&key)?.pem();
        Ok(DevCa {
            params,
            key,
            cert_pem,
        })
    }

    fn issue(
        &self,
        common_name: &str,
        sans: Vec<SanType>,
        usage: ExtendedKeyUsagePurpose,
        not_after: time::OffsetDateTime,
    ) -> Result<Issued, rcgen::Error> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.subject_alt_names = sans;
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = not_after;
        let key = KeyPair::generate()?;
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
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
            rcgen::date_time_ymd(2049, 12, 31),
        )
    }

    /// A facility's terminal certificate (the code is written as given: tests also
    /// issue malformed ones).
    pub fn facility(&self, code: &str) -> Result<Issued, rcgen::Error> {
        self.facility_until(code, rcgen::date_time_ymd(2049, 12, 31))
    }

    pub fn facility_until(
        &self,
        code: &str,
        not_after: time::OffsetDateTime,
    ) -> Result<Issued, rcgen::Error> {
        self.issue(
            &format!("facility {code}"),
            vec![SanType::URI(
                format!("{FACILITY_URI_PREFIX}{code}").try_into()?,
            )],
            ExtendedKeyUsagePurpose::ClientAuth,
            not_after,
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
            rcgen::date_time_ymd(2049, 12, 31),
        )
    }

    pub fn operator(&self, role: OperatorRole, id: &str) -> Result<Issued, rcgen::Error> {
        self.issue(
            &format!("operator {id}"),
            vec![SanType::URI(
                format!("{OPERATOR_URI_PREFIX}{}:{id}", role.as_str()).try_into()?,
            )],
            ExtendedKeyUsagePurpose::ClientAuth,
            rcgen::date_time_ymd(2049, 12, 31),
        )
    }
}

/// The three development CAs and the gateway's certificate.
pub struct DevPki {
    pub server_ca: DevCa,
    pub facility_ca: DevCa,
    pub operator_ca: DevCa,
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
            server,
        })
    }

    /// Writes the CAs, the gateway's certificate, and a certificate for each of
    /// `facilities` and each operator role into `dir`; returns the files written.
    pub fn write(&self, dir: &Path, facilities: &[String]) -> anyhow::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let mut written = Vec::new();
        let mut put = |name: String, contents: &str| -> anyhow::Result<()> {
            let path = dir.join(name);
            std::fs::write(&path, contents)?;
            written.push(path);
            Ok(())
        };
        put("server-ca.pem".into(), &self.server_ca.cert_pem)?;
        put("facility-ca.pem".into(), &self.facility_ca.cert_pem)?;
        put("operator-ca.pem".into(), &self.operator_ca.cert_pem)?;
        put("server.pem".into(), &self.server.cert_pem)?;
        put("server.key".into(), &self.server.key_pem)?;
        for code in facilities {
            let issued = self.facility_ca.facility(code)?;
            put(format!("facility-{code}.pem"), &issued.cert_pem)?;
            put(format!("facility-{code}.key"), &issued.key_pem)?;
        }
        for role in [OperatorRole::ActivationManager, OperatorRole::Auditor] {
            let issued = self
                .operator_ca
                .operator(role, &format!("dev-{}", role.as_str()))?;
            put(format!("operator-{}.pem", role.as_str()), &issued.cert_pem)?;
            put(format!("operator-{}.key", role.as_str()), &issued.key_pem)?;
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
