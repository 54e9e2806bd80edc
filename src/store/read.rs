//! The read model of the public statistics page: aggregate rows of the analysts' views.

use chrono::{DateTime, Days, NaiveDate, Utc};
use sqlx::PgPool;

use super::StoreError;

/// What the public statistics page is built from: aggregate rows of the analysts' views, never a
/// row about one instance.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatsRollups {
    /// The day the snapshot views describe, and when the rollups were refreshed; `None` before the
    /// first refresh, when everything else is empty.
    pub snapshot: Option<(NaiveDate, DateTime<Utc>)>,
    pub weekly_activity: Vec<WeeklyActivity>,
    pub weekly_versions: Vec<WeeklyVersion>,
    pub pmm_features: Vec<FeatureAdoption>,
    pub database_lines: Vec<DatabaseLine>,
    pub countries: Vec<CountryCount>,
}

/// A row of `analytics.active_instances_weekly`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeeklyActivity {
    pub week_start: NaiveDate,
    pub product_family: String,
    pub active_instances: i64,
}

/// A row of `analytics.release_uptake_weekly` with active instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeeklyVersion {
    pub week_start: NaiveDate,
    pub product_family: String,
    pub version: String,
    pub active_instances: i64,
}

/// A row of `analytics.pmm_feature_adoption`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureAdoption {
    pub feature: String,
    pub active_servers: i64,
    pub enabled_servers: i64,
}

/// A row of `analytics.monitored_database_lines`.
#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseLine {
    pub database: String,
    pub line: Option<String>,
    pub pmm_servers: i64,
    pub services: i64,
    pub share_of_services: f64,
}

/// Active instances of all products in one country (`analytics.countries`, summed over families).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountryCount {
    pub country_code: Option<String>,
    pub active_instances: i64,
}

/// Reads the statistics page's rollups in one read-only snapshot, so that a refresh of the rollups
/// running meanwhile cannot mix two days. `weeks` bounds the weekly series.
pub async fn stats_rollups(pool: &PgPool, weeks: i32) -> Result<StatsRollups, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let snapshot = sqlx::query!(
        r#"SELECT day AS "day!", refreshed_at AS "refreshed_at!" FROM analytics.snapshot_day"#
    )
    .fetch_optional(&mut *tx)
    .await?
    .map(|row| (row.day, row.refreshed_at));
    let Some((day, _)) = snapshot else {
        return Ok(StatsRollups::default());
    };
    let since = day - Days::new(7 * u64::try_from(weeks).unwrap_or(0));

    let weekly_activity = sqlx::query_as!(
        WeeklyActivity,
        r#"
        SELECT week_start AS "week_start!", product_family AS "product_family!",
               active_instances::bigint AS "active_instances!"
        FROM analytics.active_instances_weekly
        WHERE week_start > $1 AND active_instances > 0
        ORDER BY week_start, product_family
        "#,
        since
    )
    .fetch_all(&mut *tx)
    .await?;
    let weekly_versions = sqlx::query_as!(
        WeeklyVersion,
        r#"
        SELECT week_start AS "week_start!", product_family AS "product_family!", version AS "version!",
               active_instances::bigint AS "active_instances!"
        FROM analytics.release_uptake_weekly
        WHERE week_start > $1 AND active_instances > 0
        ORDER BY product_family, week_start, version
        "#,
        since
    )
    .fetch_all(&mut *tx)
    .await?;
    let pmm_features = sqlx::query_as!(
        FeatureAdoption,
        r#"
        SELECT feature AS "feature!", active_servers::bigint AS "active_servers!",
               enabled_servers::bigint AS "enabled_servers!"
        FROM analytics.pmm_feature_adoption
        ORDER BY feature
        "#
    )
    .fetch_all(&mut *tx)
    .await?;
    let database_lines = sqlx::query_as!(
        DatabaseLine,
        r#"
        SELECT database AS "database!", line, pmm_servers::bigint AS "pmm_servers!",
               services::bigint AS "services!", share_of_services::float8 AS "share_of_services!"
        FROM analytics.monitored_database_lines
        ORDER BY database, line
        "#
    )
    .fetch_all(&mut *tx)
    .await?;
    let countries = sqlx::query_as!(
        CountryCount,
        r#"
        SELECT country_code, sum(active_instances)::bigint AS "active_instances!"
        FROM analytics.countries
        GROUP BY country_code
        HAVING sum(active_instances) > 0
        ORDER BY country_code
        "#
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(StatsRollups {
        snapshot,
        weekly_activity,
        weekly_versions,
        pmm_features,
        database_lines,
        countries,
    })
}
