//! The hash chain: every record's hash covers the previous record's hash and the
//! record's canonical encoding, so editing, deleting, inserting or reordering a
//! record breaks every later link. The encoding is specified in docs/audit.md; the
//! fields come in the order of `AccessRecord::fields`, which the table's columns
//! follow too.

use sha2::{Digest, Sha256};

use crate::store::{AccessRecord, ChainHead, SiteStamp, StoredRecord, Value};

/// The previous-hash of a chain's first record.
pub const GENESIS: [u8; 32] = [0; 32];

const RECORD_DOMAIN: &[u8] = b"onshi-audit-record-v1\0";

/// The tag of the hash input's section of the access mode and consent kinds.
pub const CLINICAL_TAG: u8 = 0x10;

/// Builds the canonical byte encoding field by field: fixed order, every string
/// length-prefixed, optional fields with a presence byte, integers big-endian.
#[derive(Default)]
pub struct Canonical(Vec<u8>);

impl Canonical {
    pub fn new(domain: &[u8]) -> Self {
        Canonical(domain.to_vec())
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        // Fields are far below 4 GiB (the gateway caps messages at kilobytes).
        self.0
            .extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes());
        self.0.extend_from_slice(b);
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    pub fn opt(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            None => {
                self.0.push(0);
                self
            }
            Some(s) => {
                self.0.push(1);
                self.str(s)
            }
        }
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }

    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(&self.0).into()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// The hash of `record` at position `seq` of `chain_id`, following `prev`.
pub fn record_hash(prev: &[u8; 32], chain_id: &str, seq: u64, r: &AccessRecord) -> [u8; 32] {
    let mut c = Canonical::new(RECORD_DOMAIN);
    c.raw(prev).str(chain_id).u64(seq);
    for (_, value) in r.fields() {
        match value {
            Value::Text(s) => c.str(s),
            Value::OptText(s) => c.opt(s),
            Value::Int(n) => c.i64(i64::from(n)),
            Value::BigInt(n) => c.i64(n),
            Value::Bool(b) => c.raw(&[u8::from(b)]),
            Value::OptBigInt(n) => c.opt(n.map(|n| n.to_string()).as_deref()),
        };
    }
    // Appended only when there are some: a record without any encodes as it did
    // before the list existed, so logs written then still verify.
    if !r.disclosed_patients.is_empty() {
        c.u32(u32::try_from(r.disclosed_patients.len()).unwrap_or(u32::MAX));
        for key in &r.disclosed_patients {
            c.str(key);
        }
    }
    // The access mode and consent kinds: a tagged section, present only when one is
    // set, so records written before them encode (and verify) as they did.
    if let Some(stamp) = &r.clinical {
        c.raw(&[CLINICAL_TAG])
            .opt(stamp.access_mode.as_deref())
            .opt(stamp.consent_kinds.as_deref());
    }
    // A temporary site's section, tagged, after the disclosed patients: present
    // only for a site's calls (or a stated licence number), so others hash as before.
    if !r.site.is_empty() {
        c.raw(&[SiteStamp::TAG]);
        for (_, value) in r.site.fields() {
            c.opt(value);
        }
    }
    accountability_section(&mut c, r.accountability.as_ref());
    c.digest()
}

/// Tags the accountability section: after the disclosed patients, present only when
/// one of its fields is set, so records written before it existed still verify.
pub const ACCOUNTABILITY_TAG: u8 = 0x30;

fn accountability_section(c: &mut Canonical, a: Option<&crate::store::Accountability>) {
    let Some(a) = a.filter(|a| !a.is_empty()) else {
        return;
    };
    c.raw(&[ACCOUNTABILITY_TAG]);
    for (_, value) in a.fields() {
        match value {
            Value::Text(s) => c.str(s),
            Value::OptText(s) => c.opt(s),
            Value::Int(n) => c.i64(i64::from(n)),
            Value::BigInt(n) => c.i64(n),
            Value::Bool(b) => c.raw(&[u8::from(b)]),
            Value::OptBigInt(n) => c.opt(n.map(|n| n.to_string()).as_deref()),
        };
    }
}

/// Parses a stored 64-hex-digit hash.
pub fn parse_hash(hex_hash: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_hash, &mut out).ok()?;
    Some(out)
}

/// A writer's position in its chain: links the records it is given, in order.
#[derive(Debug, Clone)]
pub struct Linker {
    chain_id: String,
    seq: u64,
    head: [u8; 32],
}

impl Linker {
    /// Continues after `head`, or starts the chain if it has no record yet.
    pub fn resume(chain_id: &str, head: Option<&ChainHead>) -> Option<Linker> {
        let (seq, head) = match head {
            None => (0, GENESIS),
            Some(h) => (h.seq, parse_hash(&h.hash)?),
        };
        Some(Linker {
            chain_id: chain_id.to_string(),
            seq,
            head,
        })
    }

    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn head_hash(&self) -> [u8; 32] {
        self.head
    }

    /// Links `records` after the current head and advances it.
    pub fn link(&mut self, records: Vec<AccessRecord>) -> Vec<StoredRecord> {
        records
            .into_iter()
            .map(|record| {
                let seq = self.seq + 1;
                let hash = record_hash(&self.head, &self.chain_id, seq, &record);
                let stored = StoredRecord {
                    chain_id: self.chain_id.clone(),
                    seq,
                    prev_hash: hex::encode(self.head),
                    hash: hex::encode(hash),
                    record,
                };
                self.seq = seq;
                self.head = hash;
                stored
            })
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::DateTime;

    use super::*;
    use crate::store::Decision;

    /// A plain allowed lookup record, for tests of the chain and the writer.
    pub fn record(id: &str) -> AccessRecord {
        let at = DateTime::from_timestamp_nanos(1_647_529_200_000_000_001);
        AccessRecord {
            id: id.into(),
            facility: Some("0411234567".into()),
            staff_id: Some("D-1".into()),
            staff_role: Some("doctor".into()),
            ..AccessRecord::operators("LookupQualification", "qualification", at)
        }
    }

    #[test]
    fn links_follow_each_other() {
        let mut l = Linker::resume("c1", None).expect("fresh");
        let linked = l.link(vec![record("a"), record("b")]);
        assert_eq!(linked[0].seq, 1);
        assert_eq!(linked[0].prev_hash, "0".repeat(64));
        assert_eq!(linked[1].prev_hash, linked[0].hash);
        assert_eq!(l.seq(), 2);
        // Resuming from the stored head continues the same chain.
        let mut again = Linker::resume(
            "c1",
            Some(&ChainHead {
                seq: 2,
                hash: linked[1].hash.clone(),
            }),
        )
        .expect("resumes");
        let next = again.link(vec![record("c")]);
        assert_eq!(next[0].seq, 3);
        assert_eq!(next[0].prev_hash, linked[1].hash);
    }

    /// A record without the stamp hashes exactly as before the stamp existed: the
    /// input ends after the fixed fields (and disclosed patients), no 0x10 byte.
    #[test]
    fn a_record_without_the_clinical_stamp_encodes_as_before() {
        let r = record("a");
        let mut c = Canonical::new(RECORD_DOMAIN);
        c.raw(&GENESIS).str("c1").u64(1);
        for (_, value) in r.fields() {
            match value {
                Value::Text(s) => c.str(s),
                Value::OptText(s) => c.opt(s),
                Value::Int(n) => c.i64(i64::from(n)),
                Value::BigInt(n) => c.i64(n),
                Value::Bool(b) => c.raw(&[u8::from(b)]),
                Value::OptBigInt(_) => unreachable!("no fixed field is an optional number"),
            };
        }
        assert_eq!(record_hash(&GENESIS, "c1", 1, &r), c.digest());
        let mut stamped = r.clone();
        stamped.clinical = crate::store::ClinicalStamp::of(None, Some("all".into()));
        c.raw(&[CLINICAL_TAG]).opt(None).opt(Some("all"));
        assert_eq!(record_hash(&GENESIS, "c1", 1, &stamped), c.digest());
    }

    #[test]
    fn every_field_is_covered_and_none_differs_from_empty() {
        let base = record("a");
        let h = |r: &AccessRecord| record_hash(&GENESIS, "c1", 1, r);
        let original = h(&base);
        let mut variants = Vec::new();
        let mut r = base.clone();
        r.at += chrono::Duration::nanoseconds(1);
        variants.push(r);
        let mut r = base.clone();
        r.staff_id = Some(String::new());
        variants.push(r);
        let mut r = base.clone();
        r.patient_key = Some(String::new());
        variants.push(r);
        let mut r = base.clone();
        r.decision = Decision::Denied;
        variants.push(r);
        let mut r = base.clone();
        r.needs_review = true;
        variants.push(r);
        let mut r = base.clone();
        r.grpc_code = 7;
        variants.push(r);
        let mut r = base.clone();
        r.disclosed_patients = vec![String::new()];
        variants.push(r);
        // The order of the keys and where one ends count.
        let mut r = base.clone();
        r.disclosed_patients = vec!["a".into(), "b".into()];
        variants.push(r);
        let mut r = base.clone();
        r.disclosed_patients = vec!["b".into(), "a".into()];
        variants.push(r);
        let mut r = base.clone();
        r.disclosed_patients = vec!["ab".into()];
        variants.push(r);
        // The clinical stamp's section: each field, and none against empty.
        for (mode, kinds) in [
            (Some("emergency_viewing"), None),
            (None, Some("all")),
            (Some("emergency_viewing"), Some("all")),
            (None, None),
            (Some(""), None),
        ] {
            let mut r = base.clone();
            r.clinical = Some(crate::store::ClinicalStamp {
                access_mode: mode.map(str::to_string),
                consent_kinds: kinds.map(str::to_string),
            });
            variants.push(r);
        }
        // Moving text between adjacent fields changes the hash (length prefixes).
        let mut r = base.clone();
        r.method = "LookupQualificationq".into();
        r.items = "ualification".into();
        variants.push(r);
        for v in &variants {
            assert_ne!(h(v), original, "{v:?}");
        }
        let hashes: std::collections::HashSet<_> = variants.iter().map(h).collect();
        assert_eq!(hashes.len(), variants.len(), "every variant hashes apart");
        assert_ne!(record_hash(&GENESIS, "c1", 2, &base), original);
        assert_ne!(record_hash(&GENESIS, "c2", 1, &base), original);
        assert_ne!(record_hash(&[1; 32], "c1", 1, &base), original);
    }

    /// Computed by hand from the encoding in docs/audit.md: records already in a
    /// log must keep verifying whatever the code that encodes them.
    #[test]
    fn the_encoding_is_the_documented_one() {
        let hash = record_hash(&GENESIS, "c1", 1, &record("a"));
        assert_eq!(
            hex::encode(hash),
            "25399cb824af73d3beaee6cf15a8fb43c43834f848a356064d86fccfd3ea93d6"
        );
    }

    /// The section is absent when nothing of it is set (so the documented hash
    /// above holds), and present and covering every one of its fields otherwise.
    #[test]
    fn the_accountability_section_is_tagged_and_covers_its_fields() {
        use crate::store::Accountability;
        let base = record("a");
        let h = |r: &AccessRecord| record_hash(&GENESIS, "c1", 1, r);
        let mut empty = base.clone();
        empty.accountability = Some(Accountability::default());
        assert_eq!(h(&empty), h(&base), "an empty section is no section");
        let set = |f: fn(&mut Accountability)| {
            let mut a = Accountability::default();
            f(&mut a);
            let mut r = base.clone();
            r.accountability = Some(a);
            h(&r)
        };
        let variants = [
            set(|a| a.exemption_category = Some(String::new())),
            set(|a| a.patient_notice = true),
            set(|a| a.kind = Some(String::new())),
            set(|a| a.subject_record = Some(String::new())),
            set(|a| a.outcome = Some(String::new())),
            set(|a| a.note = Some(String::new())),
            set(|a| a.operator = Some(String::new())),
            set(|a| a.audit_query = Some(String::new())),
            set(|a| a.result_count = Some(0)),
        ];
        let distinct: std::collections::HashSet<_> = variants.iter().collect();
        assert_eq!(distinct.len(), variants.len());
        assert!(!distinct.contains(&h(&base)));
        // By hand: the tag, then each field in order (docs/audit.md).
        let mut c = Canonical::new(RECORD_DOMAIN);
        c.raw(&GENESIS).str("c1").u64(1);
        for (_, v) in base.fields() {
            match v {
                Value::Text(s) => c.str(s),
                Value::OptText(s) => c.opt(s),
                Value::Int(n) => c.i64(i64::from(n)),
                Value::BigInt(n) => c.i64(n),
                Value::Bool(b) => c.raw(&[u8::from(b)]),
                Value::OptBigInt(n) => c.opt(n.map(|n| n.to_string()).as_deref()),
            };
        }
        c.raw(&[0x30])
            .opt(Some("other"))
            .raw(&[1])
            .opt(None)
            .opt(None)
            .opt(None)
            .opt(None)
            .opt(None)
            .opt(None)
            .opt(Some("3"));
        let mut r = base.clone();
        r.accountability = Some(Accountability {
            exemption_category: Some("other".into()),
            patient_notice: true,
            result_count: Some(3),
            ..Accountability::default()
        });
        assert_eq!(h(&r), c.digest());
    }

    #[test]
    fn a_corrupt_stored_head_is_not_resumed() {
        let head = ChainHead {
            seq: 1,
            hash: "zz".into(),
        };
        assert!(Linker::resume("c1", Some(&head)).is_none());
    }
}
