package cache

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestLayout(t *testing.T) {
	for got, want := range map[string]string{
		Images("/c"):        "/c/images",
		Prepared("/c"):      "/c/prepared",
		State("/c", "test"): "/c/state/test",
		QEMU("/c"):          "/c/qemu",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	got, err := DefaultDir()
	if err != nil || got != "/xdg/distrotest" {
		t.Errorf("DefaultDir = %q, %v", got, err)
	}
}

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := Lock(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("cancelled while waiting", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		if _, err := Lock(ctx, path, nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("lockFile error = %v, want deadline exceeded", err)
		}
	})

	t.Run("acquired after unlock", func(t *testing.T) {
		got := make(chan error, 1)
		go func() {
			u, err := Lock(t.Context(), path, nil)
			if err == nil {
				u()
			}
			got <- err
		}()
		select {
		case err := <-got:
			t.Fatalf("second lock taken while the first is held (err %v)", err)
		case <-time.After(400 * time.Millisecond):
		}
		unlock()
		select {
		case err := <-got:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("second lock not taken after unlock")
		}
	})
}
