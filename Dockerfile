# kubevirt-vss-exporter container image.
#
#   make image    (docker, podman or buildah build -t ghcr.io/kubevirt-vss-exporter/kubevirt-vss-exporter:<version> .)
#
# Release tags publish it for linux/amd64 and linux/arm64 (.github/workflows/image.yaml).
#
# Two stages on the same base: the builder installs the locked dependencies and the
# exporter's own wheel into /opt/venv; the final stage copies only that venv and runs
# it as a fixed non-root user. No compiler is needed: every locked dependency ships a
# manylinux wheel for x86_64 and aarch64 (--only-binary enforces it).
#
# The base image is pinned by exact version tag, not by digest: no digest was resolved
# when this file was written. To pin fully, append "@sha256:<digest>" as reported by
# `docker buildx imagetools inspect python:<tag>` for the tag below.
# requirements*.lock are resolved for CPython 3.11: regenerate them (commands in their
# headers, pip-tools' pip-compile) when moving PYTHON_IMAGE to another minor version.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_NO_INPUT=1

WORKDIR /src

# Build tools (setuptools, wheel) in a venv of their own, from a hashed lock, so the
# wheel build needs no unpinned download (--no-build-isolation below).
COPY requirements-build.lock ./
RUN python -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes --only-binary=:all: -r requirements-build.lock

# Runtime venv without pip or setuptools: the build venv's pip installs into it
# (--python). This layer is cached until requirements.lock changes.
COPY requirements.lock ./
RUN python -m venv --without-pip /opt/venv \
 && /opt/build/bin/python -m pip --python /opt/venv/bin/python install \
        --require-hashes --only-binary=:all: -r requirements.lock

COPY pyproject.toml ./
COPY exporter ./exporter
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /dist . \
 && /opt/build/bin/python -m pip --python /opt/venv/bin/python install --no-deps /dist/*.whl \
 && /opt/build/bin/python -m pip --python /opt/venv/bin/python check


FROM ${PYTHON_IMAGE}

ARG VERSION=0.1.0
# URL of the source repository, recorded in the image's OCI labels.
ARG SOURCE_URL=""

LABEL org.opencontainers.image.title="kubevirt-vss-exporter" \
      org.opencontainers.image.description="Prometheus exporter for KubeVirt guest-agent connectivity, filesystem freeze state, Windows VSS freeze failures and snapshot consistency" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"

# Bytecode was compiled at install time; the root filesystem is read-only at run time.
# UID 65532 has no passwd entry, and the Kubernetes client resolves the home directory
# when it is imported, so HOME is set here rather than left to the container runtime.
ENV PATH=/opt/venv/bin:${PATH} \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# Owned by root and not writable by the runtime user.
COPY --from=builder /opt/venv /opt/venv

# 65532 matches runAsUser/runAsGroup in deploy/; no passwd entry is needed.
USER 65532:65532
WORKDIR /tmp

# 9745: /metrics, /healthz, /readyz. 9746: guest reports (only when --guest-report-listen is set).
EXPOSE 9745 9746

ENTRYPOINT ["kubevirt-vss-exporter"]
CMD ["run"]
