package hostport_test

import (
	"testing"

	"github.com/btcpipe/btcpipe/internal/hostport"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		in       string
		wantHost string
		wantPort uint16
		wantErr  bool
	}{
		{in: "1.2.3.4:8333", wantHost: "1.2.3.4", wantPort: 8333},
		{in: "1.2.3.4", wantHost: "1.2.3.4", wantPort: 18444},
		{in: "[::1]:18445", wantHost: "::1", wantPort: 18445},
		{in: "[::1]", wantHost: "::1", wantPort: 18444},
		{in: "::1", wantHost: "::1", wantPort: 18444},
		{in: "2001:db8::1", wantHost: "2001:db8::1", wantPort: 18444},
		{in: "[2001:db8::1]:1", wantHost: "2001:db8::1", wantPort: 1},
		{in: "seed.example.org", wantHost: "seed.example.org", wantPort: 18444},
		{in: "seed.example.org:65535", wantHost: "seed.example.org", wantPort: 65535},
		{in: "localhost:8333", wantHost: "localhost", wantPort: 8333},
		{in: "host:0", wantErr: true},
		{in: "host:65536", wantErr: true},
		{in: "host:-1", wantErr: true},
		{in: "host:http", wantErr: true},
		{in: ":8333", wantErr: true},
		{in: "", wantErr: true},
		{in: "1.2.3.4:8333:1", wantErr: true},
		{in: "[::1", wantErr: true},
		{in: "[not an ip]", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			host, port, err := hostport.Split(tt.in, 18444)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Split(%q) = %q, %d, nil; want an error", tt.in, host, port)
				}
				return
			}
			if err != nil || host != tt.wantHost || port != tt.wantPort {
				t.Errorf("Split(%q) = %q, %d, %v; want %q, %d, nil", tt.in, host, port, err, tt.wantHost, tt.wantPort)
			}
		})
	}
}
