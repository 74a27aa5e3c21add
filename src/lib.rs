//! onshi-gateway: the emergency-access gateway in front of the online qualification
//! confirmation system (OQS).

pub mod proto;
