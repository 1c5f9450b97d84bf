package dashboard

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkPages renders pages of a generated 20,000-node network (three
// hourly snapshots): the node list of the newest snapshot (served from
// memory) sorted, searched and paged far in, the same list of an older
// snapshot (from the database), a node's history and the overview. Bytes
// are the page's size.
func BenchmarkPages(b *testing.B) {
	t0 := time.Now()
	benchFx := generate(b, 20_000, 3, time.Hour)
	benchSrv := mux(benchFx.store, New(benchFx.store, nil, nil))
	b.Logf("generated 3 snapshots of 20,000 nodes in %v", time.Since(t0).Round(time.Millisecond))
	old := benchFx.ids[0]
	for _, c := range []struct{ name, path string }{
		{"nodes/latest/by-address", "/nodes"},
		{"nodes/latest/by-uptime/page-200", "/nodes?sort=uptime&order=desc&page=200"},
		{"nodes/latest/search", "/nodes?q=satoshi:27&sort=latency"},
		{"nodes/older/by-latency/page-100", fmt.Sprintf("/snapshots/%d?sort=latency&page=100", old)},
		{"node", nodeURL(benchFx.upgraded)},
		{"overview", "/"},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, c.path, nil)
			size := 0
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				benchSrv.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("%s: %d", c.path, w.Code)
				}
				size = w.Body.Len()
				io.Discard.Write(w.Body.Bytes())
			}
			b.SetBytes(int64(size))
		})
	}
}
