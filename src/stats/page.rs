//! The page: a chart and the table of its numbers for each part of [`Statistics`], rendered into
//! the `stats.html` template.

use askama::Template;
use chrono::NaiveDate;

use super::charts::{self, Caption, TimeSeries, percent, series_class, thousands};
use super::model::{
    Countries, MonitoredDatabase, PmmFeatures, ReleaseUptake, Statistics, VersionValues, share,
};
use crate::assets::asset_version;

/// Countries drawn in the chart; the table lists every published one.
const MAX_CHART_COUNTRIES: usize = 15;

/// A chart with the table of its numbers.
pub struct Figure {
    pub svg: String,
    pub legend: Vec<LegendEntry>,
    pub table: Table,
}

pub struct LegendEntry {
    pub label: String,
    pub class: &'static str,
}

/// A table of numbers: a header row, then rows that start with a row header.
pub struct Table {
    pub caption: String,
    pub columns: Vec<String>,
    pub rows: Vec<(String, Vec<String>)>,
}

#[derive(Template)]
#[template(path = "stats.html")]
pub struct StatsPage<'a> {
    pub stats: &'a Statistics,
    pub active: Option<Figure>,
    pub uptake: Vec<(String, Figure)>,
    pub features: Option<Figure>,
    pub databases: Vec<(String, Figure)>,
    pub countries: Option<Figure>,
    pub snapshot_day: String,
    pub refreshed_at: String,
    pub asset_version: &'static str,
}

fn published(value: Option<i64>) -> String {
    value.map_or_else(|| "–".to_owned(), thousands)
}

fn week_label(week: NaiveDate) -> String {
    week.format("%Y-%m-%d").to_string()
}

fn active_figure(stats: &Statistics) -> Result<Option<Figure>, askama::Error> {
    let active = &stats.active_instances;
    if active.products.is_empty() {
        return Ok(None);
    }
    let mut series: Vec<TimeSeries<'_>> = active
        .products
        .iter()
        .enumerate()
        .map(|(index, product)| TimeSeries {
            label: &product.name,
            class: series_class(index),
            values: &product.active_instances,
        })
        .collect();
    let other_shown = active.other.iter().any(|value| value.unwrap_or(0) > 0);
    if other_shown {
        series.push(TimeSeries {
            label: "Other products",
            class: charts::OTHER_CLASS,
            values: &active.other,
        });
    }
    let latest: Vec<String> = active
        .products
        .iter()
        .filter_map(|product| {
            let last = active.weeks.len().checked_sub(1)?;
            product.active_instances[last]
                .map(|count| format!("{}: {}", product.name, thousands(count)))
        })
        .collect();
    let caption = Caption {
        id: "active-chart".into(),
        title: "Active instances per product, weekly".into(),
        description: format!(
            "Lines per product over the last year. In the latest week: {}.",
            if latest.is_empty() {
                "no product published".to_owned()
            } else {
                latest.join("; ")
            }
        ),
    };
    let svg = charts::line_chart(caption, &active.weeks, &series).render()?;
    let mut columns: Vec<String> = active.products.iter().map(|p| p.name.clone()).collect();
    if other_shown {
        columns.push("Other products".into());
    }
    let rows = active
        .weeks
        .iter()
        .enumerate()
        .rev()
        .map(|(index, week)| {
            let mut cells: Vec<String> = active
                .products
                .iter()
                .map(|p| published(p.active_instances[index]))
                .collect();
            if other_shown {
                cells.push(published(active.other[index]));
            }
            (week_label(*week), cells)
        })
        .collect();
    Ok(Some(Figure {
        svg,
        legend: series
            .iter()
            .map(|s| LegendEntry {
                label: s.label.to_owned(),
                class: s.class,
            })
            .collect(),
        table: Table {
            caption: "Active instances per product, by week (latest first)".into(),
            columns: std::iter::once("Week of".to_owned())
                .chain(columns)
                .collect(),
            rows,
        },
    }))
}

fn uptake_figure(uptake: &ReleaseUptake, index: usize) -> Result<Figure, askama::Error> {
    let other_shown = uptake
        .other
        .active_instances
        .iter()
        .any(|v| v.unwrap_or(0) > 0);
    // "Other versions" (mostly old ones) at the bottom of each column, the newest version on top.
    let mut series: Vec<(&str, &'static str, &[Option<f64>])> = Vec::new();
    if other_shown {
        series.push((
            "Other versions",
            charts::OTHER_CLASS,
            uptake.other.share.as_slice(),
        ));
    }
    series.extend(uptake.versions.iter().enumerate().map(|(i, version)| {
        (
            version.version.as_str(),
            series_class(i),
            version.values.share.as_slice(),
        )
    }));
    let last = uptake.weeks.len().saturating_sub(1);
    let leaders: Vec<String> = uptake
        .versions
        .iter()
        .filter_map(|v| Some((v.version.as_str(), v.values.share.get(last).copied()??)))
        .map(|(version, share)| format!("{version} {}", percent(share)))
        .collect();
    let caption = Caption {
        id: format!("uptake-chart-{index}"),
        title: format!(
            "{}: share of active instances per version, weekly",
            uptake.name
        ),
        description: format!(
            "One column per week over the last year, split by version. In the latest week: {}.",
            if leaders.is_empty() {
                "nothing published".to_owned()
            } else {
                leaders.join(", ")
            }
        ),
    };
    let svg = charts::share_columns(caption, &uptake.weeks, &series).render()?;
    let mut columns: Vec<String> = vec!["Week of".into(), "Active instances".into()];
    columns.extend(uptake.versions.iter().map(|v| v.version.clone()));
    if other_shown {
        columns.push("Other versions".into());
    }
    let cell = |values: &VersionValues, week: usize| match (
        values.share[week],
        values.active_instances[week],
    ) {
        (Some(share), Some(count)) if count > 0 => {
            format!("{} ({})", percent(share), thousands(count))
        }
        (Some(_), Some(_)) => "0".to_owned(),
        _ => "–".to_owned(),
    };
    let rows = uptake
        .weeks
        .iter()
        .enumerate()
        .rev()
        .filter(|(week, _)| uptake.active_instances[*week].is_some())
        .map(|(week, monday)| {
            let mut cells = vec![published(uptake.active_instances[week])];
            cells.extend(uptake.versions.iter().map(|v| cell(&v.values, week)));
            if other_shown {
                cells.push(cell(&uptake.other, week));
            }
            (week_label(*monday), cells)
        })
        .collect();
    Ok(Figure {
        svg,
        legend: series
            .iter()
            .cycle()
            .skip(usize::from(other_shown))
            .take(series.len())
            .map(|(label, class, _)| LegendEntry {
                label: (*label).to_owned(),
                class,
            })
            .collect(),
        table: Table {
            caption: format!(
                "{}: share of active instances per version, by week (latest first)",
                uptake.name
            ),
            columns,
            rows,
        },
    })
}

/// A bar chart and the table of its numbers. Each bar is its label, its length (1.0 is the longest
/// bar) and the value written next to it. The chart's description, which screen readers read in
/// place of the bars, is `summary` followed by the label and value of the first `described` bars.
fn bar_figure(
    id: String,
    title: String,
    summary: String,
    bars: &[(String, f64, String)],
    described: usize,
    table: Table,
) -> Result<Figure, askama::Error> {
    let spoken: Vec<String> = bars
        .iter()
        .take(described)
        .map(|(label, _, value)| format!("{label} {value}"))
        .collect();
    let caption = Caption {
        id,
        title,
        description: format!("{summary}: {}.", spoken.join(", ")),
    };
    Ok(Figure {
        svg: charts::bar_chart(caption, bars).render()?,
        legend: Vec::new(),
        table,
    })
}

fn features_figure(features: &PmmFeatures, min_bucket: i64) -> Result<Figure, askama::Error> {
    let bars: Vec<(String, f64, String)> = features
        .features
        .iter()
        .map(|f| match f.share {
            Some(share) => (f.name.clone(), share, percent(share)),
            None => (f.name.clone(), 0.0, format!("not shown (< {min_bucket})")),
        })
        .collect();
    let servers = thousands(features.active_servers);
    bar_figure(
        "features-chart".into(),
        "PMM features in use".into(),
        format!("Share of the {servers} active PMM servers with each feature on"),
        &bars,
        bars.len(),
        Table {
            caption: format!("PMM features on {servers} active PMM servers"),
            columns: vec![
                "Feature".into(),
                "Servers with it on".into(),
                "Share".into(),
            ],
            rows: features
                .features
                .iter()
                .map(|f| {
                    (
                        f.name.clone(),
                        vec![
                            published(f.enabled_servers),
                            f.share.map_or_else(|| "–".to_owned(), percent),
                        ],
                    )
                })
                .collect(),
        },
    )
}

fn database_figure(database: &MonitoredDatabase) -> Result<Figure, askama::Error> {
    let bars: Vec<(String, f64, String)> = database
        .lines
        .iter()
        .map(|l| {
            (
                format!("{} {}", database.name, l.line),
                l.share_of_services,
                percent(l.share_of_services),
            )
        })
        .collect();
    let title = format!("Monitored {} services by release line", database.name);
    bar_figure(
        format!("database-chart-{}", database.database),
        title.clone(),
        format!(
            "Share of the {} services PMM servers monitor",
            database.name
        ),
        &bars,
        bars.len(),
        Table {
            caption: title,
            columns: vec![
                "Line".into(),
                "Services".into(),
                "PMM servers".into(),
                "Share of services".into(),
            ],
            rows: database
                .lines
                .iter()
                .map(|l| {
                    (
                        l.line.clone(),
                        vec![
                            thousands(l.services),
                            thousands(l.pmm_servers),
                            percent(l.share_of_services),
                        ],
                    )
                })
                .collect(),
        },
    )
}

fn countries_figure(countries: &Countries) -> Result<Option<Figure>, askama::Error> {
    if countries.countries.is_empty() {
        return Ok(None);
    }
    let largest = countries
        .countries
        .first()
        .map_or(1, |c| c.active_instances)
        .max(1);
    let mut bars: Vec<(String, f64, String)> = countries
        .countries
        .iter()
        .take(MAX_CHART_COUNTRIES)
        .map(|c| {
            (
                c.name.clone(),
                c.active_instances as f64 / largest as f64,
                percent(c.share),
            )
        })
        .collect();
    let beyond_chart: i64 = countries
        .countries
        .iter()
        .skip(MAX_CHART_COUNTRIES)
        .map(|c| c.active_instances)
        .sum::<i64>()
        + countries.other.unwrap_or(0);
    if beyond_chart > 0 {
        bars.push((
            "All other countries".into(),
            beyond_chart as f64 / largest as f64,
            percent(share(beyond_chart, countries.total)),
        ));
    }
    let mut table_rows: Vec<(String, Vec<String>)> = countries
        .countries
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                vec![thousands(c.active_instances), percent(c.share)],
            )
        })
        .collect();
    if let Some(other) = countries.other.filter(|other| *other > 0) {
        table_rows.push((
            "Other countries".into(),
            vec![thousands(other), percent(share(other, countries.total))],
        ));
    }
    let total = thousands(countries.total);
    bar_figure(
        "countries-chart".into(),
        "Countries of active instances".into(),
        format!("Share of {total} active instances by country"),
        &bars,
        // Read aloud, the five largest are enough: the table lists every published country.
        5,
        Table {
            caption: format!("Active instances by country ({total} in all)"),
            columns: vec!["Country".into(), "Active instances".into(), "Share".into()],
            rows: table_rows,
        },
    )
    .map(Some)
}

impl Statistics {
    pub fn render_page(&self) -> Result<String, askama::Error> {
        let page = StatsPage {
            stats: self,
            active: active_figure(self)?,
            uptake: self
                .release_uptake
                .iter()
                .enumerate()
                .map(|(index, uptake)| Ok((uptake.name.clone(), uptake_figure(uptake, index)?)))
                .collect::<Result<_, askama::Error>>()?,
            features: self
                .pmm_features
                .as_ref()
                .map(|features| features_figure(features, self.min_bucket))
                .transpose()?,
            databases: self
                .monitored_databases
                .iter()
                .map(|database| Ok((database.name.clone(), database_figure(database)?)))
                .collect::<Result<_, askama::Error>>()?,
            countries: countries_figure(&self.countries)?,
            snapshot_day: self
                .snapshot_day
                .map(|day| day.format("%-d %B %Y").to_string())
                .unwrap_or_default(),
            refreshed_at: self
                .refreshed_at
                .map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default(),
            asset_version: asset_version(),
        };
        page.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StatsRollups;

    #[test]
    fn the_empty_page_renders() {
        let statistics = Statistics::from_rollups(&StatsRollups::default(), 10);
        let html = statistics.render_page().unwrap();
        assert!(html.contains("No statistics yet"));
    }
}
