package vlan

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// shortDir returns a short temporary directory for unix sockets.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// testPeer is a machine NIC: a unixgram socket that sends to the switch.
type testPeer struct {
	name string
	mac  MAC
	conn *net.UnixConn
	sw   *net.UnixAddr
}

func newSwitch(t *testing.T, names ...string) (*Switch, map[string]*testPeer) {
	t.Helper()
	dir := shortDir(t)
	s, err := NewSwitch(dir, 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	peers := map[string]*testPeer{}
	for i, name := range names {
		path := filepath.Join(dir, name+".sock")
		conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if err := s.AddPeer(name, path); err != nil {
			t.Fatal(err)
		}
		peers[name] = &testPeer{
			name: name,
			mac:  MAC{0x52, 0x54, 0x00, 0x12, 0x07, byte(i + 1)},
			conn: conn,
			sw:   &net.UnixAddr{Name: s.Path(), Net: "unixgram"},
		}
	}
	return s, peers
}

var broadcast = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func frame(dst, src MAC, payload string) []byte {
	f := append(append(append([]byte{}, dst[:]...), src[:]...), 0x08, 0x00)
	return append(f, payload...)
}

func (p *testPeer) send(t *testing.T, dst MAC, payload string) {
	t.Helper()
	if _, err := p.conn.WriteToUnix(frame(dst, p.mac, payload), p.sw); err != nil {
		t.Fatalf("%s sending: %v", p.name, err)
	}
}

// received returns the payloads p got: it waits (up to 30 s, so that a
// loaded machine does not fail the test) for the n frames expected, then
// 100 ms more for frames that should not come.
func (p *testPeer) received(t *testing.T, n int) []string {
	t.Helper()
	var got []string
	buf := make([]byte, maxFrame)
	for {
		wait := 100 * time.Millisecond
		if len(got) < n {
			wait = 30 * time.Second
		}
		_ = p.conn.SetReadDeadline(time.Now().Add(wait))
		k, _, err := p.conn.ReadFromUnix(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return got
			}
			t.Fatalf("%s receiving: %v", p.name, err)
		}
		if k < 14 {
			t.Fatalf("%s received a runt frame", p.name)
		}
		got = append(got, string(buf[14:k]))
	}
}

// deliveries maps every peer to what it received (peers that got nothing
// are left out), waiting for what want says each should get.
func deliveries(t *testing.T, peers map[string]*testPeer, want map[string][]string) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	for name, p := range peers {
		if r := p.received(t, len(want[name])); len(r) > 0 {
			sort.Strings(r)
			got[name] = r
		}
	}
	return got
}

// step is one frame sent in a scenario, or a change to the switch.
type step struct {
	from    string
	to      string // a peer name (its MAC), "bcast", "mcast" or "unknown"
	payload string
	do      func(*Switch) error
	want    map[string][]string // deliveries after this step; nil = none
}

func TestSwitch(t *testing.T) {
	unknown := MAC{0x52, 0x54, 0x00, 0xff, 0xff, 0xff}
	multicast := MAC{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}
	tests := []struct {
		name  string
		steps []step
	}{
		{"broadcast floods to all others", []step{
			{from: "a", to: "bcast", payload: "hello", want: map[string][]string{"b": {"hello"}, "c": {"hello"}}},
		}},
		{"multicast floods", []step{
			{from: "b", to: "mcast", payload: "m", want: map[string][]string{"a": {"m"}, "c": {"m"}}},
		}},
		{"unknown unicast floods", []step{
			{from: "c", to: "unknown", payload: "who", want: map[string][]string{"a": {"who"}, "b": {"who"}}},
		}},
		{"learned unicast goes to one peer", []step{
			{from: "a", to: "bcast", payload: "arp", want: map[string][]string{"b": {"arp"}, "c": {"arp"}}},
			{from: "b", to: "a", payload: "reply", want: map[string][]string{"a": {"reply"}}},
			{from: "a", to: "b", payload: "data", want: map[string][]string{"b": {"data"}}},
		}},
		{"unicast to a peer not yet learned floods", []step{
			{from: "a", to: "c", payload: "x", want: map[string][]string{"b": {"x"}, "c": {"x"}}},
		}},
		{"partition", []step{
			{from: "a", to: "bcast", payload: "learn a", want: map[string][]string{"b": {"learn a"}, "c": {"learn a"}}},
			{do: func(s *Switch) error { return s.SetPartition([][]string{{"a", "b"}, {"c"}}) }},
			{from: "a", to: "bcast", payload: "p1", want: map[string][]string{"b": {"p1"}}},
			{from: "c", to: "bcast", payload: "p2"},
			{from: "c", to: "a", payload: "p3"},
			{from: "b", to: "a", payload: "p4", want: map[string][]string{"a": {"p4"}}},
			{do: func(s *Switch) error { s.Heal(); return nil }},
			{from: "c", to: "a", payload: "healed", want: map[string][]string{"a": {"healed"}}},
			{from: "c", to: "bcast", payload: "all", want: map[string][]string{"a": {"all"}, "b": {"all"}}},
		}},
		{"peer in no group is isolated", []step{
			{do: func(s *Switch) error { return s.SetPartition([][]string{{"a", "b"}}) }},
			{from: "c", to: "bcast", payload: "alone"},
			{from: "a", to: "bcast", payload: "ab", want: map[string][]string{"b": {"ab"}}},
		}},
		{"link down", []step{
			{do: func(s *Switch) error { return s.SetLink("b", false) }},
			{from: "a", to: "bcast", payload: "no b", want: map[string][]string{"c": {"no b"}}},
			{from: "b", to: "bcast", payload: "from b"},
			{do: func(s *Switch) error { return s.SetLink("b", true) }},
			{from: "b", to: "bcast", payload: "b back", want: map[string][]string{"a": {"b back"}, "c": {"b back"}}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, peers := newSwitch(t, "a", "b", "c")
			for i, st := range tt.steps {
				if st.do != nil {
					if err := st.do(s); err != nil {
						t.Fatalf("step %d: %v", i, err)
					}
					continue
				}
				dst := map[string]MAC{"bcast": broadcast, "mcast": multicast, "unknown": unknown}[st.to]
				if p, ok := peers[st.to]; ok {
					dst = p.mac
				}
				peers[st.from].send(t, dst, st.payload)
				want := st.want
				if want == nil {
					want = map[string][]string{}
				}
				got := deliveries(t, peers, want)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("step %d (%s -> %s %q) deliveries (-want +got):\n%s", i, st.from, st.to, st.payload, diff)
				}
			}
		})
	}
}

func TestMACMoves(t *testing.T) {
	_, peers := newSwitch(t, "a", "b", "c")
	peers["a"].send(t, broadcast, "a")
	deliveries(t, peers, map[string][]string{"b": {"a"}, "c": {"a"}})
	// a's MAC now shows up behind c (a machine restarted on another port).
	c := peers["c"]
	if _, err := c.conn.WriteToUnix(frame(broadcast, peers["a"].mac, "moved"), c.sw); err != nil {
		t.Fatal(err)
	}
	deliveries(t, peers, map[string][]string{"a": {"moved"}, "b": {"moved"}})
	peers["b"].send(t, peers["a"].mac, "to a")
	want := map[string][]string{"c": {"to a"}}
	if diff := cmp.Diff(want, deliveries(t, peers, want)); diff != "" {
		t.Errorf("after the move (-want +got):\n%s", diff)
	}
}

func TestDropped(t *testing.T) {
	s, peers := newSwitch(t, "a", "b")
	dir := filepath.Dir(s.Path())
	// A sender the switch does not know.
	stranger, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "x.sock"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	sw := &net.UnixAddr{Name: s.Path(), Net: "unixgram"}
	if _, err := stranger.WriteToUnix(frame(broadcast, MAC{2}, "stranger"), sw); err != nil {
		t.Fatal(err)
	}
	// A runt frame.
	if _, err := peers["a"].conn.WriteToUnix([]byte{1, 2, 3}, sw); err != nil {
		t.Fatal(err)
	}
	if got := deliveries(t, peers, nil); len(got) != 0 {
		t.Errorf("dropped frames were delivered: %v", got)
	}
	// A peer whose socket does not exist yet does not stop the others.
	if err := s.AddPeer("late", filepath.Join(dir, "late.sock")); err != nil {
		t.Fatal(err)
	}
	peers["a"].send(t, broadcast, "still")
	want := map[string][]string{"b": {"still"}}
	if diff := cmp.Diff(want, deliveries(t, peers, want)); diff != "" {
		t.Errorf("with a missing peer socket (-want +got):\n%s", diff)
	}
}

func TestErrors(t *testing.T) {
	s, _ := newSwitch(t, "a", "b")
	tests := []struct {
		name string
		do   func() error
	}{
		{"partition with an unknown peer", func() error { return s.SetPartition([][]string{{"a", "nobody"}}) }},
		{"peer in two groups", func() error { return s.SetPartition([][]string{{"a"}, {"a", "b"}}) }},
		{"link of an unknown peer", func() error { return s.SetLink("nobody", false) }},
		{"empty peer name", func() error { return s.AddPeer("", "/tmp/x") }},
		{"socket of another peer", func() error {
			return s.AddPeer("c", filepath.Join(filepath.Dir(s.Path()), "a.sock"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); err == nil {
				t.Error("no error")
			}
		})
	}
	if diff := cmp.Diff([]string{"a", "b"}, s.Peers()); diff != "" {
		t.Errorf("Peers (-want +got):\n%s", diff)
	}
}

func TestClose(t *testing.T) {
	s, err := NewSwitch(shortDir(t), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(s.Path()) != "vlan1.sock" || s.ID() != 1 {
		t.Errorf("Path() = %s, ID() = %d", s.Path(), s.ID())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestLargeFrame(t *testing.T) {
	_, peers := newSwitch(t, "a", "b")
	payload := string(bytes.Repeat([]byte("j"), 9000)) // a jumbo frame
	peers["a"].send(t, broadcast, payload)
	got := peers["b"].received(t, 1)
	if len(got) != 1 || got[0] != payload {
		t.Errorf("jumbo frame: got %d frames", len(got))
	}
}
