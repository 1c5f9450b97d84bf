package dashboard

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/btcpipe/btcpipe/internal/textfmt"
)

// The browser tests drive Debian's chromium (make chromium installs it)
// through the DevTools protocol. One browser serves the whole package; each
// test gets its own tab.
var (
	browserOnce   sync.Once
	browserCtx    context.Context
	browserCancel func()
	browserErr    error
	browserDir    string
)

// chromiumPath finds the browser: BTCPIPE_CHROMIUM, or chromium on PATH.
func chromiumPath() (string, error) {
	if p := os.Getenv("BTCPIPE_CHROMIUM"); p != "" {
		return exec.LookPath(p)
	}
	return exec.LookPath("chromium")
}

// browser returns a new tab of the shared headless chromium, closed when
// the test ends. Without chromium the test skips, or fails under CI=true.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := chromiumPath()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is not installed (make chromium installs it): %v", err)
		}
		t.Skip("skipping: chromium is not installed (make chromium installs it)")
	}
	browserOnce.Do(func() {
		browserDir, browserErr = os.MkdirTemp("", "btcpipe-chromium-")
		if browserErr != nil {
			return
		}
		opts := []chromedp.ExecAllocatorOption{
			chromedp.ExecPath(path),
			chromedp.Headless,
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.NoFirstRun,
			chromedp.NoDefaultBrowserCheck,
			chromedp.UserDataDir(browserDir),
			chromedp.WindowSize(1200, 900),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("disable-default-apps", true),
			chromedp.Flag("disable-extensions", true),
			chromedp.Flag("hide-scrollbars", true),
			chromedp.Flag("mute-audio", true),
			chromedp.Flag("disable-dev-shm-usage", true), // containers have a small /dev/shm
			chromedp.Flag("no-proxy-server", true),
			// Only loopback: any other host name fails to resolve.
			chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"),
		}
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, cancelBrowser := chromedp.NewContext(actx)
		if err := chromedp.Do(bctx); err != nil { // starts the browser
			cancelBrowser()
			cancelAlloc()
			browserErr = err
			return
		}
		browserCtx = bctx
		browserCancel = func() { cancelBrowser(); cancelAlloc() }
	})
	if browserErr != nil {
		t.Fatalf("starting chromium (%s): %v", path, browserErr)
	}
	tab, cancelTab := chromedp.NewContext(browserCtx)
	tab, cancelTimeout := context.WithTimeout(tab, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelTab() })
	return tab
}

// stopBrowser ends the shared browser and removes its profile.
func stopBrowser() {
	if browserCancel != nil {
		browserCancel()
	}
	if browserDir != "" {
		os.RemoveAll(browserDir)
	}
}

// load navigates tab to url and waits for the footer.
func load(t *testing.T, tab context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(tab, chromedp.Navigate(url), chromedp.WaitVisible("footer")); err != nil {
		t.Fatalf("loading %s: %v", url, err)
	}
}

// eval evaluates a JavaScript expression in tab.
func eval[T any](t *testing.T, tab context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// andWait runs a (a key press, a click) and waits for the page it loads.
func andWait(t *testing.T, tab context.Context, what string, a chromedp.Action[chromedp.Void]) {
	t.Helper()
	if _, err := chromedp.Run(tab, chromedp.WaitEvent(cdppage.LoadEventFired, nil, a)); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := chromedp.Do(tab, chromedp.WaitVisible("footer")); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestBrowserOverviewShowsTheCounts(t *testing.T) {
	tab := browser(t)
	fx := newFixture(t, 400, 20)
	load(t, tab, fx.srv.URL+"/")
	got := eval[map[string]string](t, tab, `Object.fromEntries([...document.querySelectorAll(".tile")].map(e => [e.id, e.querySelector(".value").innerText]))`)
	if want := textfmt.Group(fx.reachable); got["tile-reachable"] != want {
		t.Errorf("reachable tile shows %q, want %q", got["tile-reachable"], want)
	}
	for _, n := range []string{"ipv4", "ipv6", "torv3", "i2p", "cjdns"} {
		if want := textfmt.Group(fx.byNetwork[n]); got["tile-net-"+n] != want {
			t.Errorf("%s tile shows %q, want %q", n, got["tile-net-"+n], want)
		}
	}
	// The chart's line of all networks is drawn and ends at the count.
	last := eval[string](t, tab, `document.querySelector('g.series[data-key="all"]').dataset.last`)
	if last != fmt.Sprint(fx.reachable) {
		t.Errorf("the chart's line of all networks ends at %s, want %d", last, fx.reachable)
	}
	if w := eval[float64](t, tab, `document.querySelector('g.series[data-key="all"] polyline').getBBox().width`); w < 500 {
		t.Errorf("the line over time is %v units wide: not drawn across the chart", w)
	}
	// The first Tab reaches the skip link, visibly focused.
	if err := chromedp.Do(tab, chromedp.KeyEvent(kb.Tab)); err != nil {
		t.Fatal(err)
	}
	if cls := eval[string](t, tab, `document.activeElement.className + " " + getComputedStyle(document.activeElement).outlineStyle`); cls != "skip solid" {
		t.Errorf("after one Tab the focus is on %q, want the skip link with an outline", cls)
	}
}

func TestBrowserNodeListSearchesAndSorts(t *testing.T) {
	tab := browser(t)
	fx := newFixture(t, 400, 10)
	want := 0
	for _, o := range fx.latest {
		if strings.Contains(o.UserAgent, "/Satoshi:27.1") {
			want++
		}
	}
	load(t, tab, fx.srv.URL+"/nodes")
	if err := chromedp.Do(tab,
		chromedp.SetValue(chromedp.ID("sort"), "latency"),
		chromedp.SetValue(chromedp.ID("order"), "desc"),
		chromedp.SendKeys(chromedp.ID("q"), "satoshi:27.1"),
	); err != nil {
		t.Fatal(err)
	}
	andWait(t, tab, "submitting the search with Enter", chromedp.KeyEvent(kb.Enter))
	type row struct {
		UA      string `json:"ua"`
		Latency string `json:"latency"`
	}
	const rowsJS = `[...document.querySelectorAll("#nodes tbody tr[data-addr]")].map(r => ({ua: r.cells[3].innerText, latency: r.cells[5].innerText}))`
	rs := eval[[]row](t, tab, rowsJS)
	if total := eval[string](t, tab, `document.getElementById("total").dataset.total`); total != fmt.Sprint(want) || len(rs) != min(want, PageSize) {
		t.Fatalf("search: %s nodes, %d rows; want %d", total, len(rs), want)
	}
	for i, r := range rs {
		if !strings.Contains(r.UA, "/Satoshi:27.1") {
			t.Errorf("row %d: user agent %q does not match", i, r.UA)
		}
		if i > 0 && msOf(r.Latency) > msOf(rs[i-1].Latency) {
			t.Errorf("row %d: latency %s after %s, not descending", i, r.Latency, rs[i-1].Latency)
		}
	}
	if loc := eval[string](t, tab, `location.search`); !strings.Contains(loc, "q=satoshi%3A27.1") {
		t.Errorf("the search is not in the address: %s", loc)
	}
	// The Latency header sorts the other way, keeping the search.
	andWait(t, tab, "clicking the Latency header", chromedp.Click(`th[aria-sort="descending"] a`))
	rs = eval[[]row](t, tab, rowsJS)
	if len(rs) != min(want, PageSize) {
		t.Fatalf("after sorting: %d rows, want %d", len(rs), min(want, PageSize))
	}
	for i := 1; i < len(rs); i++ {
		if msOf(rs[i].Latency) < msOf(rs[i-1].Latency) {
			t.Errorf("row %d: latency %s after %s, not ascending", i, rs[i].Latency, rs[i-1].Latency)
		}
	}
	if s := eval[string](t, tab, `document.querySelector('th[aria-sort="ascending"]').textContent`); !strings.HasPrefix(s, "Latency") {
		t.Errorf("the ascending column is %q, want Latency", s)
	}
	// Sorted by user agent, descending, paging on to page 2.
	load(t, tab, fx.srv.URL+"/nodes?sort=user_agent&order=desc")
	first := eval[[]row](t, tab, rowsJS)
	andWait(t, tab, "following Next", chromedp.Click(chromedp.ID("next")))
	second := eval[[]row](t, tab, rowsJS)
	if len(first) != PageSize || len(second) == 0 || second[0].UA > first[len(first)-1].UA {
		t.Errorf("page 2 does not go on from page 1 in descending user agent order: %q then %q", first[len(first)-1].UA, second[0].UA)
	}
}

func TestBrowserNodePageShowsItsHistory(t *testing.T) {
	tab := browser(t)
	fx := newFixture(t, 60, 20)
	load(t, tab, fx.srv.URL+"/nodes?q=203.0.113.10")
	andWait(t, tab, "opening the node", chromedp.Click(`#nodes td.addr a`))
	if h := eval[string](t, tab, `document.querySelector("h1").innerText`); !strings.HasPrefix(h, "203.0.113.10:8333") {
		t.Fatalf("node page heading %q", h)
	}
	changes := eval[[][]string](t, tab, `[...document.querySelectorAll("#changes tbody tr")].map(r => [...r.cells].map(c => c.innerText))`)
	if len(changes) != 1 || changes[0][2] != "user agent" || changes[0][3] != "/Satoshi:26.1.0/" || changes[0][4] != "/Satoshi:28.1.0/" {
		t.Errorf("changes %q, want one: user agent /Satoshi:26.1.0/ → /Satoshi:28.1.0/", changes)
	}
	if n := eval[int](t, tab, `document.querySelectorAll("svg.timeline rect.run.reachable").length`); n != 2 {
		t.Errorf("%d reachable runs on the timeline, want 2", n)
	}
	if n := eval[int](t, tab, `document.querySelectorAll("#runs tbody tr").length`); n != 2 {
		t.Errorf("%d runs listed, want 2", n)
	}
	up := eval[[]string](t, tab, `[...document.querySelectorAll("#uptime td.n")].map(c => c.innerText)`)
	if len(up) != 5 || up[0] != "100.0%" {
		t.Errorf("uptimes %q, want five with 2 hours at 100.0%%", up)
	}
}

func TestBrowserScriptInUserAgentIsText(t *testing.T) {
	tab := browser(t)
	fx := newFixture(t, 40, 4)
	for _, path := range []string{nodeURL(fx.xss), "/nodes?q=evil", "/", fmt.Sprintf("/snapshots/%d", fx.ids[len(fx.ids)-1]) + "?q=evil"} {
		load(t, tab, fx.srv.URL+path)
		if pwned := eval[bool](t, tab, `window.__pwned !== undefined`); pwned {
			t.Errorf("%s: the user agent ran as script", path)
		}
		if n := eval[int](t, tab, `document.scripts.length + document.querySelectorAll("img[src=x]").length`); n != 1 {
			t.Errorf("%s: %d script and injected img elements, want only the dashboard's script", path, n)
		}
		if !eval[bool](t, tab, fmt.Sprintf(`document.body.innerText.includes(%q)`, XSSAgent)) && path != "/" {
			t.Errorf("%s: the user agent is not shown as text", path)
		}
	}
	load(t, tab, fx.srv.URL+nodeURL(fx.xss))
	if ua := eval[string](t, tab, `document.getElementById("node-ua").textContent`); ua != XSSAgent {
		t.Errorf("node page user agent %q, want %q", ua, XSSAgent)
	}
}
