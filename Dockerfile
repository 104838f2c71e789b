# syntax=docker/dockerfile:1
#
# herald's container image: one static binary (CGO_ENABLED=0) on a distroless base, no shell, run
# as a non-root user. The entrypoint is `herald server`; it reads its configuration from
# /etc/herald/config.hcl and, where the configuration's tls block points there, its certificates
# from /etc/herald/tls/. Both are mounted, never baked in:
#
#   docker build -t herald:1.2.0 \
#     --build-arg VERSION=1.2.0 \
#     --build-arg COMMIT="$(git rev-parse HEAD)" \
#     --build-arg BUILD_TIME="$(date -u +%Y-%m-%dT%H:%M:%SZ)" .
#   docker run --rm -p 8761:8761 \
#     -v "$PWD/herald.hcl:/etc/herald/config.hcl:ro" \
#     -v "$PWD/tls:/etc/herald/tls:ro" \
#     herald:1.2.0
#
# The configuration must listen on all interfaces inside the container: node { bind_addr = "0.0.0.0" }.
# Any option can also be set with HERALD_<KEY__PATH> environment variables (see config.hcl).
# Other subcommands run with --entrypoint: docker run --rm --entrypoint herald herald:1.2.0 version

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first: this layer is reused as long as the go.mod and go.sum files (herald's and the
# SDK's, a module of its own required through a replace) do not change.
COPY go.mod go.sum ./
COPY sdk/go.mod sdk/go.sum ./sdk/
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=""
ARG COMMIT=""
ARG BUILD_TIME=""
# -trimpath keeps the build machine's paths out of the binary; the version, commit and build time
# come from the build arguments (the build context has no .git, so -buildvcs is off).
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.buildTime=${BUILD_TIME}" \
      -o /out/herald ./cmd/herald

# distroless/static: CA certificates, /etc/passwd with the nonroot user (65532), a writable /tmp
# (plugin processes put their unix sockets there), and nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=""
ARG COMMIT=""
LABEL org.opencontainers.image.title="herald" \
      org.opencontainers.image.description="A service registry in the line of Netflix Eureka" \
      org.opencontainers.image.source="https://github.com/heraldhq/herald" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /out/herald /usr/local/bin/herald
USER 65532:65532
EXPOSE 8761
ENTRYPOINT ["/usr/local/bin/herald", "server"]
CMD ["-config", "/etc/herald/config.hcl"]
