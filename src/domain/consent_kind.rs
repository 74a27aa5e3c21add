//! Consent per kind of information, as OQS records it per item (drugs, check-ups,
//! clinical information, operations), and the access mode of a call. A call is
//! refused when it asks for a kind the patient did not agree to; the life-or-body
//! exemption covers every kind.

use super::{Reason, Violation};

pub const FIELD_KINDS: &str = "access.consent.kinds";
pub const FIELD_MODE: &str = "access.mode";

/// A kind of information a consent may cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InfoKind {
    /// 薬剤情報: drug history and e-prescriptions.
    Drugs,
    /// 特定健診情報.
    Checkups,
    /// 診療情報: procedures, dialysis and visits.
    ClinicalInformation,
    /// 手術情報.
    Operations,
}

impl InfoKind {
    pub const ALL: [InfoKind; 4] = [
        InfoKind::Drugs,
        InfoKind::Checkups,
        InfoKind::ClinicalInformation,
        InfoKind::Operations,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InfoKind::Drugs => "drugs",
            InfoKind::Checkups => "checkups",
            InfoKind::ClinicalInformation => "clinical_information",
            InfoKind::Operations => "operations",
        }
    }
}

/// The kinds a consent covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindsGiven {
    /// Every kind: nothing stated, CONSENT_KIND_ALL stated, or the exemption.
    All,
    /// Only these, sorted, without repeats.
    Only(Vec<InfoKind>),
}

impl KindsGiven {
    /// As the access log keeps it: `all` or the kinds joined by `,`.
    pub fn as_record(&self) -> String {
        match self {
            KindsGiven::All => "all".to_string(),
            KindsGiven::Only(kinds) => kinds
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    fn covers(&self, kind: InfoKind) -> bool {
        match self {
            KindsGiven::All => true,
            KindsGiven::Only(kinds) => kinds.contains(&kind),
        }
    }
}

/// The kinds stated on the wire: 1 all, 2 drugs, 3 check-ups, 4 clinical
/// information, 5 operations. None stated means all (the consent as it was before
/// kinds were recorded); 0 and unknown numbers are refused, naming each.
pub fn parse_kinds(wire: &[i32]) -> Result<KindsGiven, Violation> {
    let mut kinds = Vec::new();
    let mut all = wire.is_empty();
    let mut bad = Vec::new();
    for &n in wire {
        match n {
            1 => all = true,
            2 => kinds.push(InfoKind::Drugs),
            3 => kinds.push(InfoKind::Checkups),
            4 => kinds.push(InfoKind::ClinicalInformation),
            5 => kinds.push(InfoKind::Operations),
            n => bad.push(Violation::new(
                Reason::ConsentKindUnknown,
                FIELD_KINDS,
                format!(
                    "consent kind {n} is not known; use 1 (all), 2 (drugs), 3 (check-ups), 4 (clinical information) or 5 (operations)"
                ),
            )),
        }
    }
    if let Some(v) = Violation::merge(bad) {
        return Err(v);
    }
    if all {
        return Ok(KindsGiven::All);
    }
    kinds.sort_unstable();
    kinds.dedup();
    Ok(KindsGiven::Only(kinds))
}

/// Whether `given` covers every kind in `needed`; the refusal names those missing.
pub fn check_kinds(given: &KindsGiven, needed: &[InfoKind]) -> Result<(), Violation> {
    let missing: Vec<&str> = needed
        .iter()
        .filter(|k| !given.covers(**k))
        .map(|k| k.as_str())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Violation::new(
        Reason::ConsentKindNotGiven,
        FIELD_KINDS,
        format!(
            "the patient's consent does not cover {}; ask for consent to it, or leave it out of the request",
            missing.join(" and ")
        ),
    )
    .with("missing_kinds", missing.join(","))
    .with("consented_kinds", given.as_record()))
}

/// Under which regime a call is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessMode {
    /// The emergency function of a disaster (unspecified on the wire too).
    Disaster,
    /// 救急時医療情報閲覧: a hospital with an emergency department, outside any activation.
    EmergencyViewing,
}

impl AccessMode {
    /// From the wire: 0 and 1 disaster, 2 emergency viewing.
    pub fn from_wire(n: i32) -> Result<AccessMode, Violation> {
        match n {
            0 | 1 => Ok(AccessMode::Disaster),
            2 => Ok(AccessMode::EmergencyViewing),
            n => Err(Violation::new(
                Reason::AccessModeUnknown,
                FIELD_MODE,
                format!("access mode {n} is not known; use 1 (disaster) or 2 (emergency viewing)"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::Disaster => "disaster",
            AccessMode::EmergencyViewing => "emergency_viewing",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_stated_or_all_means_every_kind() {
        assert_eq!(parse_kinds(&[]), Ok(KindsGiven::All));
        assert_eq!(parse_kinds(&[2, 1]), Ok(KindsGiven::All));
        assert_eq!(parse_kinds(&[1]).unwrap().as_record(), "all");
    }

    #[test]
    fn kinds_are_sorted_and_unique() {
        let given = parse_kinds(&[5, 2, 5]).unwrap();
        assert_eq!(
            given,
            KindsGiven::Only(vec![InfoKind::Drugs, InfoKind::Operations])
        );
        assert_eq!(given.as_record(), "drugs,operations");
    }

    #[test]
    fn unknown_and_unspecified_kinds_are_each_named() {
        let refused = parse_kinds(&[0, 2, 9]).unwrap_err();
        assert_eq!(refused.reason, Reason::ConsentKindUnknown);
        assert_eq!(refused.all().count(), 2);
        assert!(refused.description.contains("kind 0"));
    }

    #[test]
    fn a_kind_outside_the_consent_is_refused_naming_it() {
        let given = parse_kinds(&[4]).unwrap();
        assert_eq!(
            check_kinds(&given, &[InfoKind::ClinicalInformation]),
            Ok(())
        );
        assert_eq!(check_kinds(&given, &[]), Ok(()));
        let refused = check_kinds(
            &given,
            &[InfoKind::ClinicalInformation, InfoKind::Operations],
        )
        .unwrap_err();
        assert_eq!(refused.reason, Reason::ConsentKindNotGiven);
        assert!(
            refused
                .metadata
                .contains(&("missing_kinds".into(), "operations".into()))
        );
        assert_eq!(check_kinds(&KindsGiven::All, &InfoKind::ALL), Ok(()));
    }

    #[test]
    fn access_modes_from_the_wire() {
        assert_eq!(AccessMode::from_wire(0), Ok(AccessMode::Disaster));
        assert_eq!(AccessMode::from_wire(1), Ok(AccessMode::Disaster));
        assert_eq!(AccessMode::from_wire(2), Ok(AccessMode::EmergencyViewing));
        assert_eq!(
            AccessMode::from_wire(3).unwrap_err().reason,
            Reason::AccessModeUnknown
        );
    }
}
