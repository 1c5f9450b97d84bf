package dashboard

import (
	"context"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
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
		return p, nil
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
