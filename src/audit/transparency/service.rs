//! `onshi.v1.TransparencyService`: this replica's chain as a Merkle tree, its
//! checkpoints signed on request with the chain's key, and proofs. It answers with
//! sizes, hashes and signatures only, so a witness may call it.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::note::origin_of;
use super::tree::{ChainTree, TreeError};
use crate::audit::ChainSigner;
use crate::domain::{Reason, Violation};
use crate::proto::transparency_service_server::TransparencyService;
use crate::proto::{
    ChainTreeInfo, CheckpointWithProof, GetChainInfoRequest, GetCheckpointRequest,
    GetInclusionProofRequest, InclusionProof,
};
use crate::status::status_of;
use crate::store::AuditStore;

pub struct TransparencyServer {
    store: Arc<dyn AuditStore>,
    signer: ChainSigner,
}

impl TransparencyServer {
    /// Serves the chain `signer` writes into `store`.
    pub fn new(store: Arc<dyn AuditStore>, signer: ChainSigner) -> Self {
        TransparencyServer { store, signer }
    }

    /// The tree of this replica's chain, if `chain_id` names it (or is empty).
    async fn tree(&self, chain_id: &str) -> Result<ChainTree, Status> {
        let own = self.signer.chain_id();
        if !chain_id.is_empty() && chain_id != own {
            return Err(status_of(
                &Violation::new(
                    Reason::ChainNotServedHere,
                    "chain_id",
                    format!(
                        "this replica writes and signs chain {own}, not {chain_id}: ask the \
                         replica whose audit key names that chain"
                    ),
                )
                .with("chain_id", own),
            ));
        }
        ChainTree::load(self.store.as_ref(), own)
            .await
            .map_err(|e| status_of(&tree_violation(&e)))
    }
}

/// A tree that cannot be built or asked, as a refusal.
pub fn tree_violation(e: &TreeError) -> Violation {
    match e {
        TreeError::Pruned { .. } => Violation::new(Reason::TreePruned, "", e.to_string()),
        TreeError::TooLarge { .. } => Violation::new(Reason::TreeSizeInvalid, "", e.to_string()),
        TreeError::Store(_) | TreeError::Gap { .. } => {
            Violation::new(Reason::TreeUnavailable, "", e.to_string())
        }
    }
}

fn size_invalid(field: &str, description: String) -> Status {
    status_of(&Violation::new(Reason::TreeSizeInvalid, field, description))
}

/// The size asked for, or the newest; never beyond the tree.
fn size_of(tree: &ChainTree, asked: u64, field: &str) -> Result<u64, Status> {
    match asked {
        0 => Ok(tree.size()),
        n if n <= tree.size() => Ok(n),
        n => Err(size_invalid(
            field,
            format!(
                "{field} {n} is beyond the tree, which has {} records",
                tree.size()
            ),
        )),
    }
}

#[tonic::async_trait]
impl TransparencyService for TransparencyServer {
    async fn get_chain_info(
        &self,
        _request: Request<GetChainInfoRequest>,
    ) -> Result<Response<ChainTreeInfo>, Status> {
        let tree = self.tree("").await?;
        Ok(Response::new(ChainTreeInfo {
            chain_id: tree.chain_id.clone(),
            public_key: self.signer.public_key_hex(),
            origin: origin_of(&tree.chain_id),
            tree_size: tree.size(),
        }))
    }

    async fn get_checkpoint(
        &self,
        request: Request<GetCheckpointRequest>,
    ) -> Result<Response<CheckpointWithProof>, Status> {
        let r = request.into_inner();
        let tree = self.tree(&r.chain_id).await?;
        let size = size_of(&tree, r.tree_size, "tree_size")?;
        if r.consistent_with_size > size {
            return Err(size_invalid(
                "consistent_with_size",
                format!(
                    "consistent_with_size {} is beyond the tree of {size} records: a log never \
                     shrinks, so a witness that saw more has seen another log",
                    r.consistent_with_size
                ),
            ));
        }
        let fail = |e: TreeError| status_of(&tree_violation(&e));
        let note = tree
            .checkpoint(self.signer.signing_key(), size)
            .map_err(fail)?;
        let proof = tree
            .consistency(r.consistent_with_size, size)
            .map_err(fail)?;
        Ok(Response::new(CheckpointWithProof {
            chain_id: tree.chain_id.clone(),
            checkpoint: note.text(),
            tree_size: size,
            consistent_with_size: r.consistent_with_size,
            consistency_proof: proof.iter().map(|h| h.to_vec()).collect(),
        }))
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<GetInclusionProofRequest>,
    ) -> Result<Response<InclusionProof>, Status> {
        let r = request.into_inner();
        let tree = self.tree(&r.chain_id).await?;
        let size = size_of(&tree, r.tree_size, "tree_size")?;
        if r.seq == 0 || r.seq > size {
            return Err(size_invalid(
                "seq",
                format!(
                    "seq {} is not a record of the tree of {size} records",
                    r.seq
                ),
            ));
        }
        let fail = |e: TreeError| status_of(&tree_violation(&e));
        let (leaf, proof) = tree.inclusion(r.seq, size).map_err(fail)?;
        let note = tree
            .checkpoint(self.signer.signing_key(), size)
            .map_err(fail)?;
        let record = self
            .store
            .chain_records(&tree.chain_id, r.seq - 1, 1)
            .await
            .map_err(|e| fail(TreeError::Store(e)))?;
        let record_hash = record
            .first()
            .and_then(|s| crate::audit::chain::parse_hash(&s.hash))
            .filter(|h| super::merkle::leaf_hash(h) == leaf)
            .ok_or_else(|| {
                fail(TreeError::Gap {
                    chain_id: tree.chain_id.clone(),
                    seq: r.seq,
                })
            })?;
        Ok(Response::new(InclusionProof {
            chain_id: tree.chain_id.clone(),
            seq: r.seq,
            tree_size: size,
            record_hash: record_hash.to_vec(),
            proof: proof.iter().map(|h| h.to_vec()).collect(),
            checkpoint: note.text(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn each_tree_failure_has_its_reason_and_code() {
        let cases = [
            (
                TreeError::Store(StoreError::Unavailable("down".into())),
                "TREE_UNAVAILABLE",
                tonic::Code::Unavailable,
            ),
            (
                TreeError::Pruned {
                    chain_id: "c".into(),
                    first_seq: 1001,
                },
                "TREE_PRUNED",
                tonic::Code::FailedPrecondition,
            ),
            (
                TreeError::TooLarge {
                    chain_id: "c".into(),
                    size: 3,
                    asked: 4,
                },
                "TREE_SIZE_INVALID",
                tonic::Code::InvalidArgument,
            ),
        ];
        for (e, reason, code) in cases {
            let v = tree_violation(&e);
            assert_eq!(v.reason.as_str(), reason);
            assert_eq!(status_of(&v).code(), code, "{reason}");
        }
    }
}
