# Build: the release binary with the default features, so Postgres as well
# as SQLite: linked against libpq (libpq-dev here, libpq5 below); SQLite is
# bundled into it. Stripped, without debug info, and without sessiond-seed
# (a benchmark tool).
FROM rust:1-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq-dev \
    && rm -rf /var/lib/apt/lists/*
ENV CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=true
WORKDIR /src
# The dependencies first, built against empty sources: this layer is reused
# until Cargo.toml or Cargo.lock change, so a change to the code rebuilds
# sessiond alone, not its ~270 crates.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --bin sessiond \
    && rm -rf src
COPY migrations ./migrations
COPY src ./src
COPY dashboard ./dashboard
# The real sources are newer than the placeholders' build.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin sessiond

# Run: libpq for Postgres, curl for the health check, as an unprivileged
# user whose home holds the store's key file (a volume in docker-compose.yml).
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/sessiond --create-home sessiond
COPY --from=build /src/target/release/sessiond /usr/local/bin/sessiond
USER 10001
WORKDIR /var/lib/sessiond
ENV SESSIOND_BIND=0.0.0.0:8080 \
    SESSIOND_LOG_FORMAT=json
EXPOSE 8080
# The port is read from SESSIOND_BIND, so the check follows a changed bind.
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD ["/bin/sh", "-c", "curl -fsS \"http://127.0.0.1:${SESSIOND_BIND##*:}/readyz\" || exit 1"]
ENTRYPOINT ["sessiond"]
CMD ["serve"]
