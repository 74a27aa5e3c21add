//! The RFC 9162 (Certificate Transparency v2) Merkle tree over a chain's record
//! hashes: the tree head, inclusion and consistency proofs, and their verification
//! (sections 2.1.1 to 2.1.4). A leaf is a record's 32-byte hash in chain order, so
//! leaf index `i` is the record with `seq = i + 1`.
//!
//! The proofs are generated from the full list of leaf hashes. That is O(n) hashing
//! per proof, which for the chains a replica writes (about a million records a
//! year at the busiest) is a few hundred milliseconds, with no state to keep in step
//! with the records; docs/audit.md says why this was chosen over stored subtrees.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// Why a proof does not prove what it claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not below the tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("the old tree size {old} is larger than the new {new}")]
    OldTreeLarger { old: u64, new: u64 },
    #[error("the proof has the wrong number of hashes for these tree sizes")]
    WrongLength,
    #[error("the proof leads to a different root")]
    RootMismatch,
}

/// The hash of a leaf: SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly below `n` (n ≥ 2).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// MTH over leaf hashes (already hashed with `leaf_hash`). The empty tree's head
/// is SHA-256 of nothing.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The audit path of leaf `index` in the tree of `leaves` (RFC 9162 2.1.3.1).
/// `None` if `index` is not a leaf of it.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    (index < leaves.len()).then(|| {
        let mut proof = Vec::new();
        path(index, leaves, &mut proof);
        proof
    })
}

fn path(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, &leaves[..k], out);
        out.push(root(&leaves[k..]));
    } else {
        path(m - k, &leaves[k..], out);
        out.push(root(&leaves[..k]));
    }
}

/// The proof that the tree of the first `old_size` leaves is a prefix of the tree
/// of all `leaves` (RFC 9162 2.1.4.1). `None` if `old_size` exceeds the tree.
/// Empty when `old_size` is 0 or the whole tree.
pub fn consistency_proof(leaves: &[Hash], old_size: usize) -> Option<Vec<Hash>> {
    if old_size > leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    if old_size > 0 {
        subproof(old_size, leaves, true, &mut proof);
    }
    Some(proof)
}

fn subproof(m: usize, leaves: &[Hash], whole: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !whole {
            out.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &leaves[..k], whole, out);
        out.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, out);
        out.push(root(&leaves[..k]));
    }
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose head is
/// `expected_root` (RFC 9162 2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    expected_root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if &r != expected_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Checks that the tree of `old_size` leaves with head `old_root` is a prefix of
/// the tree of `new_size` leaves with head `new_root` (RFC 9162 2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::OldTreeLarger {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == new_size || old_size == 0 {
        // Nothing to prove: the same tree, or the empty prefix of any tree.
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        if old_size == new_size && old_root != new_root {
            return Err(ProofError::RootMismatch);
        }
        return Ok(());
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength);
    };
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if &fr != old_root || &sr != new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The vectors are Certificate Transparency's reference ones (the eight leaves
    //! of its Merkle tree tests, their roots, and the audit and consistency paths
    //! its verifier is tested with).
    use super::*;

    fn h(s: &str) -> Hash {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).expect("hex");
        out
    }

    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];

    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    /// (leaf number from 1, tree size, audit path).
    const INCLUSION: [(usize, usize, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            3,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            2,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];

    /// (old size, new size, consistency proof).
    const CONSISTENCY: [(usize, usize, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];

    fn leaves() -> Vec<Hash> {
        LEAVES
            .iter()
            .map(|l| leaf_hash(&hex::decode(l).expect("hex")))
            .collect()
    }

    fn hashes(list: &[&str]) -> Vec<Hash> {
        list.iter().map(|s| h(s)).collect()
    }

    #[test]
    fn the_roots_of_the_reference_leaves_match() {
        let leaves = leaves();
        for (n, expected) in ROOTS.iter().enumerate() {
            assert_eq!(root(&leaves[..=n]), h(expected), "size {}", n + 1);
        }
        assert_eq!(
            hex::encode(root(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn inclusion_proofs_match_and_verify_against_the_reference_vectors() {
        let leaves = leaves();
        for (leaf, size, expected) in INCLUSION {
            let proof = inclusion_proof(&leaves[..size], leaf - 1).expect("a leaf");
            assert_eq!(proof, hashes(expected), "leaf {leaf} of {size}");
            let r = h(ROOTS[size - 1]);
            let index = (leaf - 1) as u64;
            verify_inclusion(index, size as u64, &leaves[leaf - 1], &proof, &r)
                .unwrap_or_else(|e| panic!("leaf {leaf} of {size}: {e}"));
        }
    }

    #[test]
    fn consistency_proofs_match_and_verify_against_the_reference_vectors() {
        let leaves = leaves();
        for (old, new, expected) in CONSISTENCY {
            let proof = consistency_proof(&leaves[..new], old).expect("a prefix");
            assert_eq!(proof, hashes(expected), "{old} to {new}");
            let (r1, r2) = (h(ROOTS[old - 1]), h(ROOTS[new - 1]));
            verify_consistency(old as u64, new as u64, &r1, &r2, &proof)
                .unwrap_or_else(|e| panic!("{old} to {new}: {e}"));
        }
    }

    #[test]
    fn a_corrupted_inclusion_proof_is_refused() {
        let leaves = leaves();
        let (leaf, size) = (6u64, 8u64);
        let proof = inclusion_proof(&leaves, 5).expect("leaf");
        let r = h(ROOTS[7]);
        let l = leaves[5];
        let ok = |i: u64, n: u64, l: &Hash, p: &[Hash], r: &Hash| verify_inclusion(i, n, l, p, r);
        assert!(ok(leaf - 1, size, &l, &proof, &r).is_ok());
        assert!(ok(leaf - 2, size, &l, &proof, &r).is_err(), "index - 1");
        assert!(ok(leaf, size, &l, &proof, &r).is_err(), "index + 1");
        assert!(ok(leaf - 1, size * 2, &l, &proof, &r).is_err(), "size * 2");
        assert!(ok(leaf - 1, size / 2, &l, &proof, &r).is_err(), "size / 2");
        assert!(
            ok(leaf - 1, size, &leaves[4], &proof, &r).is_err(),
            "wrong leaf"
        );
        assert!(
            ok(leaf - 1, size, &l, &proof, &h(ROOTS[6])).is_err(),
            "wrong root"
        );
        assert!(
            ok(leaf - 1, size, &l, &proof[..2], &r).is_err(),
            "truncated"
        );
        let mut longer = proof.clone();
        longer.push(r);
        assert!(
            ok(leaf - 1, size, &l, &longer, &r).is_err(),
            "trailing hash"
        );
        for i in 0..proof.len() {
            let mut flipped = proof.clone();
            flipped[i][0] ^= 8;
            assert!(ok(leaf - 1, size, &l, &flipped, &r).is_err(), "bit in {i}");
        }
        assert_eq!(
            ok(8, 8, &l, &proof, &r),
            Err(ProofError::IndexOutOfRange { index: 8, size: 8 })
        );
    }

    #[test]
    fn a_corrupted_consistency_proof_is_refused() {
        let leaves = leaves();
        let proof = consistency_proof(&leaves, 6).expect("prefix");
        let (r1, r2) = (h(ROOTS[5]), h(ROOTS[7]));
        let ok =
            |a: u64, b: u64, r1: &Hash, r2: &Hash, p: &[Hash]| verify_consistency(a, b, r1, r2, p);
        assert!(ok(6, 8, &r1, &r2, &proof).is_ok());
        assert!(ok(5, 8, &r1, &r2, &proof).is_err(), "old - 1");
        assert!(ok(7, 8, &r1, &r2, &proof).is_err(), "old + 1");
        assert!(ok(6, 16, &r1, &r2, &proof).is_err(), "new * 2");
        assert!(ok(6, 8, &r2, &r1, &proof).is_err(), "swapped roots");
        assert!(
            ok(6, 8, &r1, &h(ROOTS[6]), &proof).is_err(),
            "another new root"
        );
        assert!(ok(6, 8, &r1, &r2, &[]).is_err(), "empty proof");
        assert!(ok(6, 8, &r1, &r2, &proof[..2]).is_err(), "truncated");
        let mut longer = proof.clone();
        longer.push(r1);
        assert!(ok(6, 8, &r1, &r2, &longer).is_err(), "trailing hash");
        for i in 0..proof.len() {
            let mut flipped = proof.clone();
            flipped[i][0] ^= 16;
            assert!(ok(6, 8, &r1, &r2, &flipped).is_err(), "bit in {i}");
        }
        assert!(ok(8, 6, &r2, &r1, &[]).is_err(), "time travel");
        assert!(ok(8, 8, &r2, &r1, &[]).is_err(), "same size, other root");
        assert!(ok(8, 8, &r2, &r2, &[]).is_ok(), "same tree");
    }

    /// Beyond the vectors: every proof of every tree up to 33 leaves verifies,
    /// and a changed leaf in the old part is caught by the consistency proof.
    #[test]
    fn every_generated_proof_of_small_trees_verifies() {
        let all: Vec<Hash> = (0u32..33).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for n in 1..=all.len() {
            let tree = &all[..n];
            let r = root(tree);
            for i in 0..n {
                let p = inclusion_proof(tree, i).expect("leaf");
                verify_inclusion(i as u64, n as u64, &tree[i], &p, &r).expect("inclusion");
            }
            for m in 0..=n {
                let p = consistency_proof(tree, m).expect("prefix");
                let r1 = root(&tree[..m]);
                verify_consistency(m as u64, n as u64, &r1, &r, &p).expect("consistency");
                if m > 0 && m < n {
                    let mut forged = tree[..m].to_vec();
                    forged[m - 1][0] ^= 1;
                    let r1 = root(&forged);
                    assert!(verify_consistency(m as u64, n as u64, &r1, &r, &p).is_err());
                }
            }
        }
    }
}
