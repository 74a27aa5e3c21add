//! Who is viewing: doctors, dentists, pharmacists, and staff authorised by the
//! facility head. The facility's own staff id goes into every audit record, so it
//! must be present and printable.

use super::input::WireEnum;
use super::names::required_text;
use super::{Gather, Reason, Violation};

pub const STAFF_ID_MAX_CHARS: usize = 64;
pub const FIELD_STAFF_ID: &str = "access.staff.staff_id";
pub const FIELD_STAFF_ROLE: &str = "access.staff.role";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StaffRole {
    Doctor,
    Dentist,
    Pharmacist,
    /// Staff authorised by the head of the facility.
    AuthorisedStaff,
}

impl StaffRole {
    /// From the wire enum number: 1 doctor, 2 dentist, 3 pharmacist, 4 authorised staff.
    pub fn from_wire(n: i32) -> Option<StaffRole> {
        match n {
            1 => Some(StaffRole::Doctor),
            2 => Some(StaffRole::Dentist),
            3 => Some(StaffRole::Pharmacist),
            4 => Some(StaffRole::AuthorisedStaff),
            _ => None,
        }
    }

    /// Stable name for audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Doctor => "doctor",
            StaffRole::Dentist => "dentist",
            StaffRole::Pharmacist => "pharmacist",
            StaffRole::AuthorisedStaff => "authorised_staff",
        }
    }
}

const ROLE: WireEnum<StaffRole> = WireEnum {
    field: FIELD_STAFF_ROLE,
    decode: StaffRole::from_wire,
    missing: (
        Reason::StaffRoleMissing,
        "the staff role is required: 1 doctor, 2 dentist, 3 pharmacist, 4 staff authorised by the facility head",
    ),
    unknown: (Reason::StaffRoleUnknown, |n| {
        format!(
            "staff role {n} is not known; use 1 doctor, 2 dentist, 3 pharmacist or 4 staff authorised by the facility head"
        )
    }),
};

/// Validates the caller's staff id (NFKC, trimmed; required; at most 64 characters;
/// no control or invisible characters) and role (wire numbers 1..=4), naming both
/// when both are at fault (the id first). Returns the normalised id and the role.
pub fn evaluate_staff(staff_id: &str, role: i32) -> Result<(String, StaffRole), Violation> {
    staff_id_of(staff_id).gather(ROLE.parse(role))
}

fn staff_id_of(raw: &str) -> Result<String, Violation> {
    required_text(
        FIELD_STAFF_ID,
        raw,
        STAFF_ID_MAX_CHARS,
        Reason::StaffIdInvalid,
        (
            Reason::StaffIdMissing,
            "the staff id of the person viewing is required: every view is logged with it",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_staff() {
        assert_eq!(
            evaluate_staff("D-001", 1),
            Ok(("D-001".to_owned(), StaffRole::Doctor))
        );
        assert_eq!(
            evaluate_staff(" ｄ－００１ ", 2),
            Ok(("d-001".to_owned(), StaffRole::Dentist))
        );
        assert_eq!(
            evaluate_staff("薬剤師 山田", 3).map(|s| s.1),
            Ok(StaffRole::Pharmacist)
        );
        assert_eq!(
            evaluate_staff(&"x".repeat(64), 4).map(|s| s.1),
            Ok(StaffRole::AuthorisedStaff)
        );
    }

    #[test]
    fn staff_id_refusals() {
        for blank in ["", " ", "\u{3000}"] {
            let v = evaluate_staff(blank, 1).unwrap_err();
            assert_eq!(
                (v.reason, v.field.as_str()),
                (Reason::StaffIdMissing, FIELD_STAFF_ID)
            );
        }
        let v = evaluate_staff(&"x".repeat(65), 1).unwrap_err();
        assert_eq!(
            (v.reason, v.field.as_str()),
            (Reason::StaffIdInvalid, FIELD_STAFF_ID)
        );
        assert!(v.description.contains("limit is 64"), "{}", v.description);
        for bad in ["D\u{0}1", "D\n1", "D\u{202E}1"] {
            assert_eq!(
                evaluate_staff(bad, 1).unwrap_err().reason,
                Reason::StaffIdInvalid,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn role_refusals() {
        let v = evaluate_staff("D-001", 0).unwrap_err();
        assert_eq!(
            (v.reason, v.field.as_str()),
            (Reason::StaffRoleMissing, FIELD_STAFF_ROLE)
        );
        for n in [5, -1, i32::MAX] {
            let v = evaluate_staff("D-001", n).unwrap_err();
            assert_eq!(v.reason, Reason::StaffRoleUnknown, "{n}");
        }
        // The id is named first, and the role with it.
        let v = evaluate_staff("", 0).unwrap_err();
        let named: Vec<_> = v.all().map(|v| (v.reason, v.field.as_str())).collect();
        assert_eq!(
            named,
            [
                (Reason::StaffIdMissing, FIELD_STAFF_ID),
                (Reason::StaffRoleMissing, FIELD_STAFF_ROLE)
            ]
        );
        let v = evaluate_staff(&"x".repeat(65), 7).unwrap_err();
        let named: Vec<_> = v.all().map(|v| (v.reason, v.field.as_str())).collect();
        assert_eq!(
            named,
            [
                (Reason::StaffIdInvalid, FIELD_STAFF_ID),
                (Reason::StaffRoleUnknown, FIELD_STAFF_ROLE)
            ]
        );
        // One at fault: only that one.
        assert!(evaluate_staff("D-001", 0).unwrap_err().also.is_empty());
        assert!(evaluate_staff("", 1).unwrap_err().also.is_empty());
    }

    #[test]
    fn names_are_stable() {
        let names: Vec<_> = (1..=4)
            .filter_map(StaffRole::from_wire)
            .map(StaffRole::as_str)
            .collect();
        assert_eq!(
            names,
            ["doctor", "dentist", "pharmacist", "authorised_staff"]
        );
    }
}
