module github.com/btcpipe/btcpipe

go 1.26.8
