//! The request mix of the side-by-side load benchmark (`deploy/bench/run.sh`):
//! gRPC request bodies (length-prefixed protobuf frames) for `h2load`, which sends
//! one body per process, so the mix is spread over one `h2load` process per profile.
//!
//! Profiles, in an order where any prefix keeps the mix (7 in 10 lookups by insured
//! number, 1 an attribute search, 1 a medical read, 1 a denial), each from another
//! facility (fixture facilities of Miyagi and Fukushima, the areas the run
//! activates) and another valid patient of the simulator's population:
//! - `LookupQualification` by insured number (expected OK);
//! - `SearchPatients` by the four attributes (OK);
//! - `GetDrugHistory` / `GetHealthCheckups` by insured number (OK);
//! - denials, alternating: a facility in Tokyo, outside the activated areas
//!   (`AREA_NOT_ACTIVATED`), and an insurer number with a wrong check digit
//!   (`INSURER_NUMBER_CHECK_DIGIT`). Both are audited like any call.
//!
//! `cargo bench --bench loadmix -- --out DIR [--profiles N] [--seed S] [--population P]`
//! writes `DIR/N.bin` and `DIR/profiles.tsv` (index, path, facility, kind,
//! expected outcome). With `--check http://HOST:PORT` it then sends every profile
//! once through a gRPC client and fails unless each got its expected outcome, so a
//! run measures the mix it claims to. Under `cargo test` it writes the frames to a
//! temporary directory and checks that each decodes back to its request.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use onshi_gateway::activation::registry::{fixture_facility, synthetic_municipalities};
use onshi_gateway::domain::facility::FacilityKind;
use onshi_gateway::proto::medical_information_service_client::MedicalInformationServiceClient;
use onshi_gateway::proto::qualification_service_client::QualificationServiceClient;
use onshi_gateway::proto::*;
use onshi_gateway::simulator::{Person, Population};
use onshi_gateway::tls::identity::DEV_FACILITY_HEADER;
use prost::Message;

/// One request of the mix, typed (for the check) and as the path it is posted to.
#[derive(Clone)]
enum Call {
    Lookup(LookupQualificationRequest),
    Search(SearchPatientsRequest),
    Drugs(GetDrugHistoryRequest),
    Checkups(GetHealthCheckupsRequest),
}

struct Profile {
    facility: String,
    call: Call,
    kind: &'static str,
    /// `OK` or the denial's ErrorInfo reason.
    expected: &'static str,
}

impl Call {
    fn path(&self) -> &'static str {
        match self {
            Call::Lookup(_) => "/onshi.v1.QualificationService/LookupQualification",
            Call::Search(_) => "/onshi.v1.QualificationService/SearchPatients",
            Call::Drugs(_) => "/onshi.v1.MedicalInformationService/GetDrugHistory",
            Call::Checkups(_) => "/onshi.v1.MedicalInformationService/GetHealthCheckups",
        }
    }

    fn encode(&self) -> Vec<u8> {
        let body = match self {
            Call::Lookup(m) => m.encode_to_vec(),
            Call::Search(m) => m.encode_to_vec(),
            Call::Drugs(m) => m.encode_to_vec(),
            Call::Checkups(m) => m.encode_to_vec(),
        };
        // gRPC's length-prefixed message: uncompressed flag, big-endian length.
        let mut frame = Vec::with_capacity(body.len() + 5);
        frame.push(0);
        frame.extend_from_slice(&u32::try_from(body.len()).expect("small").to_be_bytes());
        frame.extend_from_slice(&body);
        frame
    }
}

fn access() -> Option<AccessContext> {
    Some(AccessContext::for_care(
        "bench-staff",
        StaffRole::Doctor,
        Consent::patient(),
        Some(Identification::insured_number_known()),
    ))
}

/// Facilities of the activated areas (Miyagi 04, Fukushima 07), clinics and pharmacies.
fn activated_facilities() -> Vec<String> {
    let mut out = Vec::new();
    for m in synthetic_municipalities()
        .iter()
        .filter(|m| m.prefecture == 4 || m.prefecture == 7)
    {
        out.push(fixture_facility(&m.code, FacilityKind::Medical));
        out.push(fixture_facility(&m.code, FacilityKind::Pharmacy));
    }
    out
}

fn profile(i: usize, facility: String, person: &Person) -> Profile {
    let insured = Some(person.insured_number());
    let (kind, expected, call, facility) = match i % 10 {
        2 => (
            "search",
            "OK",
            Call::Search(SearchPatientsRequest {
                access: Some(AccessContext::for_care(
                    "bench-staff",
                    StaffRole::Doctor,
                    Consent::patient(),
                    None,
                )),
                name: person.name.clone(),
                birth_date: person.birth_date.format("%Y-%m-%d").to_string(),
                sex: person.sex as i32,
                insurer_name: person.insurer_name.clone(),
                address_fragment: String::new(),
            }),
            facility,
        ),
        5 if i % 20 == 5 => (
            "drug-history",
            "OK",
            Call::Drugs(GetDrugHistoryRequest {
                access: access(),
                insured,
                ..Default::default()
            }),
            facility,
        ),
        5 => (
            "checkups",
            "OK",
            Call::Checkups(GetHealthCheckupsRequest {
                access: access(),
                insured,
                ..Default::default()
            }),
            facility,
        ),
        8 if i % 20 == 8 => (
            "denied-area",
            "AREA_NOT_ACTIVATED",
            lookup(insured),
            // A clinic in 新宿区, Tokyo: outside the activated prefectures.
            fixture_facility("13104", FacilityKind::Medical),
        ),
        8 => {
            let mut wrong = person.insured_number();
            wrong.insurer_number = wrong_check_digit(&wrong.insurer_number);
            (
                "denied-check-digit",
                "INSURER_NUMBER_CHECK_DIGIT",
                lookup(Some(wrong)),
                facility,
            )
        }
        _ => ("lookup", "OK", lookup(insured), facility),
    };
    Profile {
        facility,
        call,
        kind,
        expected,
    }
}

fn lookup(insured: Option<InsuredNumber>) -> Call {
    Call::Lookup(LookupQualificationRequest {
        access: access(),
        insured,
        birth_date: String::new(),
    })
}

/// The insurer number with its last (check) digit changed.
fn wrong_check_digit(insurer: &str) -> String {
    let mut digits: Vec<u8> = insurer.bytes().collect();
    if let Some(last) = digits.last_mut() {
        *last = b'0' + (*last - b'0' + 1) % 10;
    }
    String::from_utf8(digits).expect("ascii digits")
}

fn profiles(count: usize, seed: u64, population: usize) -> Vec<Profile> {
    let people = Population::generate(seed, population);
    let valid: Vec<&Person> = people
        .persons()
        .iter()
        .filter(|p| p.status == QualificationStatus::Valid as i32 && !p.insurer_name.is_empty())
        .collect();
    let facilities = activated_facilities();
    // Spread over the population and the facilities, not their first few.
    let step = (valid.len() / count.max(1)).max(1);
    let fstep = (facilities.len() / count.max(1)).max(1);
    (0..count)
        .map(|i| {
            let person = valid[(i * step) % valid.len()];
            let facility = facilities[(i * fstep) % facilities.len()].clone();
            profile(i, facility, person)
        })
        .collect()
}

fn write(dir: &Path, profiles: &[Profile]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut tsv = String::from("index\tpath\tfacility\tkind\texpected\n");
    for (i, p) in profiles.iter().enumerate() {
        std::fs::write(dir.join(format!("{i}.bin")), p.call.encode())?;
        let _ = writeln!(
            tsv,
            "{i}\t{}\t{}\t{}\t{}",
            p.call.path(),
            p.facility,
            p.kind,
            p.expected
        );
    }
    std::fs::write(dir.join("profiles.tsv"), tsv)
}

fn request<M>(message: M, facility: &str) -> tonic::Request<M> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut()
        .insert(DEV_FACILITY_HEADER, facility.parse().expect("ascii"));
    req
}

/// `OK` or the ErrorInfo reason (else the status code) of one call.
fn outcome<T>(reply: Result<tonic::Response<T>, tonic::Status>) -> String {
    match reply {
        Ok(_) => "OK".into(),
        Err(status) => tonic_types::StatusExt::get_details_error_info(&status)
            .map_or_else(|| format!("{:?}", status.code()), |info| info.reason),
    }
}

async fn check(target: &str, profiles: &[Profile]) -> Result<(), String> {
    let channel = tonic::transport::Endpoint::from_shared(target.to_string())
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("{target}: {e}"))?;
    let mut q = QualificationServiceClient::new(channel.clone());
    let mut m = MedicalInformationServiceClient::new(channel);
    let mut wrong = Vec::new();
    for (i, p) in profiles.iter().enumerate() {
        let f = p.facility.as_str();
        let got = match p.call.clone() {
            Call::Lookup(r) => outcome(q.lookup_qualification(request(r, f)).await),
            Call::Search(r) => outcome(q.search_patients(request(r, f)).await),
            Call::Drugs(r) => outcome(m.get_drug_history(request(r, f)).await),
            Call::Checkups(r) => outcome(m.get_health_checkups(request(r, f)).await),
        };
        if got != p.expected {
            wrong.push(format!(
                "profile {i} ({}): {got}, expected {}",
                p.kind, p.expected
            ));
        }
    }
    match wrong.is_empty() {
        true => Ok(()),
        false => Err(wrong.join("\n")),
    }
}

/// Under `cargo test`: every frame decodes back to its request.
fn self_test() {
    let dir = std::env::temp_dir().join(format!("onshi-loadmix-{}", std::process::id()));
    let mix = profiles(20, 20220317, 2_000);
    write(&dir, &mix).expect("frames written");
    for (i, p) in mix.iter().enumerate() {
        let frame = std::fs::read(dir.join(format!("{i}.bin"))).expect("frame");
        let len = u32::from_be_bytes(frame[1..5].try_into().expect("4 bytes")) as usize;
        assert_eq!((frame[0], len), (0, frame.len() - 5), "profile {i}: prefix");
        let body = &frame[5..];
        let same = match &p.call {
            Call::Lookup(m) => LookupQualificationRequest::decode(body).ok().as_ref() == Some(m),
            Call::Search(m) => SearchPatientsRequest::decode(body).ok().as_ref() == Some(m),
            Call::Drugs(m) => GetDrugHistoryRequest::decode(body).ok().as_ref() == Some(m),
            Call::Checkups(m) => GetHealthCheckupsRequest::decode(body).ok().as_ref() == Some(m),
        };
        assert!(same, "profile {i} ({}) does not decode back", p.kind);
    }
    let kinds: std::collections::HashSet<_> = mix.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds.len(),
        6,
        "every kind of call in 20 profiles: {kinds:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "loadmix: {} frames decode back to their requests",
        mix.len()
    );
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(out) = arg(&args, "--out").map(PathBuf::from) else {
        return self_test();
    };
    let number = |name: &str, default: usize| {
        arg(&args, name).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: not a number: {v}"))
        })
    };
    let mix = profiles(
        number("--profiles", 50).max(1),
        number("--seed", 20220317) as u64,
        number("--population", 100_000),
    );
    write(&out, &mix).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
    if let Some(target) = arg(&args, "--check") {
        if let Err(e) = check(&target, &mix).await {
            eprintln!("loadmix: the mix did not get its expected outcomes at {target}:\n{e}");
            std::process::exit(1);
        }
        println!("loadmix: {} profiles checked at {target}", mix.len());
    }
}
