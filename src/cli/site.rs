//! `onshi-gateway site …`: temporary sites (first-aid posts, mobile clinics, mobile
//! pharmacies, relief teams), each command a call to the site service on a running
//! gateway's operators' listener (`--admin`), like `activation …`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use tonic::transport::Channel;

use crate::cli::activation::{Outcome, instant, invalid, refused, shown, timestamp};
use crate::cli::admin_connection::AdminArgs;
use crate::proto::site_admin_service_client::SiteAdminServiceClient;
use crate::proto::{self, SiteKind};

#[derive(Debug, Subcommand)]
pub enum SiteCommand {
    /// Register a site under an activation, in a municipality it covers now.
    ///
    /// Noto 2024: --activation ID --kind first-aid-post --municipality 17204
    /// --name "輪島中学校 救護所" --sponsor 1710110013 --contact 0768-00-0000 --by ishikawa-1
    Register(RegisterArgs),
    /// Move the end of an open site's window (inside its area's window).
    Renew(RenewArgs),
    /// Close a site: its calls are refused from now on, on every replica.
    Close(CloseArgs),
    /// One site with every revision (register, renew, close, certificates).
    Show(SiteIdArgs),
    /// Every site, or one activation's.
    List(ListArgs),
    /// Sign a site's CSR (PEM): the certificate is written to --out, the key
    /// stays at the site.
    IssueCert(IssueCertArgs),
    /// Whether a site was allowed at an instant, as known then. Exit status 4 if not.
    Check(CheckArgs),
    /// Write the site CA's revocation list (PEM) to --out.
    Crl(CrlArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    FirstAidPost,
    MobileClinic,
    MobilePharmacy,
    ReliefTeam,
}

impl Kind {
    fn wire(self) -> SiteKind {
        match self {
            Kind::FirstAidPost => SiteKind::FirstAidPost,
            Kind::MobileClinic => SiteKind::MobileClinic,
            Kind::MobilePharmacy => SiteKind::MobilePharmacy,
            Kind::ReliefTeam => SiteKind::ReliefTeam,
        }
    }
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    #[arg(long)]
    pub activation: String,
    #[arg(long, value_enum)]
    pub kind: Kind,
    /// Municipality code (JIS X 0402) where the site is.
    #[arg(long)]
    pub municipality: String,
    #[arg(long)]
    pub name: String,
    /// The sponsoring facility's 10-digit code.
    #[arg(long)]
    pub sponsor: String,
    #[arg(long)]
    pub contact: String,
    /// "latitude,longitude" in decimal degrees.
    #[arg(long, default_value = "")]
    pub coordinates: String,
    /// End of the site's window (default: its area's window end).
    #[arg(long)]
    pub until: Option<String>,
    /// Calls must carry the professional's licence registration number.
    #[arg(long)]
    pub require_licence: bool,
    /// Who registers it (recorded with the revision).
    #[arg(long)]
    pub by: String,
}

#[derive(Debug, Args)]
pub struct RenewArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    pub site_id: String,
    #[arg(long)]
    pub until: String,
    #[arg(long)]
    pub by: String,
}

#[derive(Debug, Args)]
pub struct CloseArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    pub site_id: String,
    #[arg(long)]
    pub by: String,
    #[arg(long, default_value = "")]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct SiteIdArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    pub site_id: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    #[arg(long, default_value = "")]
    pub activation: String,
}

#[derive(Debug, Args)]
pub struct IssueCertArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    pub site_id: String,
    /// The site's certificate signing request (PEM).
    #[arg(long)]
    pub csr: PathBuf,
    /// Where the certificate (PEM) is written.
    #[arg(long)]
    pub out: PathBuf,
    /// Hours of validity (default 72, at most 336).
    #[arg(long, default_value_t = 0)]
    pub hours: u32,
    #[arg(long)]
    pub by: String,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    pub site_id: String,
    /// The instant (default: now).
    #[arg(long)]
    pub at: Option<String>,
}

#[derive(Debug, Args)]
pub struct CrlArgs {
    #[command(flatten)]
    pub admin: AdminArgs,
    #[arg(long)]
    pub out: PathBuf,
}

async fn client(admin: &AdminArgs) -> anyhow::Result<SiteAdminServiceClient<Channel>> {
    Ok(SiteAdminServiceClient::new(admin.connect().await?))
}

pub async fn run(command: SiteCommand) -> anyhow::Result<Outcome> {
    match command {
        SiteCommand::Register(a) => register(a).await,
        SiteCommand::Renew(a) => {
            let request = proto::RenewSiteRequest {
                site_id: a.site_id,
                until: Some(timestamp(instant("--until", &a.until)?)),
                author: a.by,
            };
            let v = client(&a.admin)
                .await?
                .renew_site(request)
                .await
                .map_err(refused)?;
            print_site(v.get_ref());
            Ok(())
        }
        SiteCommand::Close(a) => {
            let request = proto::CloseSiteRequest {
                site_id: a.site_id,
                author: a.by,
                reason: a.reason,
            };
            let v = client(&a.admin)
                .await?
                .close_site(request)
                .await
                .map_err(refused)?;
            print_site(v.get_ref());
            Ok(())
        }
        SiteCommand::Show(a) => show(a).await,
        SiteCommand::List(a) => list(a).await,
        SiteCommand::IssueCert(a) => issue_cert(a).await,
        SiteCommand::Check(a) => return check(a).await,
        SiteCommand::Crl(a) => {
            let crl = client(&a.admin)
                .await?
                .get_site_crl(proto::GetSiteCrlRequest {})
                .await
                .map_err(refused)?;
            std::fs::write(&a.out, &crl.get_ref().crl_pem)?;
            println!("CRL written to {}", a.out.display());
            Ok(())
        }
    }
    .map(|()| Outcome::Done)
}

async fn register(a: RegisterArgs) -> anyhow::Result<()> {
    let until = a
        .until
        .as_deref()
        .map(|u| instant("--until", u).map(timestamp))
        .transpose()?;
    let request = proto::RegisterSiteRequest {
        activation_id: a.activation,
        kind: a.kind.wire() as i32,
        name: a.name,
        municipality: a.municipality,
        coordinates: a.coordinates,
        sponsor: a.sponsor,
        contact: a.contact,
        until,
        requires_licence: a.require_licence,
        author: a.by,
    };
    let v = client(&a.admin)
        .await?
        .register_site(request)
        .await
        .map_err(refused)?;
    print_site(v.get_ref());
    Ok(())
}

async fn show(a: SiteIdArgs) -> anyhow::Result<()> {
    let request = proto::GetSiteRequest { site_id: a.site_id };
    let v = client(&a.admin)
        .await?
        .get_site(request)
        .await
        .map_err(refused)?;
    print_site(v.get_ref());
    for r in &v.get_ref().revisions {
        println!(
            "  #{} {:<11} {} by {}  [{} .. {})  {}",
            r.number,
            r.kind,
            shown(r.recorded_at.as_ref()),
            r.author,
            shown(r.valid_from.as_ref()),
            shown(r.valid_until.as_ref()),
            r.detail
        );
    }
    Ok(())
}

async fn list(a: ListArgs) -> anyhow::Result<()> {
    let request = proto::ListSitesRequest {
        activation_id: a.activation,
    };
    let v = client(&a.admin)
        .await?
        .list_sites(request)
        .await
        .map_err(refused)?;
    for site in &v.get_ref().sites {
        print_site(site);
    }
    Ok(())
}

async fn issue_cert(a: IssueCertArgs) -> anyhow::Result<()> {
    let csr_pem = std::fs::read_to_string(&a.csr)
        .map_err(|e| invalid("--csr", format!("{}: {e}", a.csr.display())))?;
    let request = proto::IssueSiteCertificateRequest {
        site_id: a.site_id,
        csr_pem,
        valid_hours: a.hours,
        author: a.by,
    };
    let issued = client(&a.admin)
        .await?
        .issue_site_certificate(request)
        .await
        .map_err(refused)?
        .into_inner();
    std::fs::write(&a.out, &issued.certificate_pem)?;
    println!(
        "certificate {} written to {}, valid until {}",
        issued.serial,
        a.out.display(),
        shown(issued.not_after.as_ref())
    );
    Ok(())
}

async fn check(a: CheckArgs) -> anyhow::Result<Outcome> {
    let at =
        a.at.as_deref()
            .map(|t| instant("--at", t).map(timestamp))
            .transpose()?;
    let request = proto::CheckSiteRequest {
        site_id: a.site_id.clone(),
        at,
    };
    let d = client(&a.admin)
        .await?
        .check_site(request)
        .await
        .map_err(refused)?
        .into_inner();
    if d.allowed {
        println!(
            "site {} allowed (activation {})",
            a.site_id, d.activation_id
        );
        Ok(Outcome::Done)
    } else {
        println!("site {} refused: {} {}", a.site_id, d.reason, d.explanation);
        Ok(Outcome::Refused)
    }
}

fn print_site(v: &proto::SiteView) {
    let state = match (v.open, v.closed) {
        (true, _) => "open",
        (false, true) => "closed",
        (false, false) => "not open",
    };
    println!(
        "site {}  {}  {:?}  municipality {}  sponsor {}  activation {}  [{} .. {})  {state}",
        v.site_id,
        v.name,
        v.kind(),
        v.municipality,
        v.sponsor,
        v.activation_id,
        shown(v.valid_from.as_ref()),
        shown(v.valid_until.as_ref()),
    );
}
