package monitor

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperMain is the child process of TestSIGKILLDuringASnapshot: it
// writes one snapshot of many nodes and prints "begun ID" first, so the
// parent can kill it inside the write transaction.
func helperMain() int {
	dsn := os.Getenv("BTCPIPE_MONITOR_HELPER")
	s, err := Open(context.Background(), dsn, "test", "regtest")
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	at := t0.Add(time.Hour)
	id, err := s.BeginSnapshot(context.Background(), at)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	obs := make([]Observation, 200_000)
	for i := range obs {
		obs[i] = reachable(fmt.Sprintf("10.%d.%d.%d:8333", i>>16, (i>>8)&255, i&255), "/y/", 1, at)
	}
	fmt.Printf("begun %d\n", id)
	for range 100 { // keep writing until killed
		snap := &Snapshot{ID: id, Network: "regtest", Started: at, Obs: obs}
		if err := s.WriteSnapshot(context.Background(), snap); err != nil {
			fmt.Println("error", err)
			return 1
		}
		id, _ = s.BeginSnapshot(context.Background(), at)
	}
	return 0
}

func TestSIGKILLDuringASnapshot(t *testing.T) {
	forEach(t, func(t *testing.T, dsn string) {
		s := open(t, dsn)
		write(t, s, t0, reachable("127.0.0.1:18444", "/x/", 1, t0))
		s.Close()

		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "BTCPIPE_MONITOR_HELPER="+dsn)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		line, _ := bufio.NewReader(out).ReadString('\n')
		var id int64
		if _, err := fmt.Sscanf(line, "begun %d", &id); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("helper said %q", strings.TrimSpace(line))
		}
		time.Sleep(700 * time.Millisecond) // inside the transaction of 200,000 nodes
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		s = open(t, dsn)
		ctx := context.Background()
		var running, complete int
		s.DB().QueryRow(`SELECT COUNT(*) FROM snapshots WHERE status = 'running'`).Scan(&running)
		s.DB().QueryRow(`SELECT COUNT(*) FROM snapshots WHERE status = 'complete'`).Scan(&complete)
		if running != 0 {
			t.Errorf("%d snapshots still running after a restart", running)
		}
		si, _ := s.SnapshotByID(ctx, id)
		latest, _ := s.LatestID(ctx)
		t.Logf("killed helper: first snapshot %d is %s; %d complete, latest %d", id, si.Status, complete, latest)
		// Every complete snapshot is whole (200,000 nodes or the first 1),
		// the others list nothing.
		l, _ := s.Snapshots(ctx, 1000, 0)
		for _, sn := range l.Snapshots {
			p, err := s.SnapshotNodes(ctx, sn.ID, NodeQuery{Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case sn.Status == StatusComplete && p.Total != 200_000 && sn.ID != 1:
				t.Errorf("complete snapshot %d has %d nodes, want 200000", sn.ID, p.Total)
			case sn.Status != StatusComplete && sn.Status != StatusInterrupted:
				t.Errorf("snapshot %d is %q", sn.ID, sn.Status)
			}
		}
		if s.Dialect() == "sqlite" {
			var ok string
			s.DB().QueryRow(`PRAGMA integrity_check`).Scan(&ok)
			if ok != "ok" {
				t.Errorf("integrity_check: %s", ok)
			}
		}
		// And it goes on.
		write(t, s, t0.Add(2*time.Hour), reachable("127.0.0.1:18444", "/x/", 1, t0.Add(2*time.Hour)))
	})
}
