# syntax=docker/dockerfile:1
#
# FerrumQ images for CI with access to a registry. One Dockerfile, two
# images, one per binary:
#
#   docker build --target broker   -t ferrumq/ferrumq-broker:0.1.0 .
#   docker build --target operator -t ferrumq/ferrumq-operator:0.1.0 .
#
# Why one image per binary: the broker runs in every broker pod and the
# operator in one Deployment; each image then carries only its own binary
# (smaller pulls, a smaller attack surface: the broker image holds no
# Kubernetes client), versions and CVE scans stay separate, and the image
# names are the defaults the rest of the project uses (the MqttBroker CRD
# defaults spec.image.repository to ferrumq/ferrumq-broker, the Helm chart
# runs ferrumq/ferrumq-operator). Both are built from one cargo build stage,
# so building both costs one compilation (BuildKit shares the stage).
#
# Runtime base: distroless/cc (glibc, libgcc_s, CA certificates, the
# "nonroot" user 65532, no shell, no package manager). The binaries sit at the
# filesystem root: the operator's StatefulSet runs `/ferrumq-broker --config
# ...` and its preStop hook `/ferrumq-broker drain --admin 127.0.0.1:9464`.
#
# Machines that cannot pull base images (like the project's CI) build the
# same layout FROM scratch with scripts/build-image and
# images/Dockerfile.scratch; tests/python/test_image.py checks that both
# files agree on user, entrypoint, ports, stop signal and labels.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# --- build: both binaries, release profile, debug info stripped ------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ferrumq-broker -p ferrumq-operator \
 && mkdir -p /out/bin /out/data \
 && for bin in ferrumq-broker ferrumq-operator; do \
        objcopy --strip-debug "target/release/$bin" "/out/bin/$bin"; \
    done

# --- runtime base: distroless, non-root -------------------------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime-base
# The broker's data directory (a volume in Kubernetes), writable by nonroot.
COPY --from=build --chown=65532:65532 /out/data /var/lib/ferrumq
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.vendor="FerrumQ" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/ferrumq/ferrumq" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
USER 65532:65532
WORKDIR /home/nonroot
STOPSIGNAL SIGTERM

# --- the broker: MQTT on 1883, admin (/metrics, /healthz, /readyz, POST /drain) on 9464
FROM runtime-base AS broker
COPY --from=build /out/bin/ferrumq-broker /ferrumq-broker
LABEL org.opencontainers.image.title="ferrumq-broker" \
      org.opencontainers.image.description="FerrumQ MQTT 3.1.1/5.0 broker"
EXPOSE 1883/tcp 9464/tcp
ENTRYPOINT ["/ferrumq-broker"]

# --- the operator: metrics and health probes on 8080
FROM runtime-base AS operator
COPY --from=build /out/bin/ferrumq-operator /ferrumq-operator
LABEL org.opencontainers.image.title="ferrumq-operator" \
      org.opencontainers.image.description="FerrumQ Kubernetes operator (MqttBroker, ferrumq.io/v1alpha1)"
EXPOSE 8080/tcp
ENTRYPOINT ["/ferrumq-operator"]
CMD ["run"]
