//! The check after every fault, against the store itself: the log verifies, every
//! answer that carried data names a record that is in it, no record is there twice
//! and no two answers name the same record.

use std::collections::HashMap;

use onshi_gateway::audit::verify::verify_store;
use onshi_gateway::store::{self, StoreLocation};

use crate::load::{Calls, Outcome};

#[derive(Debug, Default)]
pub struct AuditCheck {
    /// Records in the store, over all chains.
    pub stored: usize,
    pub chains: usize,
    /// Answers with data that named no record, or one the store does not have.
    pub ok_without_record: usize,
    /// Refusals that named a record the store does not have.
    pub refusals_named_missing: usize,
    /// Record ids stored more than once, plus ids named by more than one answer.
    pub duplicates: usize,
    /// Chains that do not verify, as the verifier reported them.
    pub broken: Vec<String>,
    /// A few of the answers above, for the failure message.
    pub examples: Vec<Outcome>,
}

impl AuditCheck {
    /// Panics with `context` unless the store kept its promise to every outcome.
    #[track_caller]
    pub fn assert_kept(&self, context: &str) {
        assert!(
            self.broken.is_empty(),
            "{context}: chains broken: {:?}",
            self.broken
        );
        assert_eq!(
            self.ok_without_record,
            0,
            "{context}: answers with data but no stored record, e.g. {}",
            Calls::examples(&self.examples)
        );
        assert_eq!(
            self.refusals_named_missing,
            0,
            "{context}: refusals naming a record not stored, e.g. {}",
            Calls::examples(&self.examples)
        );
        assert_eq!(self.duplicates, 0, "{context}: duplicated record ids");
    }
}

/// Reads every chain of the store at `location` and checks `outcomes` against it.
pub async fn check<'a>(
    location: &StoreLocation,
    outcomes: impl IntoIterator<Item = &'a Outcome>,
) -> AuditCheck {
    let store = store::open(location)
        .await
        .unwrap_or_else(|e| panic!("the store at {location} reopens: {e}"));
    let mut times_stored: HashMap<String, usize> = HashMap::new();
    let chains = store.chains().await.expect("chains readable");
    for chain in &chains {
        let mut after = 0;
        loop {
            let page = store
                .chain_records(&chain.chain_id, after, 5000)
                .await
                .expect("records readable");
            let Some(last) = page.last() else { break };
            after = last.seq;
            for r in page {
                *times_stored.entry(r.record.id).or_insert(0) += 1;
            }
        }
    }
    let mut out = AuditCheck {
        stored: times_stored.values().sum(),
        chains: chains.len(),
        duplicates: times_stored.values().filter(|&&n| n > 1).count(),
        ..AuditCheck::default()
    };
    let mut named: HashMap<&str, usize> = HashMap::new();
    for o in outcomes {
        let stored = o
            .record
            .as_ref()
            .is_some_and(|id| times_stored.contains_key(id));
        if o.data && !stored {
            out.ok_without_record += 1;
        }
        if !o.data && o.record.is_some() && !stored {
            out.refusals_named_missing += 1;
        }
        if !stored && (o.data || o.record.is_some()) && out.examples.len() < 5 {
            out.examples.push(o.clone());
        }
        if let Some(id) = &o.record {
            *named.entry(id.as_str()).or_insert(0) += 1;
        }
    }
    out.duplicates += named.values().filter(|&&n| n > 1).count();
    let reports = verify_store(store.as_ref(), &[])
        .await
        .expect("verification runs");
    out.broken = reports
        .iter()
        .filter(|r| !r.is_intact())
        .map(|r| format!("{r:?}"))
        .collect();
    store.close().await;
    out
}
