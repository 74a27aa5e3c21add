//! The one line each fault prints: the fault, the load held, calls, served,
//! refused by reason, hung, answers with data but no record, duplicated records
//! and the time to recover. The full run's lines fill docs/reliability.md.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::audit::AuditCheck;
use crate::load::Calls;

pub struct Summary {
    pub fault: String,
    pub full: bool,
    pub rate: f64,
    pub held: f64,
    pub calls: usize,
    pub ok: usize,
    pub refused: BTreeMap<String, usize>,
    pub hung: usize,
    pub ok_without_record: usize,
    pub duplicates: usize,
    /// None: not measured for this fault; Some(None): did not recover.
    pub recovered: Option<Option<Duration>>,
    /// When the (first) load started.
    pub origin: Option<Instant>,
    /// Whatever else the fault measures (RSS, percentiles), as `name value` pairs.
    pub notes: Vec<String>,
}

impl Summary {
    pub fn new(fault: &str, full: bool, calls: &[&Calls], audit: &AuditCheck) -> Summary {
        let outcomes = || calls.iter().flat_map(|c| c.outcomes.iter());
        let origin = calls.first().map(|c| c.started);
        let unrecorded = audit.examples.first().zip(origin).map(|(o, origin)| {
            format!(
                "first unrecorded answer sent at +{:.1} s",
                (o.sent - origin).as_secs_f64()
            )
        });
        Summary {
            fault: fault.to_string(),
            full,
            rate: calls.iter().map(|c| c.plan.rate).sum(),
            held: calls.iter().map(|c| c.held()).sum(),
            calls: outcomes().count(),
            ok: outcomes().filter(|o| o.ok()).count(),
            refused: crate::calls::refused(outcomes()),
            hung: outcomes().filter(|o| o.hung()).count(),
            ok_without_record: audit.ok_without_record,
            duplicates: audit.duplicates,
            recovered: None,
            origin,
            notes: unrecorded.into_iter().collect(),
        }
    }

    /// When the fault began and ended, from the start of the load.
    pub fn fault(mut self, began: Instant, ended: Instant) -> Summary {
        if let Some(origin) = self.origin {
            self.notes.insert(
                0,
                format!(
                    "fault +{:.1}..+{:.1} s",
                    (began - origin).as_secs_f64(),
                    (ended - origin).as_secs_f64()
                ),
            );
        }
        self
    }

    pub fn recovered(mut self, after: Option<Duration>) -> Summary {
        self.recovered = Some(after);
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Summary {
        self.notes.push(note.into());
        self
    }

    /// Prints the line (before the test's assertions, so a failure shows it too).
    pub fn print(self) -> Summary {
        println!("{self}");
        self
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let refused = if self.refused.is_empty() {
            "none".to_string()
        } else {
            self.refused
                .iter()
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let recovered = match self.recovered {
            None => "-".to_string(),
            Some(None) => "NOT RECOVERED".to_string(),
            Some(Some(d)) => format!("{:.1} s", d.as_secs_f64()),
        };
        write!(
            f,
            "FAULT {} [{}] | load {:.0}/s held {:.1}/s | calls {} | served {} | refused {} | hung {} | ok-without-record {} | duplicates {} | recovered {}",
            self.fault,
            if self.full { "full" } else { "short" },
            self.rate,
            self.held,
            self.calls,
            self.ok,
            refused,
            self.hung,
            self.ok_without_record,
            self.duplicates,
            recovered
        )?;
        for note in &self.notes {
            write!(f, " | {note}")?;
        }
        Ok(())
    }
}

/// A duration as a person reads it in a summary: whole milliseconds.
pub fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}
