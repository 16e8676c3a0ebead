# syntax=docker/dockerfile:1
# The mp-gateway container image: the one binary, linked statically against
# musl, on an empty base (FROM scratch: no libc, no shell, no package manager),
# running as uid/gid 65532. TLS is rustls with ring, so there is no OpenSSL to
# ship; the only other file is a CA bundle (see the runtime stage).
#
# With access to a registry (the builder stage pulls a Rust image):
#
#   podman build -t registry.example.com/mp-gateway:0.1.0 .    # or docker build
#
# Without one: the runtime stage copies only from the stage named `build`, and
# that name can be pointed at a local directory holding `mp-gateway` (built
# with --target x86_64-unknown-linux-musl) and `ca-certificates.crt`:
#
#   podman build --target runtime --build-context build=DIR .  # or docker buildx build
#
# scripts/container-smoke does exactly that, then runs the image.
# helm/mp-gateway deploys it (image.repository, image.tag or image.digest).

# The toolchain CI uses; the crate is edition 2024 (Rust 1.85 or later).
ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
# musl-gcc compiles ring's C and assembly for the musl target.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
# BuildKit cache mounts keep downloaded crates and compiled dependencies between
# builds; the binary is copied out because the target mount is not in the layer.
# No system protoc is needed: build.rs compiles proto/ with protox. The
# workspace's bench/ member is in the context only so that Cargo.toml resolves.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --target x86_64-unknown-linux-musl --release --locked -p mp-gateway --bin mp-gateway \
 && cp target/x86_64-unknown-linux-musl/release/mp-gateway /mp-gateway \
 && cp /etc/ssl/certs/ca-certificates.crt /ca-certificates.crt

FROM scratch AS runtime
COPY --from=build /mp-gateway /mp-gateway
# The MP client (reqwest with rustls-platform-verifier) and the OTLP exporter
# (tls-roots) read their trusted roots at start through rustls-native-certs:
# the file named by SSL_CERT_FILE, else well-known paths that do not exist in an
# empty image. Without a bundle the MP client cannot even be built and the
# gateway exits at start, sandbox mode included. Mount another bundle and point
# SSL_CERT_FILE at it to trust a private CA.
COPY --from=build /ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# Numeric, so Kubernetes' runAsNonRoot can verify it; the image has no
# /etc/passwd to name a user in.
USER 65532:65532
# gRPC (GRPC_ADDR), then health, metrics and the MP callback (HTTP_ADDR).
EXPOSE 50051 8080
ENTRYPOINT ["/mp-gateway"]
