//! The upstream OQS: the client the gateway forwards through, and a built-in simulator.

pub mod client;
pub mod forward;
pub mod simulator;

pub use client::{Upstream, UpstreamConfig};
pub use forward::{Forward, Forwardable};
