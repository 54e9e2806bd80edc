-- PMM 2's legacy telemetry protocols land in the same tables; reports.protocol tells them apart.

COMMENT ON COLUMN reports.protocol IS
    'How the report arrived: GenericReport (POST /v1/telemetry/GenericReport: PMM 3, '
    'percona-telemetry-agent, call-home.sh, Everest); Report/ServerMetric (POST /v1/telemetry/Report '
    'with {"metrics":[...]}: PMM 2.28-2.4x); Report/Event (POST /v1/telemetry/Report with '
    '{"events":[...]}: PMM 2.25-2.27); gRPC (percona.platform.telemetry.reporter.v1.ReporterAPI/Report: '
    'PMM 2.4-2.24); v1 (plain-text version-check lines once sent to v.percona.com: PMM 2.0-2.27, whose '
    'report_id is derived from instance, UTC day and version, and whose created_at is the arrival time). '
    'All legacy protocols are stored as PRODUCT_FAMILY_PMM with the same instance_id the server sends '
    'from PMM 3, so upgrades from 2.x to 3.x show in upgrades.';
