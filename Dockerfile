# syntax=docker/dockerfile:1
# The mp-gateway container image: a release build of the one binary on
# distroless (glibc and libgcc, no shell, no package manager), running as uid
# 65532. TLS is rustls with ring, so there is no OpenSSL to ship.
#
#   docker build -t registry.example.com/mp-gateway:0.1.0 .
#
# helm/mp-gateway deploys it (image.repository, image.tag or image.digest).

# The toolchain CI uses; the crate is edition 2024 (Rust 1.85 or later).
ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# BuildKit cache mounts keep downloaded crates and compiled dependencies between
# builds; the binary is copied out because the target mount is not in the layer.
# No system protoc is needed: build.rs compiles proto/ with protox.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin mp-gateway \
 && cp target/release/mp-gateway /usr/local/bin/mp-gateway

# Same Debian release as the builder, so the binary's glibc is there.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/mp-gateway /mp-gateway
# Numeric (distroless's "nonroot"), so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# gRPC (GRPC_ADDR), then health, metrics and the MP callback (HTTP_ADDR).
EXPOSE 50051 8080
ENTRYPOINT ["/mp-gateway"]
