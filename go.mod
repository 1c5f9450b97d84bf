module github.com/btcpipe/btcpipe

go 1.26.0

require (
	github.com/btcsuite/btcd/wire/v2 v2.0.1
	github.com/kelseyhightower/envconfig v1.4.0
	github.com/sirupsen/logrus v1.10.2
	go.uber.org/goleak v1.3.0
	golang.org/x/sync v0.24.0
)

require (
	github.com/btcsuite/btcd/chainhash/v2 v2.0.0 // indirect
	golang.org/x/crypto v0.40.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
