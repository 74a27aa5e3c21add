//! The facility registry's stored shapes: the municipality master (JIS X 0402) and
//! each facility's municipality, which its code does not tell.

use crate::domain::facility::FacilityKind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Municipality {
    /// 5 digits (JIS X 0402 without the check digit), e.g. "17204".
    pub code: String,
    pub name: String,
    pub prefecture: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredFacility {
    /// 10 digits with a valid check digit.
    pub code: String,
    pub name: String,
    pub kind: FacilityKind,
    pub prefecture: u8,
    /// 5 digits; a municipality of `prefecture`.
    pub municipality: String,
    /// A hospital with an emergency department (救急科を有する病院): the only
    /// facilities that may use emergency viewing outside a disaster.
    pub emergency_hospital: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegistryCounts {
    pub municipalities: u64,
    pub facilities: u64,
}
