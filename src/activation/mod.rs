//! The activation registry: which areas (prefectures, municipalities, single
//! facilities) are covered by which windows, as the operators' notices set them, the
//! facility registry that places a facility in its municipality, the in-memory index
//! the activation rule reads, and the operators' admin service.

pub mod admin;
pub mod cache;
pub mod index;
pub mod preview;
pub mod registry;
pub mod seed;
pub mod site_admin;
pub mod sites;
