package qmp

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestMonitorRun(t *testing.T) {
	var mu sync.Mutex
	var got []request
	s := newFakeServer(t, func(req request, send func(any)) {
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		switch req.Execute {
		case "set_link", "stop", "system_powerdown":
			send(ret(req, map[string]any{}))
		default:
			standard(req, send)
		}
	})
	s.listen()
	c := dial(t, s)
	ctx := context.Background()
	r := c.Raw(ctx)

	if err := r.SetLink("nic-vlan1", false); err != nil {
		t.Errorf("SetLink: %v", err)
	}
	if err := r.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	out, err := r.HumanMonitorCommand("info status", nil)
	if err != nil || out != "you said info status\r\n" {
		t.Errorf("HumanMonitorCommand = %q, %v", out, err)
	}
	v, err := r.QueryVersion()
	if err != nil || v.Qemu.Major != 7 || v.Package != "fake" {
		t.Errorf("QueryVersion = %+v, %v", v, err)
	}
	// An error reply is our *Error, with QEMU's class.
	var qe *Error
	if err := r.Cont(); !errors.As(err, &qe) || qe.Class != "CommandNotFound" || qe.Command != "cont" {
		t.Errorf("Cont on a server without it: %v, want a CommandNotFound *Error", err)
	}
	// No 64 KiB limit.
	reply, err := c.Monitor(ctx).Run([]byte(`{"execute":"big"}`))
	var big struct{ Return string }
	if err != nil || json.Unmarshal(reply, &big) != nil || len(big.Return) != 1<<20 {
		t.Errorf("1 MiB reply: %d bytes, %v", len(reply), err)
	}
	if _, err := c.Monitor(ctx).Run([]byte(`{"arguments":{}}`)); err == nil {
		t.Error("Run accepted a command without execute")
	}

	mu.Lock()
	defer mu.Unlock()
	var args []string
	for _, r := range got {
		args = append(args, r.Execute+" "+string(r.Arguments))
	}
	want := []string{
		`set_link {"name":"nic-vlan1","up":false}`,
		"stop {}",
		`human-monitor-command {"command-line":"info status"}`,
		"query-version {}",
		"cont {}",
		"big ",
	}
	if diff := cmp.Diff(want, args); diff != "" {
		t.Errorf("commands QEMU saw (-want +got):\n%s", diff)
	}
}

func TestMonitorContext(t *testing.T) {
	s := newFakeServer(t, func(req request, send func(any)) {
		if req.Execute == "qmp_capabilities" {
			send(ret(req, map[string]any{}))
		} // anything else: never answered
	})
	s.listen()
	c := dial(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := c.Raw(ctx).Stop(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop with an expiring context: %v", err)
	}
}

func TestMonitorEvents(t *testing.T) {
	s := newFakeServer(t, standard)
	s.listen()
	c := dial(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs, err := c.Monitor(ctx).Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Execute(ctx, "with-event", nil, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-evs:
		if ev.Event != "STOP" || ev.Timestamp.Seconds != 1700000000 || ev.Timestamp.Microseconds != 5 {
			t.Errorf("event = %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	cancel()
	for range evs { // closed once ctx ended
	}
}

// TestMonitorRealQEMU sends the commands the runner uses through go-qemu's
// generated API to a real QEMU (-machine none: no guest).
func TestMonitorRealQEMU(t *testing.T) {
	bin, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not found: install qemu-system-x86 to run this test")
	}
	sock := filepath.Join(shortDir(t), "qmp")
	cmd := exec.Command(bin, "-machine", "none", "-display", "none", "-nodefaults",
		"-qmp", "unix:"+sock+",server=on,wait=off")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := c.Raw(ctx)
	if err := r.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	st, err := r.QueryStatus()
	if err != nil || st.Running {
		t.Errorf("QueryStatus after stop = %+v, %v", st, err)
	}
	if err := r.Cont(); err != nil {
		t.Errorf("Cont: %v", err)
	}
	if st, err := r.QueryStatus(); err != nil || !st.Running {
		t.Errorf("QueryStatus after cont = %+v, %v", st, err)
	}
	// A reply larger than go-qemu's own reader takes (64 KiB).
	help, err := r.HumanMonitorCommand("help", nil)
	if err != nil || !strings.Contains(help, "info") {
		t.Errorf("help: %d bytes, %v", len(help), err)
	}
	schema, err := c.Monitor(ctx).Run([]byte(`{"execute":"query-qmp-schema"}`))
	if err != nil || len(schema) < 64<<10 {
		t.Errorf("query-qmp-schema: %d bytes, %v (want more than 64 KiB)", len(schema), err)
	}
	var qe *Error
	if err := r.SetLink("no-such-nic", false); !errors.As(err, &qe) {
		t.Errorf("SetLink of a missing NIC: %v, want *Error", err)
	}
	if err := r.Quit(); err != nil && !errors.Is(err, ErrDisconnected) {
		t.Errorf("Quit: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Error("qemu did not exit after quit")
	}
}
