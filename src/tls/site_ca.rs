//! The site CA: issues short-lived client certificates to temporary sites from
//! their certificate signing requests, so that the private key never leaves the
//! laptop or tablet at the site, and publishes the revocation list of the
//! certificates of closed sites for other parties.
//!
//! A certificate names `urn:onshi:site:<id>` as its only SAN URI and is valid
//! 72 hours unless asked otherwise, at most 14 days, and never beyond the site's
//! window. The gateway does not depend on the CRL itself: every call checks the
//! registry, so a closure refuses a still-valid certificate at once.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use rcgen::{
    CertificateRevocationListParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SanType, SerialNumber,
};
use time::OffsetDateTime;

use super::dev_ca::{CaFileError, DevCa};
use crate::domain::site::{SITE_URI_PREFIX, Site, SiteChangeKind};
use crate::domain::{Reason, Violation};

pub const SITE_CA_CERT: &str = "site-ca.pem";
pub const SITE_CA_KEY: &str = "site-ca.key";

/// Without a requested lifetime.
pub const DEFAULT_HOURS: u32 = 72;
/// The longest a site certificate may be valid: 14 days.
pub const MAX_HOURS: u32 = 14 * 24;
/// Accepted clock skew at the site: certificates are valid from a little before now.
const SKEW_MINUTES: i64 = 5;

pub struct SiteCa {
    ca: DevCa,
}

/// A certificate issued to a site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteCertificate {
    pub cert_pem: String,
    /// Hex, as the revision and the CRL name it.
    pub serial: String,
    pub not_after: DateTime<Utc>,
}

impl SiteCertificate {
    /// How the site's revision records it; [`revoked_serials`] reads it back.
    pub fn detail(&self) -> String {
        format!(
            "serial={} not_after={}",
            self.serial,
            self.not_after.to_rfc3339()
        )
    }
}

fn to_time(at: DateTime<Utc>) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(at.timestamp()).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn from_time(at: OffsetDateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(at.unix_timestamp(), 0).unwrap_or_default()
}

fn csr_invalid(description: impl Into<String>) -> Violation {
    Violation::new(Reason::SiteCsrInvalid, "csr_pem", description)
}

impl SiteCa {
    /// A new site CA (development and tests).
    pub fn generate() -> Result<SiteCa, rcgen::Error> {
        DevCa::new("onshi-gateway site CA").map(|ca| SiteCa { ca })
    }

    pub fn load(cert_pem: &str, key_pem: &str) -> Result<SiteCa, CaFileError> {
        DevCa::load(cert_pem, key_pem).map(|ca| SiteCa { ca })
    }

    /// The site CA in `dir` (`site-ca.pem`, `site-ca.key`), if both files are there.
    pub fn from_dir(dir: &Path) -> anyhow::Result<Option<SiteCa>> {
        let (cert, key) = (dir.join(SITE_CA_CERT), dir.join(SITE_CA_KEY));
        if !cert.exists() || !key.exists() {
            return Ok(None);
        }
        let cert = std::fs::read_to_string(&cert)?;
        let key = std::fs::read_to_string(&key)?;
        Ok(Some(SiteCa::load(&cert, &key)?))
    }

    pub fn cert_pem(&self) -> &str {
        &self.ca.cert_pem
    }

    pub fn key_pem(&self) -> String {
        self.ca.key_pem()
    }

    /// Signs `csr_pem` for `site` at `now`, valid `hours` (0: the default), never
    /// beyond the site's window nor the CA's own validity.
    pub fn issue(
        &self,
        site: &Site,
        csr_pem: &str,
        hours: u32,
        now: DateTime<Utc>,
    ) -> Result<SiteCertificate, Violation> {
        let hours = if hours == 0 { DEFAULT_HOURS } else { hours };
        if hours > MAX_HOURS {
            return Err(Violation::new(
                Reason::SiteCertificateValidity,
                "valid_hours",
                format!(
                    "a site certificate is valid at most {MAX_HOURS} hours (14 days); {hours} asked"
                ),
            ));
        }
        let window_end = site.window().map_or(now, |w| w.end);
        let not_after = (now + Duration::hours(i64::from(hours)))
            .min(window_end)
            .min(from_time(self.ca.not_after));
        if not_after <= now {
            return Err(Violation::new(
                Reason::SiteNotOpen,
                "",
                format!("site {} is not open: no certificate can be issued", site.id),
            )
            .with("site", site.id.clone()));
        }
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem.trim())
            .map_err(|e| csr_invalid(format!("the CSR cannot be used: {e}")))?;
        let mut serial: [u8; 16] = rand::random();
        // A positive 16-byte DER integer with no leading zero: the same bytes in
        // the certificate, the revision and the CRL.
        serial[0] = (serial[0] & 0x7f) | 0x40;
        // The site's key; everything else is the gateway's to say.
        let params = &mut csr.params;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("site {}", site.id));
        params.distinguished_name = dn;
        params.subject_alt_names = vec![SanType::URI(
            format!("{SITE_URI_PREFIX}{}", site.id)
                .try_into()
                .map_err(|_| csr_invalid("the site id cannot be put in a certificate"))?,
        )];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = to_time(now - Duration::minutes(SKEW_MINUTES));
        params.not_after = to_time(not_after);
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.use_authority_key_identifier_extension = true;
        let cert = csr.signed_by(self.ca.issuer()).map_err(|e| {
            Violation::new(
                Reason::SiteCaUnavailable,
                "",
                format!("the site CA could not sign: {e}"),
            )
        })?;
        Ok(SiteCertificate {
            cert_pem: cert.pem(),
            serial: hex::encode(serial),
            not_after: from_time(to_time(not_after)),
        })
    }

    /// The revocation list at `now`: every certificate issued to a closed site that
    /// had not expired when the site closed. Valid until `now` plus a day.
    pub fn crl(
        &self,
        sites: &[&Site],
        now: DateTime<Utc>,
    ) -> Result<(String, Vec<u8>), rcgen::Error> {
        let revoked_certs = sites
            .iter()
            .flat_map(|s| revoked_serials(s))
            .map(|(serial, at)| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&serial),
                revocation_time: to_time(at),
                reason_code: Some(RevocationReason::CessationOfOperation),
                invalidity_date: None,
            })
            .collect();
        let params = CertificateRevocationListParams {
            this_update: to_time(now),
            next_update: to_time(now + Duration::days(1)),
            crl_number: SerialNumber::from_slice(&now.timestamp().max(1).to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(self.ca.issuer())?;
        Ok((crl.pem()?, crl.der().to_vec()))
    }
}

/// The certificates of a closed site still valid when it closed, with the closure's
/// instant: what the CRL lists.
pub fn revoked_serials(site: &Site) -> Vec<(Vec<u8>, DateTime<Utc>)> {
    let Some(closed) = site
        .revisions
        .iter()
        .find(|r| r.kind == SiteChangeKind::Close)
    else {
        return Vec::new();
    };
    site.revisions
        .iter()
        .filter(|r| r.kind == SiteChangeKind::Certificate)
        .filter_map(|r| {
            let mut serial = None;
            let mut not_after = None;
            for part in r.detail.split_whitespace() {
                if let Some(s) = part.strip_prefix("serial=") {
                    serial = hex::decode(s).ok();
                }
                if let Some(t) = part.strip_prefix("not_after=") {
                    not_after = DateTime::parse_from_rfc3339(t).ok();
                }
            }
            let not_after = not_after?.with_timezone(&Utc);
            (not_after > closed.recorded_at).then_some((serial?, closed.recorded_at))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::jst::Window;
    use crate::domain::municipality::parse_municipality_code;
    use crate::domain::site::{SiteKind, SiteRevision};
    use crate::tls::peer::{Peer, peer_of};
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    use x509_parser::prelude::{FromDer, X509Certificate};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-01-03T10:00:00+09:00")
            .expect("time")
            .with_timezone(&Utc)
    }

    fn site(until_days: i64) -> Site {
        Site {
            id: "0194a7c2-site".into(),
            activation_id: "a".into(),
            kind: SiteKind::FirstAidPost,
            name: "輪島中学校 救護所".into(),
            municipality: parse_municipality_code("m", "17204").expect("m"),
            coordinates: None,
            sponsor: "1710110013".into(),
            contact: "c".into(),
            requires_licence: false,
            revisions: vec![SiteRevision {
                number: 1,
                recorded_at: now(),
                author: "op".into(),
                kind: SiteChangeKind::Register,
                window: Window::new(now(), now() + Duration::days(until_days)).expect("w"),
                detail: String::new(),
            }],
        }
    }

    fn csr() -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        rcgen::CertificateParams::default()
            .serialize_request(&key)
            .expect("csr")
            .pem()
            .expect("pem")
    }

    fn validity(pem: &str) -> (i64, i64) {
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("pem");
        let (_, cert) = X509Certificate::from_der(&der).expect("cert");
        (
            cert.validity().not_before.timestamp(),
            cert.validity().not_after.timestamp(),
        )
    }

    #[test]
    fn a_csr_becomes_a_site_certificate_of_72_hours_by_default() {
        let ca = SiteCa::generate().expect("ca");
        let s = site(10);
        let issued = ca.issue(&s, &csr(), 0, now()).expect("issued");
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).expect("pem");
        assert_eq!(peer_of(&der).expect("identity"), Peer::Site(s.id.clone()));
        let (from, until) = validity(&issued.cert_pem);
        assert_eq!(until, (now() + Duration::hours(72)).timestamp());
        assert_eq!(from, (now() - Duration::minutes(5)).timestamp());
        assert_eq!(issued.not_after, now() + Duration::hours(72));
        assert_eq!(issued.serial.len(), 32);
    }

    #[test]
    fn the_lifetime_is_capped_by_14_days_and_by_the_sites_window() {
        let ca = SiteCa::generate().expect("ca");
        let v = ca
            .issue(&site(30), &csr(), MAX_HOURS + 1, now())
            .expect_err("too long");
        assert_eq!(v.reason, Reason::SiteCertificateValidity);
        let issued = ca
            .issue(&site(30), &csr(), MAX_HOURS, now())
            .expect("14 days");
        assert_eq!(issued.not_after, now() + Duration::days(14));
        let issued = ca.issue(&site(2), &csr(), 0, now()).expect("capped");
        assert_eq!(
            issued.not_after,
            now() + Duration::days(2),
            "not beyond the site"
        );
        let v = ca
            .issue(&site(2), &csr(), 0, now() + Duration::days(2))
            .expect_err("site over");
        assert_eq!(v.reason, Reason::SiteNotOpen);
    }

    /// What `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes`
    /// makes, as the Python site terminal (examples/python/site_terminal.py) does.
    const OPENSSL_CSR: &str = "-----BEGIN CERTIFICATE REQUEST-----\nMIHKMHECAQAwDzENMAsGA1UEAwwEc2l0ZTBZMBMGByqGSM49AgEGCCqGSM49AwEH\nA0IABK4zN6Tp1MIeQLeM3DoriQ+xi5VVAin/InLqsPnxN3arlNr9uE7VQdW99v57\nPXH2dvfvbumRd6lWJ4PcMamM+KSgADAKBggqhkjOPQQDAgNJADBGAiEAigRWzGbW\nr4nqeUoOYLSnO+vaPP6aFWRhgLl5ULNvlZsCIQDNdWZ3cX6ocMQJDCAKhAb1w0gW\nSXSafNqCSvHS+MrAsg==\n-----END CERTIFICATE REQUEST-----";

    #[test]
    fn an_openssl_csr_is_signed_and_its_subject_replaced() {
        let ca = SiteCa::generate().expect("ca");
        let s = site(10);
        let issued = ca.issue(&s, OPENSSL_CSR, 24, now()).expect("issued");
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).expect("pem");
        assert_eq!(peer_of(&der).expect("identity"), Peer::Site(s.id.clone()));
        let (_, cert) = X509Certificate::from_der(&der).expect("cert");
        assert_eq!(cert.subject().to_string(), format!("CN=site {}", s.id));
    }

    #[test]
    fn a_bad_csr_is_refused_with_its_reason() {
        let ca = SiteCa::generate().expect("ca");
        let v = ca.issue(&site(3), "not a csr", 0, now()).expect_err("bad");
        assert_eq!(v.reason, Reason::SiteCsrInvalid);
        // A CSR whose signature does not match is refused too.
        let good = csr();
        let tampered = good.replacen("MI", "MJ", 1);
        assert!(ca.issue(&site(3), &tampered, 0, now()).is_err());
    }

    #[test]
    fn the_crl_lists_the_certificates_of_closed_sites_only() {
        let ca = SiteCa::generate().expect("ca");
        let mut s = site(5);
        let issued = ca.issue(&s, &csr(), 0, now()).expect("issued");
        s.revisions.push(SiteRevision {
            number: 2,
            recorded_at: now(),
            author: "op".into(),
            kind: SiteChangeKind::Certificate,
            window: s.window().expect("w"),
            detail: issued.detail(),
        });
        assert!(revoked_serials(&s).is_empty(), "open: nothing revoked");
        let closed_at = now() + Duration::hours(1);
        s.revisions.push(SiteRevision {
            number: 3,
            recorded_at: closed_at,
            author: "op".into(),
            kind: SiteChangeKind::Close,
            window: Window::new(now(), closed_at).expect("w"),
            detail: String::new(),
        });
        let revoked = revoked_serials(&s);
        assert_eq!(
            revoked,
            vec![(hex::decode(&issued.serial).expect("hex"), closed_at)]
        );
        let (pem, der) = ca.crl(&[&s], closed_at).expect("crl");
        assert!(pem.contains("BEGIN X509 CRL"));
        let (_, crl) =
            x509_parser::revocation_list::CertificateRevocationList::from_der(&der).expect("der");
        let serials: Vec<String> = crl
            .iter_revoked_certificates()
            .map(|r| hex::encode(r.raw_serial()))
            .collect();
        assert_eq!(serials, vec![issued.serial]);
    }
}
