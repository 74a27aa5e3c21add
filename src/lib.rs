//! onshi-gateway: the emergency-access gateway in front of the online qualification
//! confirmation system (OQS).

pub mod domain;
pub mod proto;
pub mod upstream;
