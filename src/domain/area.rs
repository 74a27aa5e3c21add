//! The areas an activation can open: a prefecture (JIS X 0401), a municipality
//! (JIS X 0402, 5 digits) or a single facility.

/// An area an activation can cover. Prefecture and facility areas need no registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AreaKey {
    Prefecture(u8),
    Municipality(String),
    Facility(String),
}

impl AreaKey {
    pub fn kind(&self) -> &'static str {
        match self {
            AreaKey::Prefecture(_) => "prefecture",
            AreaKey::Municipality(_) => "municipality",
            AreaKey::Facility(_) => "facility",
        }
    }

    pub fn code(&self) -> String {
        match self {
            AreaKey::Prefecture(p) => format!("{p:02}"),
            AreaKey::Municipality(m) => m.clone(),
            AreaKey::Facility(f) => f.clone(),
        }
    }

    pub fn from_parts(kind: &str, code: &str) -> Option<AreaKey> {
        match kind {
            "prefecture" => code.parse().ok().map(AreaKey::Prefecture),
            "municipality" => Some(AreaKey::Municipality(code.to_string())),
            "facility" => Some(AreaKey::Facility(code.to_string())),
            _ => None,
        }
    }
}

impl std::fmt::Display for AreaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind(), self.code())
    }
}
