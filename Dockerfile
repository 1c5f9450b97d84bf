# syntax=docker/dockerfile:1
#
# btcpipe in a container, the full build for machines with a registry: Go
# builds a static binary (CGO_ENABLED=0, -trimpath), and the runtime stage is
# the same as Dockerfile.host's, which `make image` builds offline from a
# binary built on the host. Every setting comes from the environment
# (btcpipe help lists them); the image needs no file and writes none, so it
# runs with a read-only root filesystem.
#
#   docker build -t btcpipe .                 # this file (pulls golang)
#   make image                                # offline: Dockerfile.host, podman or docker
#   docker run --rm -e BTCPIPE_NETWORK=testnet4 -p 9090:9090 btcpipe
#   docker run --rm -e BTCPIPE_NETWORK=signet btcpipe crawl > signet.jsonl
#
# The HEALTHCHECK runs `btcpipe healthcheck`, which asks the running node's
# /readyz on BTCPIPE_METRICS_ADDR (healthy once a handshake has completed,
# unhealthy while it reconnects); no shell is needed, and there is none.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-s -w" -o /out/btcpipe ./cmd/btcpipe \
 && /out/btcpipe help > /dev/null
# monitor (issue 16): /data for the SQLite file, owned by the nonroot user,
# so that a named volume mounted there is writable by it.
RUN mkdir -p /out/data

# The runtime: nothing but the static binary (no libc, no shell, no
# /etc/passwd), run as the unprivileged numeric user 65532 (distroless's
# "nonroot"). Keep it identical to Dockerfile.host.
FROM scratch
# monitor (issue 16): the volume for the SQLite file (before the binary's COPY, which TestDockerfile reads last).
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build /out/btcpipe /usr/local/bin/btcpipe
USER 65532:65532
ENV BTCPIPE_LOG_FORMAT=json \
    BTCPIPE_METRICS_ADDR=:9090
EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/btcpipe", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/btcpipe"]
CMD ["node"]
