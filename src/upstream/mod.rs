//! The upstream OQS: the client the gateway forwards through, and a built-in simulator.

pub mod simulator;
