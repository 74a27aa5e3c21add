//! The writer's Ed25519 key: it signs checkpoints, and its public key names the chain.
//! The embedded default generates one on first start and keeps it beside the store.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

use super::chain::{Canonical, parse_hash};
use crate::store::{ChainInfo, Checkpoint};

const CHECKPOINT_DOMAIN: &[u8] = b"onshi-audit-checkpoint-v1\0";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading the audit signing key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the audit signing key {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the audit signing key {path} is not 64 hexadecimal digits (an Ed25519 seed); \
         fix it or remove it to have a new key (and chain) generated"
    )]
    Malformed { path: PathBuf },
}

#[derive(Clone)]
pub struct ChainSigner {
    key: SigningKey,
    chain_id: String,
}

/// The chain id of a public key: the first 8 bytes of its SHA-256, hex.
pub fn chain_id_of(public_key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(public_key.as_bytes())[..8])
}

impl ChainSigner {
    pub fn new(key: SigningKey) -> ChainSigner {
        let chain_id = chain_id_of(&key.verifying_key());
        ChainSigner { key, chain_id }
    }

    pub fn generate() -> ChainSigner {
        ChainSigner::new(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// Reads the key at `path`, or, if there is none, generates one and writes it
    /// there readable by the owner only.
    pub fn load_or_generate(path: &Path) -> Result<ChainSigner, KeyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let mut seed = [0u8; 32];
                hex::decode_to_slice(text.trim(), &mut seed).map_err(|_| KeyError::Malformed {
                    path: path.to_path_buf(),
                })?;
                Ok(ChainSigner::new(SigningKey::from_bytes(&seed)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let signer = ChainSigner::generate();
                write_private(path, &hex::encode(signer.key.to_bytes())).map_err(|source| {
                    KeyError::Write {
                        path: path.to_path_buf(),
                        source,
                    }
                })?;
                tracing::info!(
                    path = %path.display(),
                    chain = %signer.chain_id,
                    public_key = %signer.public_key_hex(),
                    "generated a new audit signing key"
                );
                Ok(signer)
            }
            Err(source) => Err(KeyError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The key itself, for the tree's checkpoints (`audit::transparency`).
    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    pub fn chain_info(&self, now: DateTime<Utc>) -> ChainInfo {
        ChainInfo {
            chain_id: self.chain_id.clone(),
            public_key: self.public_key_hex(),
            created_at: now,
        }
    }

    pub fn checkpoint(&self, seq: u64, head: &[u8; 32], at: DateTime<Utc>) -> Checkpoint {
        let message = checkpoint_message(&self.chain_id, seq, head, at);
        Checkpoint {
            chain_id: self.chain_id.clone(),
            seq,
            head_hash: hex::encode(head),
            at,
            signature: hex::encode(self.key.sign(&message).to_bytes()),
        }
    }
}

fn checkpoint_message(chain_id: &str, seq: u64, head: &[u8; 32], at: DateTime<Utc>) -> Vec<u8> {
    let mut c = Canonical::new(CHECKPOINT_DOMAIN);
    c.str(chain_id)
        .u64(seq)
        .raw(head)
        .i64(at.timestamp_nanos_opt().unwrap_or(i64::MAX));
    c.into_bytes()
}

/// Parses a hex Ed25519 public key.
pub fn parse_public_key(hex_key: &str) -> Option<VerifyingKey> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_key.trim(), &mut bytes).ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// True if `checkpoint` is signed by `key` exactly as stored.
pub fn checkpoint_is_signed_by(checkpoint: &Checkpoint, key: &VerifyingKey) -> bool {
    let Some(head) = parse_hash(&checkpoint.head_hash) else {
        return false;
    };
    let mut sig = [0u8; 64];
    if hex::decode_to_slice(&checkpoint.signature, &mut sig).is_err() {
        return false;
    }
    let message = checkpoint_message(&checkpoint.chain_id, checkpoint.seq, &head, checkpoint.at);
    key.verify(&message, &Signature::from_bytes(&sig)).is_ok()
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp)?;
    writeln!(f, "{contents}")?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_kept_and_reloaded_as_the_same_chain() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit-signing.key");
        let first = ChainSigner::load_or_generate(&path).expect("generated");
        let again = ChainSigner::load_or_generate(&path).expect("loaded");
        assert_eq!(first.chain_id(), again.chain_id());
        assert_eq!(first.chain_id().len(), 16);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o077, 0, "key readable by others: {mode:o}");
        }
    }

    #[test]
    fn a_malformed_key_file_is_refused_not_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        std::fs::write(&path, "not a key").expect("write");
        let err = ChainSigner::load_or_generate(&path).err().expect("refused");
        assert!(matches!(err, KeyError::Malformed { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&path).expect("kept"), "not a key");
    }

    #[test]
    fn a_checkpoint_verifies_only_as_signed() {
        let signer = ChainSigner::generate();
        let key = parse_public_key(&signer.public_key_hex()).expect("key");
        let at = DateTime::from_timestamp_nanos(1_700_000_000_000_000_000);
        let cp = signer.checkpoint(10, &[7; 32], at);
        assert!(checkpoint_is_signed_by(&cp, &key));
        let mut moved = cp.clone();
        moved.seq = 11;
        assert!(!checkpoint_is_signed_by(&moved, &key));
        let mut rehead = cp.clone();
        rehead.head_hash = hex::encode([8u8; 32]);
        assert!(!checkpoint_is_signed_by(&rehead, &key));
        let other = ChainSigner::generate();
        let other_key = parse_public_key(&other.public_key_hex()).expect("key");
        assert!(!checkpoint_is_signed_by(&cp, &other_key));
    }
}
