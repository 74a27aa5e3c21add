//! `audit witness`: run by another organisation against each replica's operators'
//! listener. It fetches the chain's newest checkpoint with the proof that it
//! extends the last one this witness kept, checks both against the chain's key
//! pinned on the command line, cosigns it (C2SP tlog-cosignature) with its own key
//! and keeps it. A log that no longer extends what the witness saw is refused
//! loudly (exit 3), and the checkpoint it offered is kept as evidence.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use crate::audit::ChainSigner;
use crate::audit::signer::{chain_id_of, parse_public_key};
use crate::audit::transparency::merkle::{Hash, verify_consistency};
use crate::audit::transparency::note::{
    SignedNote, TreeHead, cosign, origin_of, verify_checkpoint, verify_cosignature,
};
use crate::cli::InvalidInput;
use crate::cli::admin_connection::AdminArgs;
use crate::proto::transparency_service_client::TransparencyServiceClient;
use crate::proto::{GetChainInfoRequest, GetCheckpointRequest};

/// The file, in a chain's folder, holding the newest checkpoint this witness cosigned.
pub const LATEST: &str = "latest.checkpoint";

#[derive(Debug, Args)]
pub struct AuditWitnessArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    /// The chain's public key (hex), obtained from the gateway's operators out of
    /// band (`audit verify` prints it): checkpoints must verify under it.
    #[arg(long = "log-key", value_name = "HEX")]
    pub log_key: String,
    /// Where the witness keeps its key (`witness.key`, created on first run) and,
    /// per chain, the checkpoints it cosigned.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The witness's name in its cosignatures, a schema-less URL (default
    /// `onshi.gateway/witness/<id of its key>`).
    #[arg(long)]
    pub name: Option<String>,
}

/// A checkpoint that extends what the witness saw, or why the log is refused.
type Checked = Result<(SignedNote, TreeHead), String>;

fn invalid(flag: &str, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(InvalidInput {
        flag: flag.to_string(),
        message: message.into(),
    })
}

/// Runs once; `Ok(false)` when the log was refused.
pub async fn witness(args: AuditWitnessArgs) -> anyhow::Result<bool> {
    let log_key = parse_public_key(&args.log_key)
        .ok_or_else(|| invalid("--log-key", "not an Ed25519 public key in hex (64 digits)"))?;
    let key = ChainSigner::load_or_generate(&args.dir.join("witness.key"))?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("onshi.gateway/witness/{}", key.chain_id()));
    println!("witness {name} key {}", key.public_key_hex());
    let chain_id = chain_id_of(&log_key);
    let folder = args.dir.join(&chain_id);
    let last = last_seen(&folder, &log_key, &name, &key)?;
    let channel = args.admin.connect().await?;
    let mut client = TransparencyServiceClient::new(channel);
    let info = client
        .get_chain_info(GetChainInfoRequest {})
        .await
        .map_err(|s| failed("asking the replica for its chain", &s))?
        .into_inner();
    let checked = if info.chain_id != chain_id {
        Err(format!(
            "the replica at {} writes chain {} (key {}), not the pinned chain {chain_id}",
            args.admin.admin, info.chain_id, info.public_key
        ))
    } else {
        fetch_and_check(&mut client, &chain_id, &log_key, last.as_ref(), &folder).await?
    };
    match checked {
        Err(why) => {
            eprintln!("REFUSED: chain {chain_id}: {why}");
            Ok(false)
        }
        Ok((mut note, head)) => {
            let from = last.map_or(0, |h| h.size);
            cosign(&mut note, &name, key.signing_key(), now_secs());
            keep(&folder, &format!("{}.checkpoint", head.size), &note.text())?;
            keep(&folder, LATEST, &note.text())?;
            println!(
                "chain {chain_id}: {} records, consistent with the {from} seen before; cosigned as {name} and kept in {}",
                head.size,
                folder.join(LATEST).display()
            );
            Ok(true)
        }
    }
}

/// A refused or failed call, with the reason the gateway gave.
fn failed(what: &str, status: &tonic::Status) -> anyhow::Error {
    use tonic_types::StatusExt;
    let reason = status
        .get_details_error_info()
        .map_or_else(String::new, |i| format!(" {}", i.reason));
    anyhow::anyhow!("{what}: {:?}{reason}: {}", status.code(), status.message())
}

fn now_secs() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0)
}

/// The tree head this witness last cosigned for the chain, after checking that the
/// file still carries both the log's signature and this witness's own.
fn last_seen(
    folder: &Path,
    log_key: &ed25519_dalek::VerifyingKey,
    name: &str,
    key: &ChainSigner,
) -> anyhow::Result<Option<TreeHead>> {
    let path = folder.join(LATEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let note = SignedNote::parse(&text).with_context(|| format!("reading {}", path.display()))?;
    let head = verify_checkpoint(&note, log_key)
        .with_context(|| format!("{} is not signed by the chain's key", path.display()))?;
    verify_cosignature(&note, name, &key.signing_key().verifying_key()).with_context(|| {
        format!(
            "{} does not carry this witness's cosignature",
            path.display()
        )
    })?;
    Ok(Some(head))
}

/// Fetches the newest checkpoint and checks it against `last`. A refused one is
/// kept in the chain's folder as evidence.
async fn fetch_and_check(
    client: &mut TransparencyServiceClient<tonic::transport::Channel>,
    chain_id: &str,
    log_key: &ed25519_dalek::VerifyingKey,
    last: Option<&TreeHead>,
    folder: &Path,
) -> anyhow::Result<Checked> {
    let from = last.map_or(0, |h| h.size);
    let reply = client
        .get_checkpoint(GetCheckpointRequest {
            chain_id: chain_id.to_string(),
            tree_size: 0,
            consistent_with_size: from,
        })
        .await;
    let reply = match reply {
        Ok(r) => r.into_inner(),
        // The log is smaller than what this witness saw: it lost records.
        Err(status) if status.code() == tonic::Code::InvalidArgument => {
            return Ok(Err(format!(
                "the replica cannot extend the {from} records seen before: {}",
                status.message()
            )));
        }
        Err(status) => return Err(failed("fetching the checkpoint", &status)),
    };
    let refuse = |why: String| {
        let evidence = format!("refused-{}-{}.checkpoint", reply.tree_size, now_secs());
        keep(folder, &evidence, &reply.checkpoint)?;
        Ok(Err(format!(
            "{why}; the checkpoint offered is kept as {}",
            folder.join(evidence).display()
        )))
    };
    let Ok(note) = SignedNote::parse(&reply.checkpoint) else {
        return refuse("the checkpoint is not a signed note".into());
    };
    let head = match verify_checkpoint(&note, log_key) {
        Ok(head) if head.origin == origin_of(chain_id) => head,
        Ok(head) => return refuse(format!("the checkpoint's origin is {}", head.origin)),
        Err(e) => return refuse(format!("the checkpoint does not verify: {e}")),
    };
    let proof: Option<Vec<Hash>> = reply
        .consistency_proof
        .iter()
        .map(|h| Hash::try_from(h.as_slice()).ok())
        .collect();
    // The first checkpoint seen has nothing to be consistent with.
    let Some(old_root) = last.map(|h| h.root) else {
        return Ok(Ok((note, head)));
    };
    let consistent = proof
        .ok_or_else(|| "a proof hash is not 32 bytes".to_string())
        .and_then(|p| {
            verify_consistency(from, head.size, &old_root, &head.root, &p)
                .map_err(|e| e.to_string())
        });
    if let Err(e) = consistent {
        return refuse(format!(
            "the checkpoint at {} records is not consistent with the one at {from} seen before ({e}): the log was rewritten",
            head.size
        ));
    }
    Ok(Ok((note, head)))
}

/// Writes `name` in `folder` atomically.
fn keep(folder: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    let tmp = folder.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, folder.join(name)).with_context(|| format!("keeping {name}"))?;
    Ok(())
}
