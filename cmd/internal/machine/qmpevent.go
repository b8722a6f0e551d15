package machine

import (
	"context"
	"errors"
	"fmt"

	"github.com/distrotest/distrotest/cmd/internal/qmp"
)

// NextQMPEvent returns the oldest QMP event of the current QEMU process
// that no earlier call returned (QEMU's events queue up from its start, up
// to qmp.EventBuffer), waiting for one until ctx's deadline; ok is false
// when the deadline passed or QEMU exited with no event left. Any other
// end of ctx is an error.
func (m *Machine) NextQMPEvent(ctx context.Context) (ev qmp.Event, ok bool, err error) {
	r := m.current()
	if r == nil || r.qmp == nil {
		return qmp.Event{}, false, fmt.Errorf("machine %s is not running", m.cfg.Name)
	}
	select {
	case ev, ok := <-r.qmp.Events():
		return ev, ok, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return qmp.Event{}, false, nil
		}
		return qmp.Event{}, false, fmt.Errorf("machine %s: waiting for a qmp event: %w", m.cfg.Name, ctx.Err())
	}
}
