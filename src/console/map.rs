//! The map of Japan, drawn on the server as inline SVG (no script): the 47
//! prefectures' shapes and a point per municipality, both embedded in the binary
//! from `assets/` (generated once by `assets/generate_map.py` from MIT-licensed
//! packages: prefecture shapes from npm `@react-map/japan`, municipality points from
//! PyPI `JpGeocode`). Municipalities are points: no package on the registries carries
//! their boundaries in an embeddable size. Colours come from the stylesheet, by class.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::LazyLock;

use super::page::esc;

const PREFECTURES: &str = include_str!("assets/prefectures.tsv");
const POINTS: &str = include_str!("assets/municipality_points.tsv");
/// The shapes' extent, as printed by the generator.
const VIEW_BOX: &str = "14 0 437 516";

/// Each prefecture's code and SVG path.
static SHAPES: LazyLock<Vec<(u8, &'static str)>> = LazyLock::new(|| {
    PREFECTURES
        .lines()
        .filter_map(|l| {
            let (code, d) = l.split_once('\t')?;
            Some((code.parse().ok()?, d))
        })
        .collect()
});

/// Each municipality's point, by prefecture and name as the registry spells it.
/// Points by prefecture and municipality name.
type PointIndex = HashMap<(u8, &'static str), (f32, f32)>;

static POINTS_BY_NAME: LazyLock<PointIndex> = LazyLock::new(|| {
    POINTS
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let code = f.next()?.parse().ok()?;
            let name = f.next()?;
            let x = f.next()?.parse().ok()?;
            let y = f.next()?.parse().ok()?;
            Some(((code, name), (x, y)))
        })
        .collect()
});

/// The point of a municipality, if the embedded data has it.
pub fn point(prefecture: u8, name: &str) -> Option<(f32, f32)> {
    POINTS_BY_NAME.get(&(prefecture, name)).copied()
}

/// How a shape or point is drawn: a stylesheet class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Shade {
    /// In force at the instant shown.
    InForce,
    /// Would open if the previewed notice took effect.
    WouldOpen,
    /// A temporary site.
    Site,
}

impl Shade {
    fn class(self) -> &'static str {
        match self {
            Shade::InForce => "on",
            Shade::WouldOpen => "new",
            Shade::Site => "site",
        }
    }
}

/// What to draw over the plain map.
#[derive(Default)]
pub struct Layers {
    /// Whole prefectures.
    pub prefectures: BTreeMap<u8, Shade>,
    /// Points: prefecture, municipality name (as the registry spells it), shade, label.
    pub points: Vec<(u8, String, Shade, String)>,
}

impl Layers {
    /// The municipalities drawn that the embedded data has no point for.
    pub fn unplaced(&self) -> Vec<&str> {
        self.points
            .iter()
            .filter(|(p, name, _, _)| point(*p, name).is_none())
            .map(|(_, name, _, _)| name.as_str())
            .collect()
    }
}

/// The extent of the points drawn, with a margin, as an SVG viewBox: the close-up
/// beside the whole country. `None` when no point is placed.
pub fn close_up(layers: &Layers) -> Option<String> {
    let placed: Vec<(f32, f32)> = layers
        .points
        .iter()
        .filter_map(|(p, name, ..)| point(*p, name))
        .collect();
    let (x0, y0, x1, y1) = placed.iter().fold(
        (f32::MAX, f32::MAX, f32::MIN, f32::MIN),
        |(a, b, c, d), (x, y)| (a.min(*x), b.min(*y), c.max(*x), d.max(*y)),
    );
    if placed.is_empty() {
        return None;
    }
    // At least 60 units across (a third of Honshu's width), so one town has context.
    let side = (x1 - x0).max(y1 - y0).max(60.0) + 16.0;
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    Some(format!(
        "{:.1} {:.1} {side:.1} {side:.1}",
        cx - side / 2.0,
        cy - side / 2.0
    ))
}

/// The whole country, and beside it the close-up of what is drawn.
pub fn render_with_close_up(layers: &Layers, label: &str) -> String {
    let mut out = render(layers, label, VIEW_BOX, "map");
    if let Some(view) = close_up(layers) {
        out.push_str(&render(layers, label, &view, "map zoom"));
    }
    out
}

/// The SVG of the map over `view` with `layers` drawn; prefectures holding a drawn
/// point are tinted so that a small area stays visible at the country's scale.
fn render(layers: &Layers, label: &str, view: &str, class: &str) -> String {
    let touched: Vec<u8> = layers.points.iter().map(|(p, ..)| *p).collect();
    let mut svg = format!(
        "<svg class=\"{class}\" viewBox=\"{view}\" role=\"img\" aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        esc(label)
    );
    for (code, d) in SHAPES.iter() {
        let class = match layers.prefectures.get(code) {
            Some(shade) => shade.class(),
            None if touched.contains(code) => "touched",
            None => "pref",
        };
        let _ = write!(
            svg,
            "<path class=\"{class}\" data-prefecture=\"{code:02}\" d=\"{d}\"/>"
        );
    }
    let mut drawn: Vec<_> = layers.points.iter().collect();
    drawn.sort_by_key(|(_, _, shade, _)| std::cmp::Reverse(*shade));
    for (p, name, shade, title) in drawn {
        let Some((x, y)) = point(*p, name) else {
            continue;
        };
        let r = if *shade == Shade::Site { 2.6 } else { 1.8 };
        let _ = write!(
            svg,
            "<circle class=\"{}\" cx=\"{x}\" cy=\"{y}\" r=\"{r}\"><title>{}</title></circle>",
            shade.class(),
            esc(title)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prefecture_has_a_shape_and_noto_its_points() {
        assert_eq!(SHAPES.len(), 47);
        assert!(POINTS_BY_NAME.len() > 1700);
        let wajima = point(17, "輪島市").expect("輪島市");
        let kanazawa = point(17, "金沢市").expect("金沢市");
        // 輪島 is north of 金沢 on the Noto peninsula: a smaller y.
        assert!(wajima.1 < kanazawa.1);
        assert_eq!(point(17, "存在しない市"), None);
    }

    #[test]
    fn shaded_areas_and_points_are_drawn_with_their_class_and_label() {
        let mut layers = Layers::default();
        layers.prefectures.insert(4, Shade::InForce);
        layers.points.push((
            17,
            "輪島市".into(),
            Shade::WouldOpen,
            "輪島市 <17204>".into(),
        ));
        let svg = render_with_close_up(&layers, "map");
        assert!(svg.contains("class=\"on\" data-prefecture=\"04\""));
        assert!(svg.contains("class=\"touched\" data-prefecture=\"17\""));
        assert!(svg.contains("<circle class=\"new\""));
        assert!(svg.contains("輪島市 &lt;17204&gt;"));
        assert!(layers.unplaced().is_empty());
        // The close-up frames the one point: 60 units and the margin around it.
        let (x, y) = point(17, "輪島市").expect("point");
        assert_eq!(
            close_up(&layers),
            Some(format!("{:.1} {:.1} 76.0 76.0", x - 38.0, y - 38.0))
        );
        assert_eq!(svg.matches("<svg").count(), 2);
        assert_eq!(close_up(&Layers::default()), None);
    }
}
