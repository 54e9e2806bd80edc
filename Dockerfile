# syntax=docker/dockerfile:1
#
# telemetry-server image: built in the official Rust image, run from a slim Debian holding only the
# binary, the bundled GeoIP database and its licence, as an unprivileged user.
#
#   docker build -t telemetry-server .
#   docker run --rm -p 8080:8080 -e DATABASE_URL=postgres://... telemetry-server
#
# docker-compose.yml next to this file runs it together with PostgreSQL; docs/deployment.md covers
# production set-ups.

FROM rust:1-bookworm AS builder
WORKDIR /src
# sqlx checks its queries against .sqlx/ instead of a live database (also set in .cargo/config.toml).
ENV SQLX_OFFLINE=true

# Dependencies first, in a layer of their own that is rebuilt only when Cargo.toml, Cargo.lock or the
# vendored sqlx-core change: compile them against placeholder sources, then forget the placeholder
# crate. vendor/ is needed here because Cargo.toml's [patch] points at it (vendor/README.md).
# scripts/check-build-context (run by scripts/test) builds the crate from exactly what these COPY
# lines and .dockerignore let through, since no Docker engine runs in CI.
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY vendor vendor
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src target/release/.fingerprint/telemetry-server-*

# The service itself. Templates (askama) and static files are compiled into the binary, and so are
# the migrations, so the runtime image needs none of them.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo build --release --locked \
    && install -D -m 0755 target/release/telemetry-server /out/telemetry-server

FROM debian:bookworm-slim AS runtime
# ca-certificates: for sslmode=verify-full connections to a managed PostgreSQL.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 telemetry \
    && useradd --system --uid 10001 --gid telemetry --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin telemetry

COPY --from=builder /out/telemetry-server /usr/local/bin/telemetry-server
# Where the binary looks for the bundled database when GEOIP_DATABASE is not set
# (geoip::bundled_geoip_candidates). CC BY 4.0: the licence travels with it.
COPY data/geo-whois-asn-country.mmdb data/NRO_LICENSE /usr/share/telemetry-server/

USER 10001:10001
ENV LISTEN_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json
EXPOSE 8080
# SIGTERM starts the graceful shutdown (SHUTDOWN_GRACE_SECS, default 30 s): give `docker stop` more
# than that, e.g. `docker stop -t 45` or compose's stop_grace_period.
STOPSIGNAL SIGTERM

# There is no curl in the image; bash's /dev/tcp speaks enough HTTP to ask /healthz. Plain HTTP only:
# with TLS_CERT/TLS_KEY set, override or disable this check (docs/deployment.md).
HEALTHCHECK --interval=15s --timeout=3s --start-period=90s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${LISTEN_ADDR##*:} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

ENTRYPOINT ["/usr/local/bin/telemetry-server"]
