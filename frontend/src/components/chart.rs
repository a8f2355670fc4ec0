use crate::format;
use crate::live::{RateSample, CHART_WINDOW};
use leptos::prelude::*;

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 100.0;

/// The chart never spans less than this, so a fresh run does not look like a spike.
const MIN_SPAN: i64 = 60;

/// Messages per second over the last few minutes, as a small area chart (inline SVG).
/// `copying` says whether the rate is current or from a run that ended.
#[component]
pub fn ThroughputChart(
    #[prop(into)] samples: Signal<Vec<RateSample>>,
    #[prop(into)] copying: Signal<bool>,
) -> impl IntoView {
    let shape = Memo::new(move |_| samples.with(|s| Shape::of(s)));
    let summary = move || {
        shape.with(|shape| match shape {
            Some(shape) if copying.get() => format!(
                "now {} messages/s, peak {} messages/s",
                format::rate(shape.now),
                format::rate(shape.peak),
            ),
            Some(shape) => format!("peak {} messages/s", format::rate(shape.peak)),
            None => "The chart fills in while messages are being copied.".into(),
        })
    };
    let span = move || {
        let minutes = shape.with(|s| s.as_ref().map(|s| s.span).unwrap_or(CHART_WINDOW)) / 60;
        if minutes <= 1 {
            "1 min ago".to_string()
        } else {
            format!("{minutes} min ago")
        }
    };
    view! {
        <figure class="chart">
            <figcaption>
                <span class="chart-title">"Speed"</span>
                <span class="muted small">{summary}</span>
            </figcaption>
            <svg
                viewBox=format!("0 0 {WIDTH} {HEIGHT}")
                preserveAspectRatio="none"
                role="img"
                aria-label=summary
            >
                <line class="grid" x1="0" x2=WIDTH y1=HEIGHT / 2.0 y2=HEIGHT / 2.0></line>
                <polygon class="area" points=move || shape.with(|s| s.as_ref().map(|s| s.area.clone()).unwrap_or_default())></polygon>
                <polyline class="line" points=move || shape.with(|s| s.as_ref().map(|s| s.line.clone()).unwrap_or_default())></polyline>
            </svg>
            <div class="chart-axis muted small" aria-hidden="true">
                <span>{span}</span>
                <span>"now"</span>
            </div>
        </figure>
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Shape {
    line: String,
    area: String,
    now: f64,
    peak: f64,
    /// Seconds from the left edge to the right.
    span: i64,
}

impl Shape {
    fn of(samples: &[RateSample]) -> Option<Shape> {
        let last = samples.last()?;
        if samples.len() < 2 {
            return None;
        }
        let first = samples.first()?;
        let span = (last.at - first.at).clamp(MIN_SPAN, CHART_WINDOW);
        let start = last.at - span;
        let peak = samples.iter().map(|s| s.rate).fold(0.0, f64::max);
        let scale = if peak > 0.0 { peak * 1.15 } else { 1.0 };
        let points: Vec<(f64, f64)> = samples
            .iter()
            .map(|s| {
                let x = (s.at - start) as f64 / span as f64 * WIDTH;
                let y = HEIGHT - (s.rate / scale) * HEIGHT;
                (x, y)
            })
            .collect();
        let line = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect::<Vec<_>>()
            .join(" ");
        let first_x = points.first().map(|p| p.0).unwrap_or(0.0);
        let area = format!("{first_x:.1},{HEIGHT} {line} {WIDTH},{HEIGHT}");
        Some(Shape {
            line,
            area,
            now: last.rate,
            peak,
            span,
        })
    }
}
