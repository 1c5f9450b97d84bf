# syntax=docker/dockerfile:1
#
# btcpipe in a container: a static binary (CGO_ENABLED=0) on distroless,
# running as an unprivileged user. Every setting comes from the environment
# (btcpipe help lists them); the image needs no file and writes none.
#
#   docker build -t btcpipe .
#   docker run --rm -e BTCPIPE_NETWORK=testnet4 -p 9090:9090 btcpipe
#   docker run --rm -e BTCPIPE_NETWORK=signet btcpipe crawl > signet.jsonl
#
# The HEALTHCHECK runs `btcpipe healthcheck`, which asks the running node's
# /readyz on BTCPIPE_METRICS_ADDR (healthy once a handshake has completed,
# unhealthy while it reconnects); no shell is needed.

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

# static-debian12: no libc, no shell; :nonroot runs as uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
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
