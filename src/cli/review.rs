//! `audit review`: the review of accesses made under the exemption, through the
//! operators' listener (a `reviewer` or `auditor` certificate with TLS): `list`
//! prints the queue of unreviewed accesses, oldest first, with their age; `record`
//! appends an outcome to the access log.

use clap::{Args, Subcommand, ValueEnum};
use tokio_stream::StreamExt;

use crate::cli::admin_connection::AdminArgs;
use crate::proto::audit_service_client::AuditServiceClient;
use crate::proto::{
    AccessLogEntry, ListUnreviewedRequest, RecordReviewOutcomeRequest, ReviewOutcome,
};

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// The accesses under the exemption without an outcome yet, oldest first.
    List(ReviewListArgs),
    /// Record the outcome of the review of one access (a new record on the chain).
    Record(ReviewRecordArgs),
}

#[derive(Debug, Args)]
pub struct ReviewListArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    /// Only this facility's accesses (10 digits).
    #[arg(long)]
    pub facility: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutcomeArg {
    Justified,
    NotJustified,
    NeedsFollowUp,
}

#[derive(Debug, Args)]
pub struct ReviewRecordArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    /// The access record reviewed (its record_id).
    #[arg(long)]
    pub record: String,
    #[arg(long, value_enum)]
    pub outcome: OutcomeArg,
    /// Why; required unless the access is found justified.
    #[arg(long, default_value = "")]
    pub note: String,
}

pub async fn run(command: ReviewCommand) -> anyhow::Result<()> {
    match command {
        ReviewCommand::List(args) => list(args).await,
        ReviewCommand::Record(args) => record(args).await,
    }
}

async fn list(args: ReviewListArgs) -> anyhow::Result<()> {
    let mut client = AuditServiceClient::new(args.admin.connect().await?);
    let request = ListUnreviewedRequest {
        facility_code: args.facility.unwrap_or_default(),
        paging: None,
    };
    let mut pages = client.list_unreviewed(request).await?.into_inner();
    println!("record_id\tat\tage_days\tfacility\tcategory\tmethod");
    while let Some(page) = pages.next().await {
        for entry in page?.entries {
            println!("{}", line(&entry));
        }
    }
    Ok(())
}

fn line(e: &AccessLogEntry) -> String {
    let at =
        e.at.as_ref()
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
    format!(
        "{}\t{at}\t{}\t{}\t{}\t{}",
        e.record_id,
        e.age_seconds / 86_400,
        e.facility_code,
        e.exemption_category,
        e.method
    )
}

async fn record(args: ReviewRecordArgs) -> anyhow::Result<()> {
    let mut client = AuditServiceClient::new(args.admin.connect().await?);
    let outcome = match args.outcome {
        OutcomeArg::Justified => ReviewOutcome::Justified,
        OutcomeArg::NotJustified => ReviewOutcome::NotJustified,
        OutcomeArg::NeedsFollowUp => ReviewOutcome::NeedsFollowUp,
    };
    let reply = client
        .record_review_outcome(RecordReviewOutcomeRequest {
            record_id: args.record,
            outcome: outcome as i32,
            note: args.note,
        })
        .await?
        .into_inner();
    println!("recorded {} by {}", reply.outcome_record_id, reply.reviewer);
    Ok(())
}
