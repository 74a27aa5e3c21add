//! How an activation changes while it runs. Every change is a revision that sets the
//! window of some of its areas; an area's window is the one its latest revision set.
//! The notices' operations map onto that one shape:
//! - create, and add areas (2023 rain: Saga and Oita added on 10 July at 16:00);
//! - extend some or all areas (Noto: 18 municipalities extended to 14 January);
//! - end some or all areas early (the 2022 notice's end);
//! - keep single facilities open after their area closed (Noto, from 8 March 2024):
//!   adding facility areas.
//!
//! Replaying the revisions recorded up to an instant gives the state known then, so
//! "was this facility allowed at 10:03 on 2024-01-05?" has one answer.

use chrono::{DateTime, Utc};

use super::area::AreaKey;
use super::jst::{Window, to_jst_string};
use super::{Reason, Violation};

/// One area's window, as a revision set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaWindow {
    pub area: AreaKey,
    pub window: Window,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The first revision.
    Create { areas: Vec<AreaKey>, window: Window },
    /// Areas not yet in the activation, with their own window.
    AddAreas { areas: Vec<AreaKey>, window: Window },
    /// Later ends for these areas (none named: every area).
    Extend {
        areas: Vec<AreaKey>,
        until: DateTime<Utc>,
    },
    /// Earlier ends for these areas (none named: every area still open at `at`).
    End {
        areas: Vec<AreaKey>,
        at: DateTime<Utc>,
    },
}

impl Change {
    pub fn kind(&self) -> ChangeKind {
        match self {
            Change::Create { .. } => ChangeKind::Create,
            Change::AddAreas { .. } => ChangeKind::AddAreas,
            Change::Extend { .. } => ChangeKind::Extend,
            Change::End { .. } => ChangeKind::End,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Create,
    AddAreas,
    Extend,
    End,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::AddAreas => "add_areas",
            ChangeKind::Extend => "extend",
            ChangeKind::End => "end",
        }
    }

    pub fn parse(s: &str) -> Option<ChangeKind> {
        [
            ChangeKind::Create,
            ChangeKind::AddAreas,
            ChangeKind::Extend,
            ChangeKind::End,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A recorded revision: who changed what, when, citing which notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// 1 for the creation, then 2, 3, …
    pub number: u32,
    /// When the change was made (and from when it applies to decisions).
    pub recorded_at: DateTime<Utc>,
    pub author: String,
    pub notice: String,
    pub kind: ChangeKind,
    /// The windows this revision set.
    pub windows: Vec<AreaWindow>,
}

/// The windows `change` sets, given the activation's `current` windows; or why it
/// cannot apply. Nothing is written when this refuses.
pub fn apply(current: &[AreaWindow], change: &Change) -> Result<Vec<AreaWindow>, Violation> {
    match change {
        Change::Create { areas, window } | Change::AddAreas { areas, window } => {
            add(current, areas, *window)
        }
        Change::Extend { areas, until } => targets(current, areas)?
            .into_iter()
            .map(|c| extended(c, *until))
            .collect(),
        Change::End { areas, at } => end(current, areas, *at),
    }
}

/// New areas, each with `window`.
fn add(
    current: &[AreaWindow],
    areas: &[AreaKey],
    window: Window,
) -> Result<Vec<AreaWindow>, Violation> {
    distinct_areas(areas)?;
    if let Some(a) = areas.iter().find(|a| current.iter().any(|c| &c.area == *a)) {
        return Err(Violation::new(
            Reason::ActivationAreaAlreadyIncluded,
            "areas",
            format!("{a} is already in this activation; extend or end its window instead"),
        )
        .with("area", a.to_string()));
    }
    Ok(areas
        .iter()
        .map(|area| AreaWindow {
            area: area.clone(),
            window,
        })
        .collect())
}

/// `c`'s window to a later end.
fn extended(c: &AreaWindow, until: DateTime<Utc>) -> Result<AreaWindow, Violation> {
    if until <= c.window.end {
        let (area, end) = (&c.area, to_jst_string(c.window.end));
        let until = to_jst_string(until);
        return Err(contradiction(
            "until",
            format!("an extension of {area} must end after its current end {end}, not at {until}"),
            area,
        ));
    }
    Ok(with_end(c, until))
}

/// The named areas, or every area open at `at`, ending at `at`.
fn end(
    current: &[AreaWindow],
    areas: &[AreaKey],
    at: DateTime<Utc>,
) -> Result<Vec<AreaWindow>, Violation> {
    let named = !areas.is_empty();
    let mut out = Vec::new();
    for c in targets(current, areas)? {
        // Ending "every area" leaves alone those not open at `at`: already
        // closed, or not yet open (a facility kept open from a later day).
        let open_at = c.window.start < at && at < c.window.end;
        if named || open_at {
            out.push(ended(c, at)?);
        }
    }
    if out.is_empty() {
        return Err(contradiction(
            "at",
            format!(
                "no area of this activation is open at {}",
                to_jst_string(at)
            ),
            &AreaKey::Prefecture(0),
        ));
    }
    Ok(out)
}

/// `c`'s window to an earlier end, which must fall inside it.
fn ended(c: &AreaWindow, at: DateTime<Utc>) -> Result<AreaWindow, Violation> {
    let area = &c.area;
    let when = to_jst_string(at);
    let refused = |description: String| contradiction("at", description, area);
    if c.window.end <= at {
        let end = to_jst_string(c.window.end);
        return Err(refused(format!(
            "{area} already ends at {end}, not after {when}"
        )));
    }
    if at <= c.window.start {
        let start = to_jst_string(c.window.start);
        return Err(refused(format!(
            "{area} opens at {start}; it cannot end at {when}, before it opened"
        )));
    }
    Ok(with_end(c, at))
}

/// `c`'s area with its window's end moved to `end`.
fn with_end(c: &AreaWindow, end: DateTime<Utc>) -> AreaWindow {
    AreaWindow {
        area: c.area.clone(),
        window: Window {
            start: c.window.start,
            end,
        },
    }
}

fn contradiction(field: &str, description: String, area: &AreaKey) -> Violation {
    let v = Violation::new(Reason::ActivationRevisionContradicts, field, description);
    match area {
        AreaKey::Prefecture(0) => v,
        a => v.with("area", a.to_string()),
    }
}

/// At least one area, none named twice.
pub fn distinct_areas(areas: &[AreaKey]) -> Result<(), Violation> {
    if areas.is_empty() {
        return Err(Violation::new(
            Reason::ActivationAreasMissing,
            "areas",
            "name at least one prefecture, municipality or facility",
        ));
    }
    for (i, a) in areas.iter().enumerate() {
        if areas[..i].contains(a) {
            return Err(Violation::new(
                Reason::ActivationAreaDuplicate,
                "areas",
                format!("{a} is named twice"),
            )
            .with("area", a.to_string()));
        }
    }
    Ok(())
}

/// The current windows of `areas`, or of every area when none is named.
fn targets<'a>(
    current: &'a [AreaWindow],
    areas: &[AreaKey],
) -> Result<Vec<&'a AreaWindow>, Violation> {
    if areas.is_empty() {
        return Ok(current.iter().collect());
    }
    distinct_areas(areas)?;
    areas
        .iter()
        .map(|a| {
            current.iter().find(|c| &c.area == a).ok_or_else(|| {
                Violation::new(
                    Reason::ActivationAreaNotIncluded,
                    "areas",
                    format!("{a} is not in this activation; add it instead"),
                )
                .with("area", a.to_string())
            })
        })
        .collect()
}

/// The windows in force after `revisions` (in number order) recorded up to
/// `known_at`: each area's latest window, in the order areas first appeared.
pub fn state_at(revisions: &[Revision], known_at: DateTime<Utc>) -> Vec<AreaWindow> {
    let mut state: Vec<AreaWindow> = Vec::new();
    for r in revisions.iter().filter(|r| r.recorded_at <= known_at) {
        for w in &r.windows {
            match state.iter_mut().find(|s| s.area == w.area) {
                Some(s) => s.window = w.window,
                None => state.push(w.clone()),
            }
        }
    }
    state
}

/// The state after every revision.
pub fn current(revisions: &[Revision]) -> Vec<AreaWindow> {
    state_at(revisions, DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::jst::jst;

    fn t(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        jst()
            .with_ymd_and_hms(2024, 1, d, h, m, 0)
            .single()
            .expect("valid")
            .with_timezone(&Utc)
    }

    fn muni(code: &str) -> AreaKey {
        AreaKey::Municipality(code.into())
    }

    fn rev(number: u32, at: DateTime<Utc>, windows: Vec<AreaWindow>) -> Revision {
        Revision {
            number,
            recorded_at: at,
            author: "op".into(),
            notice: String::new(),
            kind: ChangeKind::Create,
            windows,
        }
    }

    #[test]
    fn extend_some_end_others_and_reconstruct_each_moment() {
        let w = Window::new(t(1, 0, 0), t(8, 0, 0)).expect("window");
        let created = apply(
            &[],
            &Change::Create {
                areas: vec![muni("17204"), muni("17201")],
                window: w,
            },
        )
        .expect("create");
        let r1 = rev(1, t(2, 9, 0), created);
        let extended = apply(
            &current(std::slice::from_ref(&r1)),
            &Change::Extend {
                areas: vec![muni("17204")],
                until: t(15, 0, 0),
            },
        )
        .expect("extend");
        assert_eq!(extended.len(), 1);
        let r2 = rev(2, t(7, 12, 0), extended);
        let history = [r1, r2];
        let now = current(&history);
        assert_eq!(now[0].window.end, t(15, 0, 0), "輪島 extended");
        assert_eq!(now[1].window.end, t(8, 0, 0), "金沢 not");
        // Known on 5 January: the extension had not been made yet.
        let then = state_at(&history, t(5, 10, 3));
        assert_eq!(then[0].window.end, t(8, 0, 0));
        // Before the creation was recorded, nothing was known.
        assert!(state_at(&history, t(2, 8, 59)).is_empty());
    }

    #[test]
    fn contradictory_changes_are_refused_with_their_field() {
        let w = Window::new(t(1, 0, 0), t(8, 0, 0)).expect("window");
        let cur = vec![AreaWindow {
            area: muni("17204"),
            window: w,
        }];
        let extend = |areas: Vec<AreaKey>, until| Change::Extend { areas, until };
        let end = |areas: Vec<AreaKey>, at| Change::End { areas, at };
        let add = |areas: Vec<AreaKey>| Change::AddAreas { areas, window: w };
        let contradicts = Reason::ActivationRevisionContradicts;
        let cases = [
            (extend(vec![], t(8, 0, 0)), contradicts, "until"),
            (end(vec![muni("17204")], t(9, 0, 0)), contradicts, "at"),
            (end(vec![muni("17204")], t(1, 0, 0)), contradicts, "at"),
            (
                extend(vec![muni("17201")], t(9, 0, 0)),
                Reason::ActivationAreaNotIncluded,
                "areas",
            ),
            (
                add(vec![muni("17204")]),
                Reason::ActivationAreaAlreadyIncluded,
                "areas",
            ),
            (
                add(vec![muni("17201"), muni("17201")]),
                Reason::ActivationAreaDuplicate,
                "areas",
            ),
            (add(vec![]), Reason::ActivationAreasMissing, "areas"),
        ];
        for (change, reason, field) in cases {
            let v = apply(&cur, &change).expect_err("refused");
            assert_eq!((v.reason, v.field.as_str()), (reason, field), "{change:?}");
        }
        // The last instant before the end is a valid early end; the end itself is not.
        let last = w.end - chrono::Duration::nanoseconds(1);
        assert!(apply(&cur, &end(vec![], last)).is_ok());
    }

    #[test]
    fn ending_every_area_leaves_windows_not_yet_open() {
        let area = Window::new(t(1, 0, 0), t(10, 0, 0)).expect("window");
        let later = Window::new(t(12, 0, 0), t(20, 0, 0)).expect("window");
        let cur = vec![
            AreaWindow {
                area: muni("17204"),
                window: area,
            },
            AreaWindow {
                area: AreaKey::Facility("1710112345".into()),
                window: later,
            },
        ];
        let set = apply(
            &cur,
            &Change::End {
                areas: vec![],
                at: t(5, 0, 0),
            },
        )
        .expect("end");
        assert_eq!(set.len(), 1, "{set:?}");
        assert_eq!(set[0].area, muni("17204"));
    }

    #[test]
    fn ending_every_area_skips_those_already_closed() {
        let early = Window::new(t(1, 0, 0), t(3, 0, 0)).expect("window");
        let late = Window::new(t(1, 0, 0), t(10, 0, 0)).expect("window");
        let cur = vec![
            AreaWindow {
                area: muni("17201"),
                window: early,
            },
            AreaWindow {
                area: muni("17204"),
                window: late,
            },
        ];
        let set = apply(
            &cur,
            &Change::End {
                areas: vec![],
                at: t(5, 0, 0),
            },
        )
        .expect("end");
        assert_eq!(set.len(), 1);
        assert_eq!(set[0].area, muni("17204"));
        assert_eq!(set[0].window.end, t(5, 0, 0));
    }
}
