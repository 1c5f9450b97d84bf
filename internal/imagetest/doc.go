// Package imagetest checks btcpipe's container image with the image really
// running: `make test-image` builds it (Dockerfile.host, podman or docker) and
// runs these tests with BTCPIPE_IMAGE naming it and BTCPIPE_CONTAINER_ENGINE
// the engine's command line (for example "podman --runtime runc
// --storage-driver vfs --cgroup-manager cgroupfs"). Without BTCPIPE_IMAGE the
// tests skip: `make test` does not build images.
//
// The container runs with --network host and --read-only against a btcd and
// a Bitcoin Core started on loopback by internal/btcdtest and
// internal/coretest; nothing is dialled beyond 127.0.0.1.
package imagetest
