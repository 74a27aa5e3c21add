//! onshi-gateway: the emergency-access gateway in front of the online qualification
//! confirmation system (OQS). The request path is in [`pipeline`].
//!
//! The folders are the architecture; dependencies point inward, toward [`domain`]:
//! `domain` ← `store` ← `activation`, `audit` ← `pipeline` ← `server` ← `cli`.

#![forbid(unsafe_code)]

pub mod activation;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod demo;
pub mod domain;
pub mod pipeline;
pub mod proto;
pub mod server;
pub mod simulator;
pub mod status;
pub mod store;
pub mod telemetry;
pub mod tls;
