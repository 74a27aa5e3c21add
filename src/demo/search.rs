//! Step 1 of the demo: a clinic finds its patient by the four attributes.

use tonic::Request;

use crate::demo::terminals::{Terminals, access};
use crate::proto::{Consent, InsuredNumber, SearchOutcome, SearchPatientsRequest, Sex};

/// The search's id, which later calls name, and the insured number it found.
pub struct Found {
    pub search_id: String,
    pub patient: InsuredNumber,
}

pub async fn search(t: &mut Terminals) -> anyhow::Result<Found> {
    println!(
        "1. A clinic in Miyagi ({}) searches by the four attributes (kana, spaces as typed):",
        t.miyagi
    );
    let search = t
        .qualification_miyagi
        .search_patients(Request::new(SearchPatientsRequest {
            access: access(Consent::patient(), None),
            name: "やまだ　たろう".into(),
            birth_date: "1958-04-12".into(),
            sex: Sex::Male as i32,
            insurer_name: String::new(),
            address_fragment: "石巻".into(),
        }))
        .await?
        .into_inner();
    println!(
        "  {:?}: {} candidate(s), search_id {}",
        SearchOutcome::try_from(search.outcome).unwrap_or_default(),
        search.candidates.len(),
        search.search_id
    );
    for c in &search.candidates {
        let i = c.insured.clone().unwrap_or_default();
        println!(
            "    {} ({}) {} {} — {} 記号 {} 番号 {} 枝番 {}",
            c.name,
            c.name_kana,
            c.birth_date,
            c.insurer_name,
            i.insurer_number,
            i.symbol,
            i.number,
            i.branch
        );
    }
    let patient = search
        .candidates
        .first()
        .and_then(|c| c.insured.clone())
        .ok_or_else(|| anyhow::anyhow!("the demo patient was not found"))?;
    Ok(Found {
        search_id: search.search_id,
        patient,
    })
}
