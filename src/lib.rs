//! onshi-gateway: the emergency-access gateway in front of the online qualification
//! confirmation system (OQS). The request path is in [`pipeline`].

pub mod activation_admin;
pub mod activation_cache;
pub mod activation_cli;
pub mod activation_index;
pub mod activation_preview;
pub mod admin;
pub mod admin_connection;
pub mod audit;
pub mod audit_cli;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod config_cli;
pub mod demo;
pub mod demo_audit;
pub mod demo_operator;
pub mod demo_tls;
pub mod domain;
pub mod gateway;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod pipeline;
pub mod proto;
pub mod registry;
pub mod registry_cli;
pub mod rules;
pub mod server;
pub mod settings;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod upstream;
