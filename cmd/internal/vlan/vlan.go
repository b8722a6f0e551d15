// Package vlan is an in-process Ethernet switch for the virtual networks
// between test machines. Each machine NIC on a VLAN is a QEMU
//
//	-netdev dgram,id=ID,local.type=unix,local.path=<peer socket>,remote.type=unix,remote.path=<Switch.Path()>
//
// that sends every frame as one datagram to the switch's unixgram socket and
// receives frames on its own socket. The switch learns which peer owns which
// source MAC address, forwards unicast frames to the learned peer and floods
// broadcast, multicast and unknown-destination frames to every other peer.
// Frames never leave the host: there is no uplink.
//
// Tests can cut links (SetLink) and split the VLAN into groups that cannot
// reach each other (SetPartition, Heal). The switch does not look above the
// Ethernet header; it does no DHCP, ARP proxying, loss or delay.
package vlan

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// maxFrame bounds a datagram: QEMU's dgram backend has no offloads, so
// frames are at most MTU+header, but allow anything up to 64 KiB.
const maxFrame = 65536 + 14

// sendTimeout is how long a frame may wait for a slow peer before it is
// dropped (a switch drops rather than stalls every other port).
const sendTimeout = 50 * time.Millisecond

// MAC is an Ethernet address.
type MAC [6]byte

func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// Switch is one VLAN. Its methods may be called concurrently.
type Switch struct {
	id   int
	path string
	conn *net.UnixConn
	log  *slog.Logger
	done chan struct{} // closed when the forwarding loop has ended

	mu     sync.Mutex
	closed bool
	peers  map[string]*peer // by name
	byPath map[string]*peer // by socket path, the source address of frames
	macs   map[MAC]*peer    // learned source addresses
	groups map[string]int   // partition group of each peer; nil when healed
}

type peer struct {
	name string
	addr *net.UnixAddr
	up   bool
}

// NewSwitch creates VLAN id's switch socket in dir (keep dir short: unix
// socket paths are limited to 108 bytes) and starts forwarding. A nil log
// discards.
func NewSwitch(dir string, id int, log *slog.Logger) (*Switch, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	path := filepath.Join(dir, fmt.Sprintf("vlan%d.sock", id))
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("creating the switch of vlan %d: %w", id, err)
	}
	_ = conn.SetReadBuffer(4 << 20)
	_ = conn.SetWriteBuffer(4 << 20)
	s := &Switch{
		id:     id,
		path:   path,
		conn:   conn,
		log:    log.With("vlan", id),
		done:   make(chan struct{}),
		peers:  map[string]*peer{},
		byPath: map[string]*peer{},
		macs:   map[MAC]*peer{},
	}
	go s.loop()
	return s, nil
}

// ID is the VLAN number.
func (s *Switch) ID() int { return s.id }

// Path is the switch's socket, QEMU's remote.path.
func (s *Switch) Path() string { return s.path }

// AddPeer registers a port: the socket a machine's NIC receives on (QEMU's
// local.path, which is also where its frames come from). The socket need not
// exist yet; frames to it are dropped until it does. Adding a name again
// replaces its path. A new peer's link is up.
func (s *Switch) AddPeer(name, localPath string) error {
	if name == "" {
		return errors.New("adding a vlan peer: empty name")
	}
	key := filepath.Clean(localPath)
	s.mu.Lock()
	defer s.mu.Unlock()
	if other, ok := s.byPath[key]; ok && other.name != name {
		return fmt.Errorf("adding vlan %d peer %q: socket %s already belongs to %q", s.id, name, localPath, other.name)
	}
	if old, ok := s.peers[name]; ok {
		delete(s.byPath, old.addr.Name)
		s.forget(old)
	}
	p := &peer{name: name, addr: &net.UnixAddr{Name: key, Net: "unixgram"}, up: true}
	s.peers[name] = p
	s.byPath[key] = p
	return nil
}

// forget drops what was learned about p. s.mu is held.
func (s *Switch) forget(p *peer) {
	for m, q := range s.macs {
		if q == p {
			delete(s.macs, m)
		}
	}
}

// SetLink connects (up) or disconnects (down) one peer: while it is down the
// peer's frames are dropped and it receives none.
func (s *Switch) SetLink(name string, up bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.peers[name]
	if !ok {
		return fmt.Errorf("setting the link of vlan %d peer %q: no such peer", s.id, name)
	}
	p.up = up
	return nil
}

// SetPartition splits the VLAN: frames only pass between peers of the same
// group. A peer in no group is cut off from every other one. Every name must
// be a peer and appear once.
func (s *Switch) SetPartition(groups [][]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := map[string]int{}
	for i, group := range groups {
		for _, name := range group {
			if _, ok := s.peers[name]; !ok {
				return fmt.Errorf("partitioning vlan %d: no peer %q", s.id, name)
			}
			if _, dup := g[name]; dup {
				return fmt.Errorf("partitioning vlan %d: peer %q is in two groups", s.id, name)
			}
			g[name] = i
		}
	}
	s.groups = g
	return nil
}

// Heal undoes SetPartition.
func (s *Switch) Heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups = nil
}

// Peers lists the registered peer names, sorted.
func (s *Switch) Peers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.peers))
	for n := range s.peers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Close stops the switch and removes its socket.
func (s *Switch) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	err := s.conn.Close()
	<-s.done
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("closing the switch of vlan %d: %w", s.id, err)
	}
	return nil
}

func (s *Switch) loop() {
	defer close(s.done)
	buf := make([]byte, maxFrame)
	for {
		n, from, err := s.conn.ReadFromUnix(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("vlan switch read failed", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		frame := buf[:n]
		for _, to := range s.route(frame, from) {
			_ = s.conn.SetWriteDeadline(time.Now().Add(sendTimeout))
			if _, err := s.conn.WriteToUnix(frame, to.addr); err != nil {
				// The peer's QEMU is not running (yet) or is too slow.
				s.log.Debug("vlan frame dropped", "to", to.name, "err", err)
			}
		}
	}
}

// route learns from frame and returns the ports it goes to.
func (s *Switch) route(frame []byte, from *net.UnixAddr) []*peer {
	if len(frame) < 14 {
		return nil
	}
	var dst, src MAC
	copy(dst[:], frame[0:6])
	copy(src[:], frame[6:12])
	s.mu.Lock()
	defer s.mu.Unlock()
	if from == nil {
		return nil
	}
	in, ok := s.byPath[filepath.Clean(from.Name)]
	if !ok {
		s.log.Debug("vlan frame from an unknown socket dropped", "from", from.Name)
		return nil
	}
	if !in.up {
		return nil
	}
	if src[0]&1 == 0 {
		if s.macs[src] != in {
			s.macs[src] = in
		}
	}
	if dst[0]&1 == 0 {
		if out, ok := s.macs[dst]; ok {
			if out == in || !s.passes(in, out) {
				return nil
			}
			return []*peer{out}
		}
	}
	var outs []*peer
	for _, out := range s.peers {
		if out != in && s.passes(in, out) {
			outs = append(outs, out)
		}
	}
	return outs
}

// passes reports whether a frame may go from a to b. s.mu is held.
func (s *Switch) passes(a, b *peer) bool {
	if !a.up || !b.up {
		return false
	}
	if s.groups == nil {
		return true
	}
	ga, oka := s.groups[a.name]
	gb, okb := s.groups[b.name]
	return oka && okb && ga == gb
}
