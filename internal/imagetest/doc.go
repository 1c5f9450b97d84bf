// Package imagetest checks btcpipe's container image with the image really
// running: `make test-image` builds it (Dockerfile.host, podman or docker) and
// runs these tests with BTCPIPE_IMAGE naming it and BTCPIPE_CONTAINER_ENGINE
// the engine's command line (for example "podman --runtime runc
// --storage-driver vfs --cgroup-manager cgroupfs"). The tests build only
// with -tags image, which make test-image passes: `make test` (no tag) does
// not build images, and has no test here to skip; with the tag a missing
// image or engine fails them.
//
// The container runs with --network host and --read-only against a btcd and
// a Bitcoin Core started on loopback by internal/btcdtest and
// internal/coretest; nothing is dialled beyond 127.0.0.1.
package imagetest
