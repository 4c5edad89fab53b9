# Builds the gateway and the reconciler for compose.yaml.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p gateway -p reconciler -p payments --features payments/stub --bins

FROM debian:bookworm-slim
RUN useradd --system seats
COPY --from=build /src/target/release/gateway /src/target/release/reconciler /src/target/release/ticketctl /src/target/release/sandbox-provider /usr/local/bin/
USER seats
