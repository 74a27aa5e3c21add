//! Checkpoints as C2SP signed notes (c2sp.org/signed-note, c2sp.org/tlog-checkpoint)
//! and witnesses' cosignatures of them (c2sp.org/tlog-cosignature), so that any
//! tool of that ecosystem can read and check them.
//!
//! A checkpoint's body is three lines: the origin (`onshi.gateway/audit/<chain id>`),
//! the tree size in decimal, and the tree head in base64. Below a blank line come
//! signature lines `— <name> base64(key id ‖ signature)`: the log's, whose name is
//! the origin, and any witnesses'.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

use super::merkle::Hash;

/// The origin line's prefix; the chain id follows it.
pub const ORIGIN_PREFIX: &str = "onshi.gateway/audit/";
/// The signature type byte of an Ed25519 note signature (signed-note).
const ED25519: u8 = 0x01;
/// The signature type byte of an Ed25519 cosignature/v1 (tlog-cosignature).
const COSIGNATURE_V1: u8 = 0x04;
const SIGNATURE_PREFIX: &str = "\u{2014} ";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("not a signed note: {0}")]
    Malformed(String),
    #[error("not a checkpoint: {0}")]
    NotACheckpoint(String),
    #[error("no signature by {0} with the expected key")]
    Unsigned(String),
    #[error("the signature by {0} does not verify")]
    BadSignature(String),
}

/// The origin of a chain's checkpoints.
pub fn origin_of(chain_id: &str) -> String {
    format!("{ORIGIN_PREFIX}{chain_id}")
}

/// The first four bytes of SHA-256(name ‖ "\n" ‖ type ‖ public key).
pub fn key_id(name: &str, signature_type: u8, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([signature_type]);
    h.update(key.as_bytes());
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The three lines a checkpoint signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeHead {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl TreeHead {
    /// The note body, each line ending in a newline.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Reads a checkpoint body. Extension lines after the third are refused: this
    /// log writes none, and a witness signs only what it understood.
    pub fn parse(body: &str) -> Result<TreeHead, NoteError> {
        let bad = |m: &str| NoteError::NotACheckpoint(m.to_string());
        let lines: Vec<&str> = body
            .strip_suffix('\n')
            .ok_or_else(|| bad("the body must end in a newline"))?
            .split('\n')
            .collect();
        let [origin, size, root] = lines[..] else {
            return Err(bad(
                "the body must be exactly origin, tree size and root hash",
            ));
        };
        if origin.is_empty() {
            return Err(bad("the origin line is empty"));
        }
        let canonical = size == "0" || (!size.starts_with('0') && !size.starts_with('+'));
        let size: u64 =
            size.parse().ok().filter(|_| canonical).ok_or_else(|| {
                bad("the tree size is not a decimal number without leading zeros")
            })?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("the root hash is not 32 bytes in base64"))?;
        Ok(TreeHead {
            origin: origin.to_string(),
            size,
            root,
        })
    }
}

/// One signature line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_id: [u8; 4],
    /// What follows the key id: a signature, or a timestamped one for a cosignature.
    pub payload: Vec<u8>,
}

impl NoteSignature {
    fn line(&self) -> String {
        let mut bytes = self.key_id.to_vec();
        bytes.extend_from_slice(&self.payload);
        format!("{SIGNATURE_PREFIX}{} {}\n", self.name, B64.encode(bytes))
    }

    fn parse(line: &str) -> Result<NoteSignature, NoteError> {
        let bad = |m: String| NoteError::Malformed(m);
        let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or_else(|| {
            bad(format!(
                "a signature line must start with \"\u{2014} \": {line:?}"
            ))
        })?;
        let (name, sig) = rest.split_once(' ').ok_or_else(|| {
            bad(format!(
                "a signature line needs a name and a signature: {line:?}"
            ))
        })?;
        let bytes = B64
            .decode(sig)
            .map_err(|_| bad(format!("the signature of {name} is not base64")))?;
        if name.is_empty() || bytes.len() < 5 {
            return Err(bad(format!("the signature line of {name:?} is too short")));
        }
        Ok(NoteSignature {
            name: name.to_string(),
            key_id: [bytes[0], bytes[1], bytes[2], bytes[3]],
            payload: bytes[4..].to_vec(),
        })
    }
}

/// A note: its body and the signatures below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    pub body: String,
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    pub fn text(&self) -> String {
        let mut out = format!("{}\n", self.body);
        for s in &self.signatures {
            out.push_str(&s.line());
        }
        out
    }

    pub fn parse(text: &str) -> Result<SignedNote, NoteError> {
        let (body, signatures) = text
            .rsplit_once("\n\n")
            .ok_or_else(|| NoteError::Malformed("no blank line before the signatures".into()))?;
        let signatures = signatures
            .strip_suffix('\n')
            .ok_or_else(|| NoteError::Malformed("the note must end in a newline".into()))?;
        let signatures = signatures
            .split('\n')
            .map(NoteSignature::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SignedNote {
            body: format!("{body}\n"),
            signatures,
        })
    }

    pub fn tree_head(&self) -> Result<TreeHead, NoteError> {
        TreeHead::parse(&self.body)
    }

    fn find(&self, name: &str, id: [u8; 4]) -> Result<&NoteSignature, NoteError> {
        self.signatures
            .iter()
            .find(|s| s.name == name && s.key_id == id)
            .ok_or_else(|| NoteError::Unsigned(name.to_string()))
    }
}

/// The log's checkpoint of `head`, signed by the chain's key under the origin.
pub fn sign_checkpoint(key: &SigningKey, head: &TreeHead) -> SignedNote {
    let body = head.body();
    let signature = key.sign(body.as_bytes()).to_bytes().to_vec();
    SignedNote {
        body,
        signatures: vec![NoteSignature {
            name: head.origin.clone(),
            key_id: key_id(&head.origin, ED25519, &key.verifying_key()),
            payload: signature,
        }],
    }
}

/// Checks the log's signature (name = the origin) and returns the tree head.
pub fn verify_checkpoint(note: &SignedNote, key: &VerifyingKey) -> Result<TreeHead, NoteError> {
    let head = note.tree_head()?;
    let sig = note.find(&head.origin, key_id(&head.origin, ED25519, key))?;
    let bad = || NoteError::BadSignature(head.origin.clone());
    let sig = Signature::from_slice(&sig.payload).map_err(|_| bad())?;
    key.verify(note.body.as_bytes(), &sig).map_err(|_| bad())?;
    Ok(head)
}

fn cosigned_message(body: &str, time: u64) -> String {
    format!("cosignature/v1\ntime {time}\n{body}")
}

/// Adds a witness's cosignature/v1, made at `time` (seconds since the epoch).
pub fn cosign(note: &mut SignedNote, name: &str, key: &SigningKey, time: u64) {
    let signature = key.sign(cosigned_message(&note.body, time).as_bytes());
    let mut payload = time.to_be_bytes().to_vec();
    payload.extend_from_slice(&signature.to_bytes());
    note.signatures.push(NoteSignature {
        name: name.to_string(),
        key_id: key_id(name, COSIGNATURE_V1, &key.verifying_key()),
        payload,
    });
}

/// Checks the cosignature of witness `name`; returns when it was made.
pub fn verify_cosignature(
    note: &SignedNote,
    name: &str,
    key: &VerifyingKey,
) -> Result<u64, NoteError> {
    let sig = note.find(name, key_id(name, COSIGNATURE_V1, key))?;
    let bad = || NoteError::BadSignature(name.to_string());
    if sig.payload.len() != 8 + 64 {
        return Err(bad());
    }
    let (time, signature) = sig.payload.split_at(8);
    let time = u64::from_be_bytes(time.try_into().map_err(|_| bad())?);
    let signature = Signature::from_slice(signature).map_err(|_| bad())?;
    key.verify(cosigned_message(&note.body, time).as_bytes(), &signature)
        .map_err(|_| bad())?;
    Ok(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn head() -> TreeHead {
        TreeHead {
            origin: origin_of("0123456789abcdef"),
            size: 20852163,
            root: [7; 32],
        }
    }

    #[test]
    fn a_checkpoint_reads_back_and_verifies_under_its_key_only() {
        let note = sign_checkpoint(&key(1), &head());
        let text = note.text();
        assert!(text.starts_with("onshi.gateway/audit/0123456789abcdef\n20852163\n"));
        assert!(text.contains("\n\n\u{2014} onshi.gateway/audit/0123456789abcdef "));
        let back = SignedNote::parse(&text).expect("parses");
        assert_eq!(back, note);
        assert_eq!(
            verify_checkpoint(&back, &key(1).verifying_key()),
            Ok(head())
        );
        assert_eq!(
            verify_checkpoint(&back, &key(2).verifying_key()),
            Err(NoteError::Unsigned(head().origin))
        );
    }

    #[test]
    fn an_edited_checkpoint_fails_its_signature() {
        let text = sign_checkpoint(&key(1), &head()).text();
        let grown = SignedNote::parse(&text.replace("20852163", "20852164")).expect("parses");
        assert_eq!(
            verify_checkpoint(&grown, &key(1).verifying_key()),
            Err(NoteError::BadSignature(head().origin))
        );
    }

    #[test]
    fn the_key_id_follows_the_signed_note_rule() {
        // SHA-256("name\n" ‖ 0x01 ‖ key)[:4], computed independently here.
        let k = key(3).verifying_key();
        let mut input = b"example.com/log\n\x01".to_vec();
        input.extend_from_slice(k.as_bytes());
        let expected = &Sha256::digest(&input)[..4];
        assert_eq!(&key_id("example.com/log", 0x01, &k)[..], expected);
        assert_ne!(
            key_id("example.com/log", 0x04, &k),
            key_id("example.com/log", 0x01, &k)
        );
    }

    #[test]
    fn a_cosignature_verifies_with_its_time_and_not_for_another_head() {
        let mut note = sign_checkpoint(&key(1), &head());
        cosign(&mut note, "witness.example/w1", &key(9), 1_679_315_147);
        let back = SignedNote::parse(&note.text()).expect("parses");
        let w = key(9).verifying_key();
        assert_eq!(
            verify_cosignature(&back, "witness.example/w1", &w),
            Ok(1_679_315_147)
        );
        assert!(verify_checkpoint(&back, &key(1).verifying_key()).is_ok());
        let mut moved = back.clone();
        moved.body = moved.body.replace("20852163", "20852162");
        assert!(matches!(
            verify_cosignature(&moved, "witness.example/w1", &w),
            Err(NoteError::BadSignature(_))
        ));
        assert!(matches!(
            verify_cosignature(&back, "witness.example/w2", &w),
            Err(NoteError::Unsigned(_))
        ));
    }

    #[test]
    fn malformed_checkpoints_are_refused_with_what_is_wrong() {
        let cases = [
            ("onshi\n1\n", "exactly origin"),
            (
                "onshi\n01\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
                "leading zeros",
            ),
            (
                "onshi\n-1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
                "decimal",
            ),
            ("onshi\n1\nBwcH\n", "32 bytes"),
            (
                "onshi\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
                "newline",
            ),
            (
                "\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
                "origin",
            ),
        ];
        for (body, expected) in cases {
            let err = TreeHead::parse(body).expect_err(body);
            assert!(err.to_string().contains(expected), "{body:?}: {err}");
        }
        assert!(
            TreeHead::parse("onshi\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n").is_ok()
        );
        assert!(SignedNote::parse("onshi\n1\n").is_err());
        assert!(SignedNote::parse("a\n\n- a AAAAAAAA\n").is_err());
    }
}
