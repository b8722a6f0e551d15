package machine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/digitalocean/go-qemu/qmp/raw"

	"github.com/distrotest/distrotest/cmd/internal/qemu"
)

// QMP runs a QMP command on the running machine; args may be nil, reply
// (may be nil) receives the "return" member.
func (m *Machine) QMP(ctx context.Context, command string, args, reply any) error {
	r, err := m.running()
	if err != nil {
		return err
	}
	if err := r.qmp.Execute(ctx, command, args, reply); err != nil {
		if diedDuring(r, err) {
			return m.exitedErr(r, "running qmp "+command)
		}
		return fmt.Errorf("machine %s: %w", m.cfg.Name, err)
	}
	return nil
}

// SendMonitorCommand runs a human monitor (HMP) command and returns its
// output.
func (m *Machine) SendMonitorCommand(ctx context.Context, command string) (string, error) {
	r, err := m.running()
	if err != nil {
		return "", err
	}
	out, err := r.qmp.Raw(ctx).HumanMonitorCommand(command, nil)
	if err != nil {
		if diedDuring(r, err) {
			return "", m.exitedErr(r, fmt.Sprintf("running monitor command %q", command))
		}
		return "", fmt.Errorf("machine %s: monitor command %q: %w", m.cfg.Name, command, err)
	}
	return out, nil
}

// hmp runs an HMP command that prints nothing on success.
func (m *Machine) hmp(ctx context.Context, command string) error {
	out, err := m.SendMonitorCommand(ctx, command)
	if err != nil {
		return err
	}
	if out = strings.TrimSpace(out); out != "" {
		return fmt.Errorf("machine %s: monitor command %q: %s", m.cfg.Name, command, out)
	}
	return nil
}

// Screenshot saves the guest's display as a PNG file at path.
func (m *Machine) Screenshot(ctx context.Context, path string) error {
	if _, err := m.running(); err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	dir := filepath.Dir(abs)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("machine %s: screenshot: %w", m.cfg.Name, err)
	}
	tmp, err := os.CreateTemp(dir, ".screenshot-*")
	if err != nil {
		return fmt.Errorf("machine %s: screenshot: %w", m.cfg.Name, err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())

	// go-qemu's screendump has no format argument: QEMU writes a PPM, which
	// is converted (that also works with QEMU before 7.1 or without libpng).
	err = m.qmpRun(ctx, "screendump", func(r *raw.Monitor) error { return r.Screendump(tmp.Name()) })
	if err == nil {
		err = ppmFileToPNG(tmp.Name())
	}
	if err != nil {
		return fmt.Errorf("machine %s: screenshot: %w", m.cfg.Name, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), abs); err != nil {
		return fmt.Errorf("machine %s: screenshot: %w", m.cfg.Name, err)
	}
	return nil
}

// ppmFileToPNG rewrites a binary PPM (P6, maxval 255) file as PNG.
func ppmFileToPNG(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	img, err := decodePPM(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("reading qemu's PPM screendump: %w", err)
	}
	var out bytes.Buffer
	if err := png.Encode(&out, img); err != nil {
		return err
	}
	return os.WriteFile(path, out.Bytes(), 0o644)
}

func decodePPM(r io.Reader) (image.Image, error) {
	br := bufio.NewReader(r)
	var fields []int
	magic, err := ppmToken(br)
	if err != nil {
		return nil, err
	}
	if magic != "P6" {
		return nil, fmt.Errorf("not a binary PPM (magic %q)", magic)
	}
	for len(fields) < 3 {
		tok, err := ppmToken(br)
		if err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(tok)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad PPM header field %q", tok)
		}
		fields = append(fields, n)
	}
	w, h, maxval := fields[0], fields[1], fields[2]
	if maxval != 255 {
		return nil, fmt.Errorf("PPM maxval %d is not supported", maxval)
	}
	pix := make([]byte, w*h*3)
	if _, err := io.ReadFull(br, pix); err != nil {
		return nil, fmt.Errorf("PPM pixels: %w", err)
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		img.Set(i%w, i/w, color.RGBA{pix[3*i], pix[3*i+1], pix[3*i+2], 255})
	}
	return img, nil
}

// ppmToken reads one whitespace-separated header token (skipping comments)
// and the single whitespace byte after it.
func ppmToken(br *bufio.Reader) (string, error) {
	var tok []byte
	for {
		b, err := br.ReadByte()
		if err != nil {
			return "", fmt.Errorf("PPM header: %w", err)
		}
		switch {
		case b == '#' && len(tok) == 0:
			if _, err := br.ReadString('\n'); err != nil {
				return "", fmt.Errorf("PPM header: %w", err)
			}
		case b == ' ' || b == '\t' || b == '\n' || b == '\r':
			if len(tok) > 0 {
				return string(tok), nil
			}
		default:
			tok = append(tok, b)
		}
	}
}

// SendKey presses a key combination on the guest's keyboard, in QEMU's
// sendkey syntax ("ctrl-alt-delete", "ret", "shift-a", "0x1c"). A single
// character is translated to its key ("A" is shift-a, "\n" is ret), as in
// nixpkgs.
func (m *Machine) SendKey(ctx context.Context, key string) error {
	keys, err := keyValues(KeyFor(key))
	if err != nil {
		return fmt.Errorf("machine %s: send key %q: %w", m.cfg.Name, key, err)
	}
	return m.qmpRun(ctx, "send-key", func(r *raw.Monitor) error { return r.SendKey(keys, nil) })
}

// keyValues parses a sendkey combination into QMP send-key keys: QEMU key
// codes (qcodes) by name, or numbers written 0x...
func keyValues(combo string) ([]raw.KeyValue, error) {
	var keys []raw.KeyValue
	for _, k := range strings.Split(combo, "-") {
		if n, ok := strings.CutPrefix(k, "0x"); ok {
			v, err := strconv.ParseInt(n, 16, 64)
			if err != nil {
				return nil, fmt.Errorf("bad key number %q", k)
			}
			keys = append(keys, raw.KeyValuefloat64(v))
			continue
		}
		var q raw.QKeyCode
		b, _ := json.Marshal(k)
		if err := json.Unmarshal(b, &q); err != nil {
			return nil, fmt.Errorf("unknown key %q (QEMU key codes: ret, spc, a, shift, ctrl, alt, f1, ...)", k)
		}
		keys = append(keys, raw.KeyValueQcode(q))
	}
	return keys, nil
}

// qmpRun runs one of go-qemu's generated commands on the running machine.
func (m *Machine) qmpRun(ctx context.Context, name string, f func(*raw.Monitor) error) error {
	r, err := m.running()
	if err != nil {
		return err
	}
	if err := f(r.qmp.Raw(ctx)); err != nil {
		if diedDuring(r, err) {
			return m.exitedErr(r, "running qmp "+name)
		}
		return fmt.Errorf("machine %s: qmp %s: %w", m.cfg.Name, name, err)
	}
	return nil
}

// ForwardPort forwards TCP port hostPort on the host's loopback and other
// addresses to guestPort in the guest, through the user-mode network.
func (m *Machine) ForwardPort(ctx context.Context, hostPort, guestPort int) error {
	return m.hmp(ctx, fmt.Sprintf("hostfwd_add %s tcp::%d-:%d", qemu.UserNetdev, hostPort, guestPort))
}

// SetLinks sets the link state of every VLAN NIC: down unplugs the machine
// from the other machines (block), up plugs it back in (unblock). The
// user-mode NIC is left alone.
func (m *Machine) SetLinks(ctx context.Context, up bool) error {
	for _, n := range m.cfg.NICs {
		name := qemu.VLANNIC(n.VLAN)
		if err := m.qmpRun(ctx, "set_link", func(r *raw.Monitor) error { return r.SetLink(name, up) }); err != nil {
			return err
		}
	}
	return nil
}
