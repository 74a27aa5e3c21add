//! Mutual TLS: who is calling is what the client certificate says.
//!
//! - Facilities: a certificate from the facility CA whose SAN holds the URI
//!   `urn:onshi:facility:<10-digit facility code>`; the code's check digit is
//!   verified. The subject is not consulted.
//! - Operators: a certificate from the operator CA whose SAN holds the URI
//!   `urn:onshi:operator:<role>:<id>`, role `activation-manager` or `auditor`.
//!
//! Terminals connect to the terminal listener, which trusts only the facility CA;
//! operators to the operators' listener, which trusts only the operator CA, so a
//! facility certificate never reaches an admin method. Each listener also checks
//! the identity at the handshake (`verifier`), so a certificate naming none it
//! accepts is refused before any call; refused handshakes are logged and counted
//! by reason (`refusal`).

pub mod acceptor;
pub mod client;
pub mod config;
pub mod dev_ca;
pub mod identity;
pub mod issue;
pub mod operator_auth;
pub mod peer;
pub mod pki_dir;
pub mod refusal;
pub mod site_ca;
pub mod verifier;

pub use config::TlsFiles;
pub use peer::{OperatorRole, Peer, peer_of};
