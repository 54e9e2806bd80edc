//! Charts drawn on the server as SVG, so that the page needs no script: the geometry is computed
//! here and written out by askama templates (`templates/charts/`), which escape every label, since
//! versions and names come from reports.

use askama::Template;
use chrono::{Datelike, NaiveDate};

/// Colour classes of the series, styled in `static/style.css` (light and dark); the last one is for
/// "other".
const SERIES_CLASSES: [&str; 10] = ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"];
pub const OTHER_CLASS: &str = "cother";

/// The colour class of the `index`-th series; more series than colours reuse them.
pub fn series_class(index: usize) -> &'static str {
    SERIES_CLASSES[index % SERIES_CLASSES.len()]
}

/// Size of the drawing in viewBox units; CSS scales it to the column.
const WIDTH: f64 = 720.0;
const TIME_HEIGHT: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 32.0;

/// An axis label at a position along its axis.
pub struct Tick {
    pub at: String,
    pub label: String,
}

/// One line of a line chart.
pub struct Line {
    pub label: String,
    pub class: &'static str,
    /// SVG path data; a gap in the data starts a new sub-path.
    pub path: String,
}

/// A rectangle with the text a pointer shows over it.
pub struct Bar {
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    pub class: &'static str,
    pub tooltip: String,
}

/// A horizontal bar with its label and value text.
pub struct LabelledBar {
    pub label: String,
    pub value: String,
    pub y: String,
    pub text_y: String,
    pub width: String,
    pub class: &'static str,
}

/// The parts every chart has: an id for `aria-labelledby`, a title and a description that say in
/// words what the chart shows.
pub struct Caption {
    pub id: String,
    pub title: String,
    pub description: String,
}

/// A chart over weeks: lines (counts) or stacked columns (shares) on the same axes.
#[derive(Template)]
#[template(path = "charts/weekly.svg", escape = "html")]
pub struct WeeklyChart {
    pub caption: Caption,
    pub width: f64,
    pub height: f64,
    pub plot_left: f64,
    pub plot_right: f64,
    pub plot_bottom: f64,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
    pub lines: Vec<Line>,
    pub bars: Vec<Bar>,
}

#[derive(Template)]
#[template(path = "charts/bars.svg", escape = "html")]
pub struct BarChart {
    pub caption: Caption,
    pub width: f64,
    pub height: f64,
    pub label_right: f64,
    pub bar_left: f64,
    pub bar_height: f64,
    pub bars: Vec<LabelledBar>,
}

/// A series of a time chart: one value per week, `None` where nothing is published.
pub struct TimeSeries<'a> {
    pub label: &'a str,
    pub class: &'static str,
    pub values: &'a [Option<i64>],
}

/// Coordinates as the SVG gets them: two decimals are finer than any screen.
fn coordinate(value: f64) -> String {
    let rounded = format!("{value:.2}");
    rounded
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_owned()
}

/// A round upper bound for the y axis and its step, so that ticks fall on 1, 2, 2.5 or 5 × 10ⁿ.
fn nice_scale(max: f64, ticks: u32) -> (f64, f64) {
    if max <= 0.0 {
        return (1.0, 1.0);
    }
    let rough = max / f64::from(ticks);
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * magnitude)
        .find(|step| step * f64::from(ticks) >= max)
        .unwrap_or(10.0 * magnitude);
    ((max / step).ceil() * step, step)
}

/// Thousands separated by commas, as the tables show them.
pub fn thousands(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < 0 {
        out.push('-');
    }
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A share as a percentage with one decimal.
pub fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// Month labels under weekly columns or points: one at the first week of each month, with the year
/// on January (or on the first label when the range has no January).
fn month_ticks(weeks: &[NaiveDate], x_of: impl Fn(usize) -> f64) -> Vec<Tick> {
    let has_january = weeks
        .iter()
        .any(|week| week.month() == 1 && week.day() <= 7);
    let mut ticks = Vec::new();
    let mut previous_month = None;
    for (index, week) in weeks.iter().enumerate() {
        let month = (week.year(), week.month());
        if previous_month == Some(month) {
            continue;
        }
        previous_month = Some(month);
        // The first week, if it is late in its month, would put its label on the next one's.
        if index == 0 && weeks.len() > 1 && week.day() > 14 {
            continue;
        }
        let with_year = week.month() == 1 || (ticks.is_empty() && !has_january);
        let label = week
            .format(if with_year { "%b %Y" } else { "%b" })
            .to_string();
        ticks.push(Tick {
            at: coordinate(x_of(index)),
            label,
        });
    }
    ticks
}

/// Weekly counts as lines.
pub fn line_chart(caption: Caption, weeks: &[NaiveDate], series: &[TimeSeries<'_>]) -> WeeklyChart {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .copied()
        .max()
        .unwrap_or(0);
    let (top_value, step) = nice_scale(max as f64, 4);
    let plot_right = WIDTH - RIGHT;
    let plot_bottom = TIME_HEIGHT - BOTTOM;
    let span = (weeks.len().max(2) - 1) as f64;
    let x_of = |index: usize| LEFT + (plot_right - LEFT) * index as f64 / span;
    let y_of = |value: f64| plot_bottom - (plot_bottom - TOP) * value / top_value;
    let lines = series
        .iter()
        .map(|s| {
            let mut path = String::new();
            let mut drawing = false;
            for (index, value) in s.values.iter().enumerate() {
                match value {
                    Some(value) => {
                        path.push(if drawing { 'L' } else { 'M' });
                        path.push_str(&coordinate(x_of(index)));
                        path.push(' ');
                        path.push_str(&coordinate(y_of(*value as f64)));
                        drawing = true;
                    }
                    None => drawing = false,
                }
            }
            Line {
                label: s.label.to_owned(),
                class: s.class,
                path,
            }
        })
        .collect();
    let y_ticks = (0..)
        .map(|i| f64::from(i) * step)
        .take_while(|value| *value <= top_value + step / 2.0)
        .map(|value| Tick {
            at: coordinate(y_of(value)),
            label: thousands(value as i64),
        })
        .collect();
    WeeklyChart {
        caption,
        width: WIDTH,
        height: TIME_HEIGHT,
        plot_left: LEFT,
        plot_right,
        plot_bottom,
        y_ticks,
        x_ticks: month_ticks(weeks, x_of),
        lines,
        bars: Vec::new(),
    }
}

/// Weekly shares stacked to 100% in one column per week; a week with nothing published stays empty.
pub fn share_columns(
    caption: Caption,
    weeks: &[NaiveDate],
    series: &[(&str, &'static str, &[Option<f64>])],
) -> WeeklyChart {
    let plot_right = WIDTH - RIGHT;
    let plot_bottom = TIME_HEIGHT - BOTTOM;
    let band = (plot_right - LEFT) / weeks.len().max(1) as f64;
    let gap = (band * 0.15).min(2.0);
    let x_of = |index: usize| LEFT + band * index as f64;
    let height_of = |share: f64| (plot_bottom - TOP) * share;
    let mut bars = Vec::new();
    for (index, week) in weeks.iter().enumerate() {
        let mut stacked = 0.0;
        for (label, class, shares) in series {
            let Some(share) = shares.get(index).copied().flatten() else {
                continue;
            };
            if share <= 0.0 {
                continue;
            }
            let height = height_of(share);
            stacked += height;
            bars.push(Bar {
                x: coordinate(x_of(index) + gap / 2.0),
                y: coordinate(plot_bottom - stacked),
                width: coordinate(band - gap),
                height: coordinate(height),
                class,
                tooltip: format!("{label}: {} in the week of {week}", percent(share)),
            });
        }
    }
    let y_ticks = [0.0, 0.25, 0.5, 0.75, 1.0]
        .into_iter()
        .map(|share| Tick {
            at: coordinate(plot_bottom - height_of(share)),
            label: format!("{:.0}%", share * 100.0),
        })
        .collect();
    WeeklyChart {
        caption,
        width: WIDTH,
        height: TIME_HEIGHT,
        plot_left: LEFT,
        plot_right,
        plot_bottom,
        y_ticks,
        x_ticks: month_ticks(weeks, |index| x_of(index) + band / 2.0),
        lines: Vec::new(),
        bars,
    }
}

/// Horizontal bars, one per row: `(label, share of the longest possible bar, value text)`.
pub fn bar_chart(caption: Caption, rows: &[(String, f64, String)]) -> BarChart {
    const ROW: f64 = 28.0;
    const LABEL_WIDTH: f64 = 220.0;
    const VALUE_WIDTH: f64 = 150.0;
    let bar_left = LABEL_WIDTH + 8.0;
    let bar_space = WIDTH - bar_left - VALUE_WIDTH;
    let bars = rows
        .iter()
        .enumerate()
        .map(|(index, (label, fraction, value))| {
            let top = TOP + ROW * index as f64;
            LabelledBar {
                label: label.clone(),
                value: value.clone(),
                y: coordinate(top + 4.0),
                text_y: coordinate(top + ROW / 2.0 + 5.0),
                width: coordinate((bar_space * fraction.clamp(0.0, 1.0)).max(1.0)),
                class: series_class(0),
            }
        })
        .collect();
    BarChart {
        caption,
        width: WIDTH,
        height: TOP * 2.0 + ROW * rows.len() as f64,
        label_right: LABEL_WIDTH,
        bar_left,
        bar_height: ROW - 8.0,
        bars,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caption() -> Caption {
        Caption {
            id: "chart".into(),
            title: "A <chart>".into(),
            description: "Numbers & more".into(),
        }
    }

    #[test]
    fn scales_end_on_round_numbers() {
        assert_eq!(nice_scale(0.0, 4), (1.0, 1.0));
        assert_eq!(nice_scale(7.0, 4), (8.0, 2.0));
        assert_eq!(nice_scale(1234.0, 4), (1500.0, 500.0));
        assert_eq!(nice_scale(100.0, 4), (100.0, 25.0));
    }

    #[test]
    fn numbers_are_written_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(-1234567), "-1,234,567");
        assert_eq!(percent(0.1234), "12.3%");
        assert_eq!(coordinate(12.0), "12");
        assert_eq!(coordinate(12.345), "12.35");
    }

    #[test]
    fn a_gap_in_a_series_breaks_its_line() {
        let weeks: Vec<NaiveDate> = (0..4)
            .map(|i| NaiveDate::from_ymd_opt(2026, 1, 5).unwrap() + chrono::Days::new(7 * i))
            .collect();
        let values = [Some(10), None, Some(30), Some(40)];
        let chart = line_chart(
            caption(),
            &weeks,
            &[TimeSeries {
                label: "PMM",
                class: "c0",
                values: &values,
            }],
        );
        let path = &chart.lines[0].path;
        assert_eq!(path.matches('M').count(), 2, "{path}");
        assert_eq!(path.matches('L').count(), 1, "{path}");
    }

    #[test]
    fn labels_from_reports_are_escaped_in_the_svg() {
        let rows = vec![("<script>x</script>".to_owned(), 0.5, "5 & 6".to_owned())];
        let svg = bar_chart(caption(), &rows).render().unwrap();
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&#60;script&#62;") || svg.contains("&lt;script&gt;"));
        assert!(svg.contains("A &#60;chart&#62;") || svg.contains("A &lt;chart&gt;"));
    }

    #[test]
    fn stacked_shares_fill_the_plot_height() {
        let weeks = [NaiveDate::from_ymd_opt(2026, 1, 5).unwrap()];
        let a = [Some(0.75)];
        let b = [Some(0.25)];
        let chart = share_columns(caption(), &weeks, &[("a", "c0", &a), ("b", "c1", &b)]);
        let total: f64 = chart
            .bars
            .iter()
            .map(|bar| bar.height.parse::<f64>().unwrap())
            .sum();
        assert!(
            (total - (TIME_HEIGHT - BOTTOM - TOP)).abs() < 0.05,
            "{total}"
        );
        assert_eq!(chart.bars[1].y, coordinate(TOP));
    }
}
