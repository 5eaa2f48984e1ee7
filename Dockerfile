# Build: the release binary with the default features, so Postgres as well
# as SQLite: linked against libpq (libpq-dev here, libpq5 below); SQLite is
# bundled into it.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY migrations ./migrations
COPY src ./src
COPY dashboard ./dashboard
RUN cargo build --release --locked

# Run: libpq for Postgres, curl for the health check.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/sessiond --create-home sessiond
COPY --from=build /src/target/release/sessiond /usr/local/bin/sessiond
USER sessiond
WORKDIR /var/lib/sessiond
ENV SESSIOND_BIND=0.0.0.0:8080 \
    SESSIOND_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["sessiond"]
CMD ["serve"]
